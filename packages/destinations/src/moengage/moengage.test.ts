import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateSettings, type RequestDescriptor } from '@audient/core';
import { makeRecord } from '../testing/records.js';
import { MOENGAGE_MAX_BODY_BYTES } from './contract.js';
import { exampleSettings, moengage } from './index.js';

const ctx = { settings: exampleSettings, timeoutMs: 5000 };
const response = (status: number, body = '') => ({ status, headers: {}, body });

const jane = makeRecord({
  profileId: 'p-jane',
  attributes: { Last_Name: 'Doe', first_name: 'Jane', loyalty_points: 120 },
  identities: { user_id: ['jane-42'], anonymous_id: ['anon-9'] },
  audiences: [
    { id: 'aud-1', name: 'Frequent buyers', status: 'existing' },
    { id: 'aud-2', name: 'Cart abandoners', status: 'realized' },
    { id: 'aud-3', name: 'Newsletter', status: 'exited' },
  ],
});

describe('moengage destination', () => {
  it('sends the renamed attribute and the names of the audiences the user is in (exited removed)', () => {
    const [req, ...rest] = moengage.toRequests([jane], ctx);
    assert.equal(rest.length, 0);
    assert.ok(req);
    assert.equal(req.method, 'POST');
    assert.equal(req.url, 'https://api-02.moengage.com/v1/transition/VJ0GSMESHMQA3L7WV1EEK3UR');
    assert.deepEqual(req.headers, { 'content-type': 'application/json', 'MOE-APPKEY': 'VJ0GSMESHMQA3L7WV1EEK3UR' });
    assert.equal(
      req.body,
      JSON.stringify({
        type: 'transition',
        elements: [
          {
            type: 'customer',
            customer_id: 'jane-42',
            attributes: { Last_Name: 'Doe', first_name: 'Jane', loyalty_points: 120, AEPSegments: ['Frequent buyers', 'Cart abandoners'] },
          },
        ],
      }),
    );
  });

  it('uses the configured array attribute name, anonymous_id when there is no user_id, and an empty array when in no audience', () => {
    const anon = makeRecord({ profileId: 'p-anon', identities: { anonymous_id: ['anon-7'] }, audiences: [{ id: 'aud-3', name: 'Newsletter', status: 'exited' }] });
    const [req] = moengage.toRequests([anon], { settings: { ...exampleSettings, audienceAttribute: 'Audient_Audiences' }, timeoutMs: 5000 });
    assert.equal(req?.body, JSON.stringify({ type: 'transition', elements: [{ type: 'customer', customer_id: 'anon-7', attributes: { Audient_Audiences: [] } }] }));
  });

  it('flattens dotted targets, leaves out names MoEngage refuses, cuts long values', () => {
    const r = makeRecord({
      identities: { user_id: ['u-1'] },
      attributes: { address: { city: 'Lyon' }, id: 'x', moe_custom: 1, moe_unsubscribe: false, tags: Array.from({ length: 60 }, (_, i) => `t${i}`), bio: 'é'.repeat(600) },
    });
    const [req] = moengage.toRequests([r], ctx);
    const attrs = (JSON.parse(req?.body ?? '{}') as { elements: Array<{ attributes: Record<string, unknown> }> }).elements[0]?.attributes ?? {};
    assert.deepEqual(Object.keys(attrs), ['address.city', 'moe_unsubscribe', 'tags', 'bio', 'AEPSegments']);
    assert.equal((attrs['tags'] as string[]).length, 50);
    assert.equal(attrs['bio'], 'é'.repeat(512));
  });

  it('batches into calls of at most 100 users and 100 kB, covering every record once', () => {
    const many = Array.from({ length: 250 }, (_, i) => makeRecord({ profileId: `p${i}`, identities: { user_id: [`user-${i}`] }, attributes: { note: 'x'.repeat(500) } }));
    const reqs = moengage.toRequests(many, ctx);
    for (const r of reqs) {
      assert.ok(r.items.length <= 100);
      assert.ok(new TextEncoder().encode(r.body ?? '').length <= MOENGAGE_MAX_BODY_BYTES, 'body within 100 kB');
      assert.equal((JSON.parse(r.body ?? '') as { elements: unknown[] }).elements.length, r.items.length);
    }
    assert.deepEqual(
      reqs.flatMap((r) => r.items),
      many.map((_, i) => i),
    );
    assert.ok(reqs.length >= 3);
  });

  it('sends a profile whose only ids MoEngage refuses alone, so it cannot fail its neighbours', () => {
    const ok1 = makeRecord({ profileId: 'a', identities: { user_id: ['alice'] } });
    const bad = makeRecord({ profileId: 'b', identities: { user_id: ['null'], anonymous_id: ['guest'] } });
    const fallback = makeRecord({ profileId: 'c', identities: { user_id: ['0'], anonymous_id: ['anon-c'] } });
    const reqs = moengage.toRequests([ok1, bad, fallback], ctx);
    assert.deepEqual(
      reqs.map((r) => r.items),
      [[0], [1], [2]],
    );
    assert.match(reqs[2]?.body ?? '', /"customer_id":"anon-c"/);
  });

  it('uses the baseUrl override for tests and proxies', () => {
    const [req] = moengage.toRequests([jane], { settings: { ...exampleSettings, baseUrl: 'http://127.0.0.1:9999/' }, timeoutMs: 5000 });
    assert.equal(req?.url, 'http://127.0.0.1:9999/v1/transition/VJ0GSMESHMQA3L7WV1EEK3UR');
  });

  it('validates settings: data centre enum, default array attribute, reserved attribute names', () => {
    const { audienceAttribute: _a, ...noAttr } = exampleSettings;
    const v = validateSettings(moengage, noAttr);
    assert.deepEqual(v.errors, []);
    assert.equal(v.values['audienceAttribute'], 'AEPSegments');
    assert.deepEqual(
      validateSettings(moengage, { ...exampleSettings, region: '07' }).errors.map((e) => e.path),
      ['settings.region'],
    );
    assert.deepEqual(
      validateSettings(moengage, { ...exampleSettings, audienceAttribute: 'moe_segments' }).errors.map((e) => e.message),
      ['moe_segments: the moe_ prefix is reserved by MoEngage'],
    );
    assert.deepEqual(
      validateSettings(moengage, { ...exampleSettings, dataApiKey: '' }).errors.map((e) => e.path),
      ['settings.dataApiKey'],
    );
  });

  it('classifies per call from the documented responses', () => {
    const req: RequestDescriptor = { method: 'POST', url: 'u', headers: {}, items: [0, 1] };
    const classify = moengage.classify;
    assert.ok(classify);
    const both = (o: unknown) => [o, o];
    assert.deepEqual(classify(response(200, '{"status":"success","message":"Your request has been accepted and will be processed soon."}'), req, [jane, jane]), both({ ok: true }));
    assert.deepEqual(
      classify(response(400, '{"status":"fail","error":{"attribute":"customer_id","message":"customer_id not found in the payload","type":"MissingAttributeError","request_id":"oWvxnUuo"}}'), req, [jane, jane]),
      both({ ok: false, retry: false, message: 'MoEngage 400 MissingAttributeError: customer_id not found in the payload (attribute customer_id) [request_id oWvxnUuo]' }),
    );
    assert.deepEqual(
      classify(response(429, '{"status":"fail","error":{"message":"Rate limit exceeded","type":"RateLimitError","request_id":"onqucLYL"}}'), req, [jane, jane]),
      both({ ok: false, retry: true, message: 'MoEngage 429 RateLimitError: Rate limit exceeded [request_id onqucLYL]' }),
    );
    assert.deepEqual(classify(response(500, '<html>oops</html>'), req, [jane, jane]), both({ ok: false, retry: true, message: 'MoEngage HTTP 500: <html>oops</html>' }));
    assert.deepEqual(
      classify(response(401, '{"status":"fail","error":{"message":"App Secret key mismatch. Please login to the dashboard to verify key","type":"Authentication required","request_id":"PVUDFisO"}}'), req, [jane, jane])[0],
      { ok: false, retry: false, message: 'MoEngage 401 Authentication required: App Secret key mismatch. Please login to the dashboard to verify key [request_id PVUDFisO]' },
    );
    assert.equal(classify(response(413, '{"status":"fail","error":{"message":"Payload size exceeds 128 KB","type":"PayloadTooLarge","request_id":"x"}}'), req, [jane, jane])[0]?.ok, false);
    assert.deepEqual(classify(response(200, '{"status":"fail","error":{"message":"odd","type":"AttributeError","request_id":"r"}}'), req, [jane, jane])[0], {
      ok: false,
      retry: false,
      message: 'MoEngage 200 AttributeError: odd [request_id r]',
    });
  });
});
