import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SqliteStore } from '@audient/storage';
import { createHarness, type Harness } from '../testing/harness.js';
import { signPayload } from './webhooks.js';

/** A receiver on loopback that answers with the statuses it is told, in order. */
function receiver(): Promise<{ server: Server; url: string; got: Array<{ headers: Record<string, string>; body: string }>; answers: number[] }> {
  const got: Array<{ headers: Record<string, string>; body: string }> = [];
  const answers: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ headers: req.headers as Record<string, string>, body });
      res.statusCode = answers.shift() ?? 200;
      res.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, answers })),
  );
}

/**
 * A harness over a fresh SQLite store (streaming segmentation only) holding the `crm` dataset and
 * the `gold` audience, and a receiver.
 */
async function goldHarness(opts: Parameters<typeof createHarness>[2] = {}): Promise<{ h: Harness; r: Awaited<ReturnType<typeof receiver>> }> {
  const store = new SqliteStore(':memory:');
  await store.migrate();
  const h = await createHarness(store, { segmentation: { tickMs: 0, batchTime: '' } }, opts);
  const r = await receiver();
  await h.call('POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details'], fields: {} });
  await h.call('POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
  await h.call('POST', '/v1/audiences', { id: 'gold', name: 'Gold', query: 'loyalty.tier = "gold"' });
  return { h, r };
}

describe('membership webhooks', () => {
  let h: Harness;
  let r: Awaited<ReturnType<typeof receiver>>;
  let clock = Date.parse('2025-01-01T00:00:00Z');
  before(async () => {
    ({ h, r } = await goldHarness({ now: () => clock }));
  });
  after(async () => {
    await h.close();
    r.server.close();
  });

  const qualify = async (email: string, tier: string): Promise<void> => {
    await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: email }] }, loyalty: { tier } });
    await h.ctx.feed.flush();
    await h.ctx.bus.drain();
  };

  it('delivers signed batches in order, retries 5xx, pauses on 4xx and replays from a position', async () => {
    const created = await h.call('POST', '/v1/webhooks', { url: r.url, audienceIds: ['gold'] });
    assert.equal(created.statusCode, 201, created.body);
    const { id, secret } = created.json() as { id: string; secret: string };
    assert.match(secret, /^whsec_/);
    assert.ok(!JSON.stringify((await h.call('GET', '/v1/webhooks')).json()).includes(secret), 'the secret is never listed');

    r.answers.push(500);
    await qualify('a@x.io', 'gold');
    await h.ctx.webhooks.deliverSandbox('prod');
    assert.equal(r.got.length, 1);
    let sub = (await h.call('GET', '/v1/webhooks')).json().items[0];
    assert.equal(sub.failures, 1);
    assert.equal(sub.status, 'active');

    clock += 10 * 60_000; // past the backoff
    await h.ctx.webhooks.deliverSandbox('prod');
    assert.equal(r.got.length, 2);
    const { headers, body } = r.got[1]!;
    const t = Number(/t=(\d+)/.exec(headers['audient-signature']!)![1]);
    assert.equal(headers['audient-signature'], signPayload(secret, t, body));
    const delivered = JSON.parse(body) as { events: Array<{ seq: number; audienceId: string; status: string }> };
    assert.deepEqual(delivered.events.map((e) => [e.audienceId, e.status]), [['gold', 'realized']]);

    r.answers.push(400);
    await qualify('a@x.io', 'silver');
    await h.ctx.webhooks.deliverSandbox('prod');
    sub = (await h.call('GET', '/v1/webhooks')).json().items[0];
    assert.equal(sub.status, 'paused');
    assert.match(sub.lastError, /HTTP 400/);
    await qualify('b@x.io', 'gold');
    clock += 60 * 60_000;
    await h.ctx.webhooks.deliverSandbox('prod');
    assert.equal(r.got.length, 3, 'a paused subscription receives nothing');

    const replay = await h.call('POST', `/v1/webhooks/${id}/replay`, { position: 0 });
    assert.equal(replay.statusCode, 200, replay.body);
    await h.ctx.webhooks.deliverSandbox('prod');
    const last = JSON.parse(r.got.at(-1)!.body) as { events: Array<{ audienceId: string; status: string }> };
    assert.deepEqual(last.events.map((e) => e.status), ['realized', 'exited', 'realized']);
  });
});

describe('membership webhooks: the subscription list kept in memory', () => {
  let h: Harness;
  let r: Awaited<ReturnType<typeof receiver>>;
  before(async () => {
    ({ h, r } = await goldHarness());
  });
  after(async () => {
    await h.close();
    r.server.close();
  });

  const qualify = async (email: string): Promise<void> => {
    await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: email }] }, loyalty: { tier: 'gold' } });
    await h.ctx.feed.flush();
    await h.ctx.bus.drain();
    // The pass the bus started, then the one queued behind it, if any.
    await h.ctx.webhooks.deliverSandbox('prod');
    await h.ctx.webhooks.deliverSandbox('prod');
  };

  it('sees a subscription created, replayed or deleted here at once', async () => {
    await qualify('before@x.io'); // no subscription yet: the empty list is remembered
    const created = await h.call('POST', '/v1/webhooks', { url: r.url });
    assert.equal(created.statusCode, 201, created.body);
    const { id } = created.json() as { id: string };
    await qualify('after@x.io');
    assert.equal(r.got.length, 1, 'the new subscription got the next event without waiting for the list to expire');
    const first = JSON.parse(r.got[0]!.body) as { events: Array<{ seq: number }> };
    assert.equal(first.events.length, 1);

    const replay = await h.call('POST', `/v1/webhooks/${id}/replay`, { position: 0 });
    assert.equal(replay.statusCode, 200, replay.body);
    await h.ctx.webhooks.deliverSandbox('prod');
    await h.ctx.webhooks.deliverSandbox('prod');
    const replayed = JSON.parse(r.got.at(-1)!.body) as { events: Array<{ seq: number }> };
    assert.equal(replayed.events.length, 2, 'the replay starts from the moved position, not the remembered one');

    assert.equal((await h.call('DELETE', `/v1/webhooks/${id}`)).statusCode < 300, true);
    const count = r.got.length;
    await qualify('gone@x.io');
    assert.equal(r.got.length, count, 'a deleted subscription receives nothing');
  });
});
