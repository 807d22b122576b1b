import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startOAuthServer, type OAuthServer } from './oauth-server.js';
import { startReceiver, type Receiver } from './receiver.js';

async function send(url: string, init: { token?: string; key?: string; body?: unknown; signal?: AbortSignal } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.key !== undefined) headers['idempotency-key'] = init.key;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify(init.body ?? {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
}

describe('startReceiver', () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  it('records method, url with query, headers, body and parsed JSON', async () => {
    const res = await send(`${receiver.url}/v1/events?batch=1`, { body: { id: 'p1' } });
    assert.equal(res.status, 200);
    const rec = receiver.requests.at(-1);
    assert.ok(rec);
    assert.equal(rec.method, 'POST');
    assert.equal(rec.url, '/v1/events?batch=1');
    assert.equal(rec.headers['content-type'], 'application/json');
    assert.equal(rec.body, '{"id":"p1"}');
    assert.deepEqual(rec.json, { id: 'p1' });
    assert.equal(rec.status, 200);
    assert.ok(rec.at <= Date.now());
    assert.ok(receiver.accepted.includes(rec));
  });

  it('failNext answers 429 with Retry-After, then 503, then recovers', async () => {
    receiver.failNext(1, { status: 429, retryAfter: 3 });
    receiver.failNext(1, { status: 503, body: 'down for maintenance' });
    const accepted = receiver.accepted.length;
    const first = await send(receiver.url);
    assert.equal(first.status, 429);
    assert.equal(first.retryAfter, '3');
    const res = await fetch(receiver.url, { method: 'POST', body: '{}' });
    assert.equal(res.status, 503);
    assert.equal(await res.text(), 'down for maintenance');
    assert.equal((await send(receiver.url)).status, 200);
    assert.equal(receiver.accepted.length, accepted + 1);
  });

  it('slowNext delays the answer past a client timeout, and the request still lands', async () => {
    receiver.slowNext(1, 300);
    const started = Date.now();
    await assert.rejects(send(receiver.url, { body: { slow: true }, signal: AbortSignal.timeout(50) }), {
      name: 'TimeoutError',
    });
    await receiver.waitFor((reqs) => reqs.some((r) => (r.json as { slow?: boolean } | undefined)?.slow === true), 2000);
    const slow = receiver.requests.find((r) => (r.json as { slow?: boolean } | undefined)?.slow === true);
    assert.equal(slow?.aborted, true);
    assert.ok(Date.now() - started >= 300);
    assert.equal((await send(receiver.url)).status, 200, 'only the next request is slow');
  });

  it('answers a replayed Idempotency-Key 200 but counts it as a duplicate', async () => {
    const accepted = receiver.accepted.length;
    assert.equal((await send(receiver.url, { key: 'k-1' })).status, 200);
    const replay = await send(receiver.url, { key: 'k-1' });
    assert.equal(replay.status, 200);
    assert.equal((await send(receiver.url, { key: 'k-2' })).status, 200);
    assert.equal(receiver.accepted.length, accepted + 2);
    assert.equal(receiver.duplicates.length, 1);
    assert.equal(receiver.duplicates[0]?.headers['idempotency-key'], 'k-1');
  });

  it('does not treat a key whose first attempt failed as a duplicate', async () => {
    receiver.failNext(1, { status: 500 });
    assert.equal((await send(receiver.url, { key: 'k-3' })).status, 500);
    const duplicates = receiver.duplicates.length;
    assert.equal((await send(receiver.url, { key: 'k-3' })).status, 200);
    assert.equal(receiver.duplicates.length, duplicates);
  });

  it('accepts replays again when dropDuplicates is off', async () => {
    receiver.dropDuplicates = false;
    try {
      const accepted = receiver.accepted.length;
      await send(receiver.url, { key: 'k-4' });
      await send(receiver.url, { key: 'k-4' });
      assert.equal(receiver.accepted.length, accepted + 2);
    } finally {
      receiver.dropDuplicates = true;
    }
  });

  it('waitFor rejects when the condition never holds', async () => {
    await assert.rejects(
      receiver.waitFor(() => false, 50),
      /waitFor timed out/,
    );
  });
});

describe('startReceiver with bearer verification through the OAuth server', () => {
  let oauth: OAuthServer;
  let receiver: Receiver;
  const token = async (): Promise<string> => {
    const res = await fetch(oauth.tokenUrl, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'dest', client_secret: 's3cret' }),
    });
    const body = (await res.json()) as { access_token?: string };
    assert.ok(body.access_token);
    return body.access_token;
  };

  before(async () => {
    oauth = await startOAuthServer({
      clients: [{ clientId: 'dest', clientSecret: 's3cret', auth: 'client_secret_post' }],
    });
    receiver = await startReceiver({ verifyBearer: async (t) => (await oauth.introspect(t)).active });
  });
  after(async () => {
    await receiver.close();
    await oauth.close();
  });

  it('refuses requests without a valid bearer token with 401 invalid_token', async () => {
    const missing = await send(receiver.url);
    assert.equal(missing.status, 401);
    assert.equal(missing.body.error, 'invalid_token');
    const forged = await send(receiver.url, { token: 'forged' });
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error, 'invalid_token');
    assert.equal(receiver.accepted.length, 0);
  });

  it('accepts a token issued by the OAuth server', async () => {
    const res = await send(receiver.url, { token: await token() });
    assert.equal(res.status, 200);
    assert.equal(receiver.accepted.length, 1);
  });

  it('expireTokens answers 401 to tokens already seen until the client fetches a new one', async () => {
    const old = await token();
    assert.equal((await send(receiver.url, { token: old })).status, 200);
    receiver.expireTokens();
    const refused = await send(receiver.url, { token: old });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'invalid_token');
    assert.equal((await send(receiver.url, { token: old })).status, 401, 'an expired token stays expired');
    const fresh = await token();
    assert.notEqual(fresh, old);
    assert.equal((await send(receiver.url, { token: fresh })).status, 200);
  });
});

describe('startReceiver with a short-lived token', () => {
  it('refuses a token once the OAuth server says it has expired', async () => {
    // The provider counts whole seconds (expired once the second of issue + ttl begins): a
    // 1 s token could expire before its first use; 3 s leaves at least 2 s for it.
    const oauth = await startOAuthServer({ accessTokenTtlSeconds: 3 });
    const receiver = await startReceiver({ verifyBearer: async (t) => (await oauth.introspect(t)).active });
    try {
      const res = await fetch(oauth.tokenUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from('test-client:test-secret').toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
      const { access_token: accessToken } = (await res.json()) as { access_token: string };
      assert.equal((await send(receiver.url, { token: accessToken })).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 3100));
      assert.equal((await send(receiver.url, { token: accessToken })).status, 401);
    } finally {
      await receiver.close();
      await oauth.close();
    }
  });
});
