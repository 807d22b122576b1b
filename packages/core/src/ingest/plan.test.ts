import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IdentityRef } from '../identity/extract.js';
import { planIngest, type BatchRecord, type IngestSnapshot, type PlanOptions, type StoredIdentity } from './plan.js';

const MIN = 60_000;
const NOW = Date.UTC(2024, 5, 1, 12);

const event = (eventId: string, ...identities: IdentityRef[]): BatchRecord => ({
  datasetId: 'web',
  prepared: { ok: true, kind: 'event', identities, primary: identities[0]!, eventId, timestamp: NOW, body: { _id: eventId } },
});
const stored = (ns: string, id: string, graphId: string, lastSeen: number): StoredIdentity => ({ ns, id, graphId, type: 'cookie', lastSeen });
const snapshot = (members: StoredIdentity[]): IngestSnapshot => ({ members, fragments: new Map(), existingEvents: new Set() });
let seq = 0;
const opts = (extra: Partial<PlanOptions> = {}): PlanOptions => ({
  now: NOW, maxGraphSize: 50, namespaceType: () => 'cookie', newId: () => `g-new-${++seq}`, ...extra,
});

describe('planIngest last-seen refresh', () => {
  const members = [stored('ecid', 'recent', 'g1', NOW - 30_000), stored('ecid', 'old', 'g1', NOW - 2 * MIN)];
  const records = [event('e1', { ns: 'ecid', id: 'recent' }, { ns: 'ecid', id: 'old' })];

  it('refreshes every known identity by default', () => {
    const plan = planIngest(records, snapshot(members), opts());
    assert.deepEqual(plan.touchedIdentities.map((t) => `${t.id}@${t.lastSeen - NOW}`).sort(), ['old@0', 'recent@0']);
  });

  it('with a resolution, rewrites only identities whose stored time is at least that old', () => {
    const plan = planIngest(records, snapshot(members), opts({ lastSeenResolutionMs: MIN }));
    assert.deepEqual(plan.touchedIdentities.map((t) => `${t.id}@${t.lastSeen - NOW}`), ['old@0']);
    assert.deepEqual(plan.results, [{ profileId: 'g1', duplicate: false }]);
    assert.equal(plan.changes.length, 1);
  });

  it('still evicts by the stored times when the graph outgrows its limit', () => {
    // 'recent' keeps its stored time (not refreshed), 'old' is refreshed to now: 'recent' goes.
    const plan = planIngest(
      [event('e2', { ns: 'ecid', id: 'new' }, { ns: 'ecid', id: 'old' })],
      snapshot(members),
      opts({ lastSeenResolutionMs: MIN, maxGraphSize: 2 }),
    );
    assert.deepEqual(plan.evictedIdentities, [{ ns: 'ecid', id: 'recent' }]);
    assert.deepEqual(plan.newIdentities.map((i) => i.id), ['new']);
    assert.deepEqual(plan.touchedIdentities.map((t) => t.id), ['old']);
  });

  it('links, merges and reports as before whatever the resolution', () => {
    const two = [stored('ecid', 'a', 'g1', NOW - 1000), stored('email', 'x@e.com', 'g1', NOW - 1000), stored('ecid', 'b', 'g2', NOW - 1000)];
    const recs = [event('e3', { ns: 'ecid', id: 'b' }, { ns: 'email', id: 'x@e.com' })];
    const coarse = planIngest(recs, snapshot(two), opts({ lastSeenResolutionMs: MIN }));
    const exact = planIngest(recs, snapshot(two), opts());
    assert.deepEqual(coarse.graphMerges, [{ from: 'g2', to: 'g1' }]);
    assert.deepEqual(coarse.graphMerges, exact.graphMerges);
    assert.deepEqual(coarse.changes, exact.changes);
    assert.deepEqual(coarse.results, exact.results);
    assert.deepEqual(coarse.touchedIdentities, []);
    assert.equal(exact.touchedIdentities.length, 2);
  });
});

describe('planIngest created graphs', () => {
  const id = (ns: string, v: string): IdentityRef => ({ ns, id: v });

  it('names a graph it creates from unknown identities, and not one it adds to', () => {
    const plan = planIngest([event('n1', id('ecid', 'fresh')), event('k1', id('ecid', 'known'))], snapshot([stored('ecid', 'known', 'g1', NOW)]), opts());
    const fresh = plan.results[0]!.profileId;
    assert.notEqual(fresh, 'g1');
    assert.deepEqual(plan.createdGraphs, [fresh]);
  });

  it('a created graph that later records of the plan add to stays created', () => {
    const plan = planIngest([event('n1', id('ecid', 'fresh')), event('n2', id('ecid', 'fresh'), id('email', 'a@e.com'))], snapshot([]), opts());
    assert.equal(plan.results[0]!.profileId, plan.results[1]!.profileId);
    assert.deepEqual(plan.createdGraphs, [plan.results[0]!.profileId]);
  });

  it('neither side of a merge is created: one holds what another graph held', () => {
    // A new graph merged with a known one (either may win), and two new graphs merged together.
    const known = planIngest(
      [event('n1', id('ecid', 'fresh')), event('m1', id('ecid', 'fresh'), id('ecid', 'known'))],
      snapshot([stored('ecid', 'known', 'g1', NOW), stored('email', 'k@e.com', 'g1', NOW)]),
      opts(),
    );
    assert.equal(known.graphMerges.length, 1);
    assert.deepEqual(known.createdGraphs, []);
    const both = planIngest([event('n1', id('ecid', 'x')), event('n2', id('ecid', 'y')), event('m1', id('ecid', 'x'), id('ecid', 'y'))], snapshot([]), opts());
    assert.equal(both.graphMerges.length, 1);
    assert.deepEqual(both.createdGraphs, []);
  });
});
