import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { interactJson } from './answer-json.js';
import type { EdgeHandle, EdgeWarning, InteractResponse } from './edge-service.js';

const text = fc.string({ unit: 'binary', maxLength: 12 });
const lookups: fc.Arbitrary<EdgeHandle> = fc.record({
  type: fc.constant('activation:pull' as const),
  payload: fc.array(
    fc.record({
      type: fc.constant('profileLookup' as const),
      destinationId: text,
      alias: text,
      segments: fc.array(fc.record({ id: fc.oneof(text, fc.constantFrom('gold', 'viewers', 'buyers')) }), { maxLength: 6 }),
    }),
    { maxLength: 3 },
  ),
});
const identity: fc.Arbitrary<EdgeHandle> = text.map((id) => ({ type: 'identity:result' as const, payload: [{ id, namespace: { code: 'ECID' as const } }] }));
const cookies: fc.Arbitrary<EdgeHandle> = fc.array(fc.record({ key: text, value: text, maxAge: fc.integer(), attrs: fc.constant({ SameSite: 'None' as const, Secure: true as const }) }), { maxLength: 3 }).map(
  (payload) => ({ type: 'state:store' as const, payload }),
);
const syncs: fc.Arbitrary<EdgeHandle> = fc.array(
  fc.oneof(
    fc.record({ type: fc.constant('url' as const), id: text, spec: fc.record({ url: text, hideReferrer: fc.boolean(), ttlMinutes: fc.nat() }) }),
    fc.record({ type: fc.constant('cookie' as const), id: text, spec: fc.record({ name: text, value: text, domain: text, ttlDays: fc.nat() }, { requiredKeys: ['name', 'value', 'ttlDays'] }) }),
  ),
  { maxLength: 3 },
).map((payload) => ({ type: 'activation:push' as const, payload }));
const warning: fc.Arbitrary<EdgeWarning> = fc.record({
  code: fc.constantFrom('EVENT_REJECTED' as const, 'COLLECT_CONSENT_REFUSED' as const),
  title: text,
  detail: text,
  report: fc.record({ eventIndex: fc.nat(), details: fc.array(fc.record({ path: text, message: text }), { maxLength: 2 }) }, { requiredKeys: [] }),
});
const answers: fc.Arbitrary<InteractResponse> = fc.record(
  { requestId: text, handle: fc.array(fc.oneof(lookups, identity, cookies, syncs), { maxLength: 5 }), warnings: fc.array(warning, { minLength: 1, maxLength: 2 }) },
  { requiredKeys: ['requestId', 'handle'] },
);

describe('the interact answer as JSON text', () => {
  it('is the text JSON.stringify writes, for any answer', () => {
    fc.assert(
      fc.property(answers, (a) => {
        assert.equal(interactJson(a), JSON.stringify(a));
      }),
      { numRuns: 1_000 },
    );
  });

  it('writes ids that need escaping as JSON does, the second time too (from its table)', () => {
    const a: InteractResponse = {
      requestId: 'r-1',
      handle: [{ type: 'activation:pull', payload: [{ type: 'profileLookup', destinationId: 'd', alias: 'a"b', segments: [{ id: 'q"\\\u2028é\u0000' }, { id: 'plain' }] }] }],
    };
    const once = interactJson(a);
    assert.equal(once, JSON.stringify(a));
    assert.equal(interactJson(a), once);
    assert.deepEqual(JSON.parse(once), a);
  });
});
