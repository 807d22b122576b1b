/**
 * Random requests thrown at every edge endpoint, on both backends: never a 5xx; an error is
 * always in the edge format; an answer always has the interact shape; and whatever a request
 * carried, the store keeps serving the next one (a valid page view of a known visitor).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, okJson, type Harness } from '../testing/harness.js';

const ORIGIN = 'https://shop.example';

/** How many events a request body carries (0 when it is not JSON or has no event list). */
function eventsIn(body: string): number {
  try {
    const events = (JSON.parse(body) as { events?: unknown } | null)?.events;
    return Array.isArray(events) ? events.length : 0;
  } catch {
    return 0;
  }
}
const ecid = (n: number): string => String(n).padStart(38, '3');

await describeBackends((backend) => {
  describe('edge fuzz', () => {
    let h: Harness;
    let configId = '';
    before(async () => {
      h = await createHarness(await backend.open());
      await okJson(h, 'POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details', 'profile-consents'], fields: {} });
      await okJson(h, 'POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details', 'event-commerce-details'], fields: {} });
      await okJson(h, 'POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
      await okJson(h, 'POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
      await okJson(h, 'POST', '/v1/audiences', { id: 'viewers', name: 'viewers', query: 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.timestamp occurs < 1 hour before now' });
      await okJson(h, 'POST', '/v1/audiences', { id: 'gold', name: 'gold', query: 'loyalty.tier = "gold"' });
      const ds = await okJson(h, 'POST', '/v1/datastreams', {
        name: 'Site', allowedOrigins: [ORIGIN], eventDatasetId: 'web', profileDatasetId: 'crm', orgId: 'ACME@AdobeOrg',
        urlSyncs: [{ id: 'pixel', type: 'url', url: 'https://partner.example/sync?uid={ECID}', ttlMinutes: 10 }],
      });
      configId = String(ds['id']);
      const conn = await okJson(h, 'POST', '/v1/connections', { name: 'p', destinationId: 'custom-personalization', settings: { integrationAlias: 'p', datastreamId: configId } });
      await okJson(h, 'POST', '/v1/dataflows', { name: 'p', connectionId: String(conn['id']), audienceIds: ['viewers', 'gold'], mapping: [] });
    });
    after(() => h.close());

    // Pieces that are sometimes right, so requests get past the first checks and into the pipeline.
    const text = fc.oneof({ arbitrary: fc.string({ maxLength: 12 }), weight: 6 }, fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('a\u0000', '\ud800', ''));
    const anyEcid = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 50 }).map(ecid), weight: 6 }, text, fc.integer(), fc.constant(null));
    const identityMap = fc.oneof(
      { arbitrary: fc.record({ ECID: fc.array(fc.record({ id: anyEcid, primary: fc.boolean() }, { requiredKeys: ['id'] }), { maxLength: 2 }) }, { requiredKeys: [] }), weight: 4 },
      fc.record({ email: fc.array(fc.record({ id: fc.oneof(fc.emailAddress(), text) }), { maxLength: 2 }), ECID: fc.constant([{ id: ecid(7) }]) }, { requiredKeys: [] }),
      fc.jsonValue(),
    );
    const xdm = fc.record(
      {
        eventType: fc.oneof(fc.constantFrom('web.webpagedetails.pageViews', 'commerce.purchases'), text),
        timestamp: fc.oneof({ arbitrary: fc.constant('2025-06-01T10:00:00Z'), weight: 10 }, text, fc.integer()),
        _id: fc.oneof(text, { arbitrary: fc.uuid(), weight: 4 }),
        identityMap,
        web: fc.oneof({ arbitrary: fc.record({ webPageDetails: fc.record({ URL: text, name: text }, { requiredKeys: [] }) }), weight: 16 }, fc.jsonValue()),
        // An unknown field rejects the event: now and then only (undefined is left out of the JSON).
        junk: fc.oneof({ arbitrary: fc.constant(undefined), weight: 8 }, fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const entries = fc.array(
      fc.record({
        key: fc.oneof(fc.constantFrom('kndctr_ACME_AdobeOrg_identity', 'kndctr_ACME_AdobeOrg_consent', 'kndctr_ACME_AdobeOrg_syncs'), text),
        value: fc.oneof(text, fc.base64String({ maxLength: 40 }), fc.constantFrom('general=out', 'general=in', '{"pixel":1}')),
      }),
      { maxLength: 3 },
    );
    // Free-form data (not ingested): an object, or now and then anything.
    const data = fc.oneof({ arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), weight: 16 }, fc.jsonValue());
    const interact = fc.record(
      {
        events: fc.oneof({ arbitrary: fc.array(fc.record({ xdm, data }, { requiredKeys: ['xdm'] }), { minLength: 1, maxLength: 3 }), weight: 12 }, fc.jsonValue()),
        meta: fc.oneof({ arbitrary: fc.record({ state: fc.record({ entries }) }), weight: 12 }, fc.jsonValue()),
        xdm: fc.oneof({ arbitrary: fc.record({ identityMap }, { requiredKeys: [] }), weight: 12 }, fc.jsonValue()),
      },
      // Events most of the time: a body without them is refused before anything else is read.
      { requiredKeys: ['events'] },
    );
    const consent = fc.record(
      {
        consent: fc.array(
          fc.record({
            standard: fc.constantFrom('Adobe', 'IAB TCF', 'x'),
            version: fc.constantFrom('1.0', '2.0', 'x'),
            value: fc.oneof(fc.record({ general: fc.constantFrom('in', 'out', 'maybe') }), fc.jsonValue()),
          }),
          { maxLength: 2 },
        ),
        identityMap,
      },
      { requiredKeys: [] },
    );
    const path = fc.oneof(
      { arbitrary: fc.constantFrom('/ee/v1/interact', '/ee/irl1/v1/interact'), weight: 6 },
      fc.constantFrom('/ee/v1/interact', '/ee/v1/collect', '/ee/irl1/v1/interact', '/ee/v1/identity/acquire', '/ee/v1/privacy/set-consent', '/ee/b@d/v1/interact'),
    );
    // 'set-below': the datastream's id, known once before() ran.
    const config = fc.oneof({ arbitrary: fc.constant('set-below'), weight: 16 }, fc.constantFrom('', 'nope', 'x:y:z', '%00', '%ZZ'), fc.string({ maxLength: 12 }).map(encodeURIComponent));
    const raw = fc.oneof(
      { arbitrary: fc.oneof({ arbitrary: interact, weight: 12 }, { arbitrary: consent, weight: 2 }, fc.jsonValue(), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue())).map((b) => JSON.stringify(b)), weight: 8 },
      fc.constantFrom('', '{', 'null', '[]', '{"events":'),
    );

    it('never answers 5xx, errors in the edge format, answers in the interact shape', async () => {
      const seen = new Map<number, number>();
      // Interact answers to requests with events and no warning: their events went into the store.
      let stored = 0;
      await fc.assert(
        fc.asyncProperty(path, config, raw, fc.oneof({ arbitrary: fc.constantFrom('text/plain', 'text/plain; charset=UTF-8', 'application/json'), weight: 6 }, fc.constant('text/html')), fc.boolean(), async (p, c, body, type, withOrigin) => {
          const r = await h.app.inject({
            method: 'POST',
            url: `${p}?configId=${c === 'set-below' ? configId : c}`,
            headers: { 'content-type': type, ...(withOrigin ? { origin: ORIGIN } : {}) },
            payload: body,
          });
          seen.set(r.statusCode, (seen.get(r.statusCode) ?? 0) + 1);
          assert.ok(r.statusCode < 500, `${r.statusCode} ${r.body} for ${p} ${body}`);
          if (r.statusCode === 204) return;
          const answer = r.json() as Record<string, unknown>;
          if (r.statusCode >= 400) {
            assert.match(String(answer['type']), /\/edge\/errors\/EDGE-\d{4}-\d{3}$/, r.body);
            assert.equal(answer['status'], r.statusCode);
            assert.ok(typeof answer['detail'] === 'string' && answer['detail'].length > 0, r.body);
          } else {
            assert.equal(r.statusCode, 200, r.body);
            assert.ok(typeof answer['requestId'] === 'string' && Array.isArray(answer['handle']), r.body);
            // The datastream's dataset exists: a store failure is no answer to bad input.
            const warnings = (answer['warnings'] ?? []) as Array<{ code: string }>;
            assert.ok(!warnings.some((w) => w.code === 'INGESTION_UNAVAILABLE'), `${r.body} for ${body}`);
            if (!warnings.length && p.endsWith('/interact') && eventsIn(body) > 0) stored++;
          }
        }),
        { numRuns: 600 },
      );
      // The property reached every outcome: answers, refusals and events stored.
      assert.ok((seen.get(200) ?? 0) > 0 && (seen.get(400) ?? 0) > 0, `statuses ${JSON.stringify([...seen])}`);
      assert.ok(stored >= 10, `only ${stored} answers stored their events`);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      // The store keeps serving a plain page view of a visitor the fuzz used.
      const r = await h.app.inject({
        method: 'POST',
        url: `/ee/v1/interact?configId=${configId}`,
        headers: { 'content-type': 'text/plain' },
        payload: JSON.stringify({ events: [{ xdm: { eventType: 'web.webpagedetails.pageViews', identityMap: { ECID: [{ id: ecid(7) }] } } }] }),
      });
      assert.equal(r.statusCode, 200, r.body);
      const pull = (r.json() as { handle: Array<{ type: string; payload: Array<{ segments: Array<{ id: string }> }> }> }).handle.find((x) => x.type === 'activation:pull');
      assert.ok(pull?.payload[0]?.segments.some((s) => s.id === 'viewers'), JSON.stringify(pull));
    });
  });
});
