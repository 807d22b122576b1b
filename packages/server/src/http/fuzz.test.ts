import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, type Harness } from '../testing/harness.js';

// Random JSON thrown at the ingestion route: never a 5xx, never a crash, and every accepted
// record can be read back through the profile of its identity.
await describeBackends((backend) => {
  describe('ingestion fuzz', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open());
      await h.call('POST', '/v1/schemas', {
        id: 'p', name: 'P', class: 'profile',
        fieldGroups: ['profile-person-details', 'profile-loyalty-details', 'profile-personal-contact-details'], fields: {},
      });
      await h.call('POST', '/v1/schemas', { id: 'e', name: 'E', class: 'event', fieldGroups: ['event-commerce-details'], fields: {} });
      await h.call('POST', '/v1/datasets', { id: 'p', name: 'P', schemaId: 'p', profileEnabled: true });
      await h.call('POST', '/v1/datasets', { id: 'e', name: 'E', schemaId: 'e', profileEnabled: true });
    });
    after(() => h.close());

    const email = fc.emailAddress();
    const ecid = fc.stringMatching(/^\d{38}$/);
    const identityMap = fc.record(
      { email: fc.array(fc.record({ id: fc.oneof(email, fc.string()) }), { maxLength: 3 }), ECID: fc.array(fc.record({ id: fc.oneof(ecid, fc.string()) }), { maxLength: 2 }) },
      { requiredKeys: [] },
    );
    // Any code points too: U+0000 and unpaired surrogates are text no store keeps (refused per record).
    const text = fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom('a\u0000b', 'x\ud800', '\udc00'));
    const profileLike = fc.record(
      {
        identityMap,
        person: fc.record({ name: fc.record({ firstName: fc.oneof(text, fc.integer()), lastName: text }, { requiredKeys: [] }), birthDate: fc.oneof(fc.constant('1990-01-01'), fc.string()) }, { requiredKeys: [] }),
        loyalty: fc.record({ points: fc.oneof(fc.double(), fc.string()), tier: text }, { requiredKeys: [] }),
        junk: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof(fc.jsonValue(), profileLike, fc.array(fc.oneof(profileLike, fc.jsonValue()), { maxLength: 20 }));

    it('never answers 5xx and keeps every accepted record readable', async () => {
      const seen = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(body, fc.constantFrom('p', 'e', 'missing'), async (payload, dataset) => {
          const r = await h.app.inject({
            method: 'POST',
            url: `/v1/datasets/${dataset}/records`,
            headers: { authorization: `Bearer ${h.apiKey}`, 'content-type': 'application/json' },
            payload: JSON.stringify(payload),
          });
          seen.set(r.statusCode, (seen.get(r.statusCode) ?? 0) + 1);
          assert.ok(r.statusCode < 500, `${r.statusCode} ${r.body}`);
          if (r.statusCode !== 200 && r.statusCode !== 207) return;
          const sent = Array.isArray(payload) ? payload : [payload];
          const res = r.json() as { results?: Array<{ status: string; profileId?: string }> } & { status?: string; profileId?: string };
          const results = res.results ?? [res];
          assert.equal(results.length, sent.length);
          for (const [i, result] of results.entries()) {
            if (result.status !== 'accepted') continue;
            const rec = sent[i] as { identityMap?: Record<string, Array<{ id: string }>> };
            const [ns, list] = Object.entries(rec.identityMap ?? {}).find(([, l]) => l.length > 0)!;
            const p = await h.call('GET', `/v1/profiles?ns=${ns}&id=${encodeURIComponent(list[0]!.id)}`);
            assert.equal(p.statusCode, 200, p.body);
            assert.equal(p.json().profileId, result.profileId);
          }
        }),
        { numRuns: 300 },
      );
      // The property reached the store: records were accepted, and refused.
      assert.ok((seen.get(200) ?? 0) + (seen.get(207) ?? 0) > 0, `statuses ${JSON.stringify([...seen])}`);
      assert.ok((seen.get(400) ?? 0) > 0, `statuses ${JSON.stringify([...seen])}`);
    });

    it('answers malformed and oversize bodies with a clear 4xx', async () => {
      const bad = await h.app.inject({ method: 'POST', url: '/v1/datasets/p/records', headers: { authorization: `Bearer ${h.apiKey}`, 'content-type': 'application/json' }, payload: '{"a": ' });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.code, 'MALFORMED_JSON');
      const big = { identityMap: { email: [{ id: 'big@example.com' }] }, person: { name: { firstName: 'x'.repeat(200_000) } } };
      const r = await h.call('POST', '/v1/datasets/p/records', big);
      assert.equal(r.statusCode, 413);
      assert.equal(r.json().error.code, 'RECORD_TOO_LARGE');
      const noKey = await h.app.inject({ method: 'GET', url: '/v1/schemas' });
      assert.equal(noKey.statusCode, 401);
      assert.equal(noKey.json().error.code, 'UNAUTHENTICATED');
    });
  });
});
