/**
 * The delivery transport parses each URL once and sends to it as node:http would: path and query
 * as given, credentials in the URL as a Basic header, bad URLs refused as network errors.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../testing/receiver.js';
import { Transport, TransportError } from './transport.js';

describe('delivery transport', () => {
  let receiver: Receiver;
  const transport = new Transport(4);

  before(async () => {
    receiver = await startReceiver();
  });
  after(async () => {
    transport.close();
    await receiver.close();
  });

  it('sends path, query, headers and body, twice to the same URL', async () => {
    const url = `${receiver.url}/v1/profiles?source=audient&x=%C3%A9`;
    for (const n of [1, 2]) {
      const answer = await transport.send(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-n': String(n) }, body: '{"name":"Zoë"}', timeoutMs: 2000 });
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.body), { ok: true });
    }
    assert.deepEqual(receiver.requests.map((r) => [r.method, r.url, r.headers['x-n'], r.headers['content-length'], r.body]), [
      ['POST', '/v1/profiles?source=audient&x=%C3%A9', '1', String(Buffer.byteLength('{"name":"Zoë"}')), '{"name":"Zoë"}'],
      ['POST', '/v1/profiles?source=audient&x=%C3%A9', '2', String(Buffer.byteLength('{"name":"Zoë"}')), '{"name":"Zoë"}'],
    ]);
  });

  it('sends credentials given in the URL as a Basic header', async () => {
    const u = new URL(receiver.url);
    await transport.send(`http://us%40er:p%20ss@${u.host}/auth`, { method: 'GET', headers: {}, timeoutMs: 2000 });
    const seen = receiver.requests.find((r) => r.url === '/auth')!;
    assert.equal(seen.headers.authorization, `Basic ${Buffer.from('us@er:p ss').toString('base64')}`);
  });

  it('refuses URLs it cannot send to', async () => {
    for (const url of ['not a url', 'ftp://127.0.0.1/x']) {
      await assert.rejects(transport.send(url, { method: 'POST', headers: {}, body: '{}', timeoutMs: 500 }), (err: unknown) => err instanceof TransportError && err.name === 'NetworkError');
    }
  });
});
