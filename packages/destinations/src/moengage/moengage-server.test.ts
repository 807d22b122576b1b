import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RequestDescriptor, SettingValues } from '@audient/core';
import { startMoEngageServer, type MoEngageServer } from '../testing/index.js';
import { makeRecord } from '../testing/records.js';
import { moengage } from './index.js';

const WORKSPACE = 'WS0TEST';
const KEY = 'k3y-data';

/** What the runtime adds for `auth: basic`. */
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

async function send(req: RequestDescriptor, extra: Record<string, string> = { authorization: basic(WORKSPACE, KEY) }) {
  const res = await fetch(req.url, { method: req.method, headers: { ...req.headers, ...extra }, ...(req.body !== undefined ? { body: req.body } : {}) });
  return { status: res.status, headers: {}, body: await res.text() };
}

async function post(server: MoEngageServer, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/transition/${WORKSPACE}`, {
    method: 'POST',
    headers: { authorization: basic(WORKSPACE, KEY), 'MOE-APPKEY': WORKSPACE, 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, body: (await res.json()) as { status: string; error?: { attribute?: string; message: string; type: string; request_id: string } } };
}

const customer = (id: string, attributes: Record<string, unknown>) => JSON.stringify({ type: 'transition', elements: [{ type: 'customer', customer_id: id, attributes }] });

describe('moengage destination against the strict local MoEngage server', () => {
  let server: MoEngageServer;
  let settings: SettingValues;
  before(async () => {
    server = await startMoEngageServer({ workspaces: [{ id: WORKSPACE, dataApiKey: KEY }] });
    settings = { appId: WORKSPACE, dataApiKey: KEY, region: '02', audienceAttribute: 'AEPSegments', baseUrl: server.url };
  });
  after(() => server.close());

  it("accepts the destination's requests and records attributes per customer", async () => {
    const records = [
      makeRecord({
        profileId: 'p1',
        identities: { user_id: ['jane-42'] },
        attributes: { Last_Name: 'Doe', address: { city: 'Lyon' } },
        audiences: [
          { id: 'a1', name: 'Frequent buyers', status: 'existing' },
          { id: 'a2', name: 'Cart abandoners', status: 'realized' },
          { id: 'a3', name: 'Newsletter', status: 'exited' },
        ],
      }),
      makeRecord({ profileId: 'p2', identities: { anonymous_id: ['anon-7'] }, attributes: { Last_Name: 'Roe' } }),
    ];
    const reqs = moengage.toRequests(records, { settings, timeoutMs: 5000 });
    assert.equal(reqs.length, 1);
    for (const req of reqs) {
      const res = await send(req);
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(moengage.classify?.(res, req, records), [{ ok: true }, { ok: true }]);
    }
    assert.deepEqual(server.customers(WORKSPACE), {
      'jane-42': { Last_Name: 'Doe', 'address.city': 'Lyon', AEPSegments: ['Frequent buyers', 'Cart abandoners'] },
      'anon-7': { Last_Name: 'Roe', AEPSegments: [] },
    });
    const later = makeRecord({ profileId: 'p1', identities: { user_id: ['jane-42'] }, attributes: { Last_Name: 'Doe' }, audiences: [{ id: 'a1', name: 'Frequent buyers', status: 'exited' }] });
    const [again] = moengage.toRequests([later], { settings, timeoutMs: 5000 });
    assert.ok(again);
    assert.equal((await send(again)).status, 200);
    assert.deepEqual(server.customers(WORKSPACE)['jane-42']?.['AEPSegments'], []);
  });

  it('accepts a large batch split under the 100 kB limit', async () => {
    const many = Array.from({ length: 100 }, (_, i) => makeRecord({ profileId: `b${i}`, identities: { user_id: [`bulk-${i}`] }, attributes: Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [k, k.repeat(500)])) }));
    const reqs = moengage.toRequests(many, { settings, timeoutMs: 5000 });
    assert.ok(reqs.length >= 3, `${reqs.length} calls`);
    for (const req of reqs) assert.equal((await send(req)).status, 200);
    assert.equal(Object.keys(server.customers(WORKSPACE)).filter((id) => id.startsWith('bulk-')).length, 100);
  });

  it('refuses missing or wrong credentials with the documented 401', async () => {
    const [req] = moengage.toRequests([makeRecord({ identities: { user_id: ['u-1'] } })], { settings, timeoutMs: 5000 });
    assert.ok(req);
    const none = await send(req, {});
    assert.equal(none.status, 401);
    assert.deepEqual(JSON.parse(none.body), { status: 'fail', error: { message: 'Authentication Header Required', type: 'Authentication required', request_id: (JSON.parse(none.body) as { error: { request_id: string } }).error.request_id } });
    const wrong = await send(req, { authorization: basic(WORKSPACE, 'nope') });
    assert.equal(wrong.status, 401);
    const [outcome] = moengage.classify?.(wrong, req, []) ?? [];
    assert.deepEqual(outcome && !outcome.ok ? outcome.retry : 'ok', false, 'static Basic credentials: a 401 is not retried');
  });

  it('refuses malformed requests with the documented error shape', async () => {
    const cases: Array<[string, Promise<Awaited<ReturnType<typeof post>>>, number, string | undefined, string]> = [
      ['no MOE-APPKEY', post(server, customer('u-1', {}), { 'MOE-APPKEY': '' }), 400, 'MOE-APPKEY', 'MissingAttributeError'],
      ['not JSON', post(server, '{"type":', {}), 400, undefined, 'Malformed JSON'],
      ['wrong type', post(server, JSON.stringify({ type: 'bulk', elements: [] })), 400, 'type', 'AttributeError'],
      ['empty elements', post(server, JSON.stringify({ type: 'transition', elements: [] })), 400, 'elements', 'MissingAttributeError'],
      ['element type', post(server, JSON.stringify({ type: 'transition', elements: [{ type: 'Customer', customer_id: 'u-1' }] })), 400, 'type', 'AttributeError'],
      ['no customer_id', post(server, JSON.stringify({ type: 'transition', elements: [{ type: 'customer', attributes: {} }] })), 400, 'customer_id', 'MissingAttributeError'],
      ['placeholder customer_id', post(server, customer('null', {})), 400, 'customer_id', 'AttributeError'],
      ['moe_ prefix', post(server, customer('u-1', { moe_thing: 1 })), 400, 'moe_thing', 'AttributeError'],
      ['blocked name', post(server, customer('u-1', { _id: 1 })), 400, '_id', 'AttributeError'],
      ['dictionary value', post(server, customer('u-1', { address: { city: 'Lyon' } })), 400, 'address', 'AttributeError'],
      ['array too long', post(server, customer('u-1', { tags: Array.from({ length: 51 }, (_, i) => i) })), 400, 'tags', 'AttributeError'],
      ['mixed array', post(server, customer('u-1', { tags: ['a', 1] })), 400, 'tags', 'AttributeError'],
      ['content type', post(server, customer('u-1', {}), { 'content-type': 'text/plain' }), 415, undefined, 'MediaTypeError'],
      ['too large', post(server, customer('u-1', { note: 'x'.repeat(100_001) })), 413, undefined, 'PayloadTooLarge'],
    ];
    for (const [what, pending, status, attribute, type] of cases) {
      const res = await pending;
      assert.equal(res.status, status, what);
      assert.equal(res.body.status, 'fail', what);
      assert.equal(res.body.error?.type, type, what);
      assert.equal(res.body.error?.attribute, attribute, what);
      assert.equal(typeof res.body.error?.message, 'string', what);
      assert.match(res.body.error?.request_id ?? '', /^req\d{5}$/, what);
    }
    assert.equal(server.customers(WORKSPACE)['null'], undefined);
  });

  it('answers 429 past the rate limit, and the destination retries it', async () => {
    let t = 0;
    const limited = await startMoEngageServer({ workspaces: [{ id: WORKSPACE, dataApiKey: KEY }], usersPerMinute: 3, now: () => t });
    try {
      const s = { ...settings, baseUrl: limited.url };
      const records = Array.from({ length: 2 }, (_, i) => makeRecord({ profileId: `r${i}`, identities: { user_id: [`rate-${i}`] } }));
      const [req] = moengage.toRequests(records, { settings: s, timeoutMs: 5000 });
      assert.ok(req);
      assert.equal((await send(req)).status, 200);
      const second = await send(req);
      assert.equal(second.status, 429);
      assert.equal((JSON.parse(second.body) as { error: { type: string } }).error.type, 'RateLimitError');
      assert.deepEqual(
        moengage.classify?.(second, req, records).map((o) => (o.ok ? 'ok' : o.retry)),
        [true, true],
      );
      t = 60_000;
      assert.equal((await send(req)).status, 200);
    } finally {
      await limited.close();
    }
  });

  it('can be told to fail; 5xx is retried, 403 is not', async () => {
    const records = [makeRecord({ identities: { user_id: ['fail-1'] } })];
    const [req] = moengage.toRequests(records, { settings, timeoutMs: 5000 });
    assert.ok(req);
    server.failNext(503);
    server.failNext(403);
    const first = await send(req);
    assert.equal(first.status, 503);
    assert.deepEqual(moengage.classify?.(first, req, records).map((o) => o.ok || o.retry), [true]);
    const second = await send(req);
    assert.equal(second.status, 403);
    assert.deepEqual(moengage.classify?.(second, req, records).map((o) => o.ok || o.retry), [false]);
    assert.equal((await send(req)).status, 200);
    assert.ok(server.customers(WORKSPACE)['fail-1']);
  });
});
