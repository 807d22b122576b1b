import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { planEviction, type GraphMember } from './graph.js';
import { NamespaceRegistry, deriveEmailSha256, normalizeIdentity, normalizePhone } from './namespaces.js';
import { sha256Hex } from './sha256.js';

describe('namespaces', () => {
  const reg = new NamespaceRegistry([]);
  it('normalises emails, phones and ECIDs', () => {
    assert.deepEqual(normalizeIdentity(reg.get('EMAIL')!, '  John.Doe@ACME.com '), { ok: true, id: 'john.doe@acme.com' });
    assert.deepEqual(normalizePhone('+33 6 12-34.56 78'), { ok: true, id: '+33612345678' });
    assert.deepEqual(normalizePhone('0033 612345678'), { ok: true, id: '+33612345678' });
    assert.equal(normalizePhone('0612345678').ok, false);
    assert.equal(normalizeIdentity(reg.get('ecid')!, '1'.repeat(38)).ok, true);
    assert.equal(normalizeIdentity(reg.get('ecid')!, '1'.repeat(37)).ok, false);
    assert.equal(normalizeIdentity(reg.get('ecid')!, `${'1'.repeat(37)}a`).ok, false);
    assert.equal(normalizeIdentity(reg.get('email')!, 'not-an-email').ok, false);
  });

  it('derives email_lc_sha256 from the normalised address', () => {
    const expected = createHash('sha256').update('john.doe@acme.com').digest('hex');
    assert.equal(deriveEmailSha256(' John.Doe@ACME.com'), expected);
  });

  it('computes SHA-256 like node:crypto for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => {
        assert.equal(sha256Hex(s), createHash('sha256').update(s, 'utf8').digest('hex'));
      }),
      { numRuns: 300 },
    );
  });

  it('accepts custom namespaces with a pattern', () => {
    const r = new NamespaceRegistry([{ code: 'loyaltyId', name: 'Loyalty', type: 'person', pattern: '^L\\d+$', standard: false }]);
    assert.equal(normalizeIdentity(r.get('LOYALTYID')!, 'L123').ok, true);
    assert.equal(normalizeIdentity(r.get('loyaltyid')!, 'X123').ok, false);
  });
});

describe('graph eviction', () => {
  const m = (ns: string, id: string, type: GraphMember['type'], lastSeen: number): GraphMember => ({ ns, id, type, lastSeen });
  it('evicts cookies before devices before people, oldest first, never the protected ones', () => {
    const members = [
      m('email', 'a', 'person', 1),
      m('ecid', 'c1', 'cookie', 5),
      m('ecid', 'c2', 'cookie', 3),
      m('idfa', 'd1', 'device', 0),
      m('ecid', 'c3', 'cookie', 1),
    ];
    const evicted = planEviction(members, 2, new Set(['ecid\u0000c3']));
    assert.deepEqual(evicted.map((e) => e.id), ['c2', 'c1', 'd1']);
    assert.deepEqual(planEviction(members, 10, new Set()), []);
  });
});
