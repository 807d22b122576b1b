/**
 * Conformance suite of the storage port's batch segmentation methods (scanBatchProfiles,
 * writeBatchMemberships), on every adapter: a page's changes are logged in order with
 * increasing seqs, confirmations turn exactly the still-realized memberships of the evaluated
 * profiles and audiences into existing (keeping their lastQualificationTime), re-evaluations
 * keep the earliest request, and the scan reads snapshots with their memberships.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Membership } from '@audient/core';
import type { BatchMembershipPage, Store } from './port.js';
import { decodeSnapshot } from './snapshot.js';
import { describeBackends, eachStoreWithSandboxes, writePlan as plan } from './testing.js';

const T0 = 1_700_000_000_000;
const T1 = T0 + 60_000;

const member = (audienceId: string, status: Membership['status'], lastQualificationTime = T0): Membership => ({ audienceId, status, lastQualificationTime });
const byAudience = (x: Membership, y: Membership): number => (x.audienceId < y.audienceId ? -1 : x.audienceId > y.audienceId ? 1 : 0);

async function membersOf(store: Store, sandboxId: string, ids: string[]): Promise<Record<string, Membership[]>> {
  const m = await store.memberships(sandboxId, ids);
  return Object.fromEntries(ids.map((id) => [id, [...m.get(id)!].sort(byAudience)]));
}

const page = (over: Partial<BatchMembershipPage>): BatchMembershipPage => ({
  changes: [], confirm: { profileIds: [], audienceIds: [], unconfirmed: [] }, schedule: [], ...over,
});

await describeBackends((backend) => {
  let store: Store;
  eachStoreWithSandboxes(backend, (s) => (store = s));

  it('writes changes with their events and confirms the still-realized memberships set-based', async () => {
    // Before the run: p1 realized in a, b, c and exited from d; p2 realized in a; p3 realized in a (not evaluated).
    await store.writeMemberships('a', [
      { profileId: 'p1', audienceId: 'a', membership: member('a', 'realized') },
      { profileId: 'p1', audienceId: 'b', membership: member('b', 'realized') },
      { profileId: 'p1', audienceId: 'c', membership: member('c', 'realized') },
      { profileId: 'p1', audienceId: 'd', membership: member('d', 'exited') },
      { profileId: 'p1', audienceId: 'other', membership: member('other', 'realized') },
      { profileId: 'p2', audienceId: 'a', membership: member('a', 'realized') },
      { profileId: 'p3', audienceId: 'a', membership: member('a', 'realized') },
    ], T0);
    await store.writeMemberships('b', [{ profileId: 'p1', audienceId: 'a', membership: member('a', 'realized') }], T0);
    const head = await store.membershipEventHead('a');

    const events = await store.writeBatchMemberships('a', page({
      // p1 leaves b and enters d again; p2 enters e (new).
      changes: [
        { profileId: 'p1', audienceId: 'b', status: 'exited' },
        { profileId: 'p1', audienceId: 'd', status: 'realized' },
        { profileId: 'p2', audienceId: 'e', status: 'realized' },
      ],
      // p1's evaluation of c failed: it stays realized. 'other' is not an audience of the run.
      confirm: { profileIds: ['p1', 'p2'], audienceIds: ['a', 'b', 'c', 'd', 'e'], unconfirmed: [{ profileId: 'p1', audienceId: 'c' }] },
    }), T1);

    assert.deepEqual(events.map((e) => [e.profileId, e.audienceId, e.status, e.at, e.sandboxId]), [
      ['p1', 'b', 'exited', T1, 'a'], ['p1', 'd', 'realized', T1, 'a'], ['p2', 'e', 'realized', T1, 'a'],
    ]);
    assert.ok(events[0]!.seq > head && events[1]!.seq > events[0]!.seq && events[2]!.seq > events[1]!.seq, 'seqs follow the input order');
    assert.deepEqual((await store.readMembershipEvents('a', head, 10)).map((e) => [e.seq, e.profileId, e.audienceId, e.status]),
      events.map((e) => [e.seq, e.profileId, e.audienceId, e.status]), 'the events returned are the ones logged');

    assert.deepEqual(await membersOf(store, 'a', ['p1', 'p2', 'p3']), {
      p1: [member('a', 'existing', T0), member('b', 'exited', T1), member('c', 'realized', T0), member('d', 'realized', T1), member('other', 'realized', T0)],
      p2: [member('a', 'existing', T0), member('e', 'realized', T1)],
      p3: [member('a', 'realized', T0)],
    });
    assert.deepEqual(await membersOf(store, 'b', ['p1']), { p1: [member('a', 'realized', T0)] }, 'another sandbox is untouched');

    // The next run confirms what this one realized.
    assert.deepEqual(await store.writeBatchMemberships('a', page({ confirm: { profileIds: ['p2'], audienceIds: ['e'], unconfirmed: [] } }), T1 + 1), []);
    assert.deepEqual((await membersOf(store, 'a', ['p2'])).p2, [member('a', 'existing', T0), member('e', 'existing', T1)]);
  });

  it('schedules re-evaluations, the earliest request winning', async () => {
    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 + 50 }, { profileId: 'p2', dueAt: T0 + 10 }]);
    await store.writeBatchMemberships('a', page({ schedule: [{ profileId: 'p1', dueAt: T0 + 20 }, { profileId: 'p2', dueAt: T0 + 30 }, { profileId: 'p3', dueAt: T0 + 40 }] }), T0);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 100, 10), [
      { sandboxId: 'a', profileId: 'p2', dueAt: T0 + 10 }, { sandboxId: 'a', profileId: 'p1', dueAt: T0 + 20 }, { sandboxId: 'a', profileId: 'p3', dueAt: T0 + 40 },
    ]);
  });

  it('scans snapshots with their memberships as JSON texts, in profile id order, in chunks', async () => {
    const ident = (id: string, graphId: string) => ({ ns: 'email', id, graphId, type: 'person' as const, lastSeen: T0 });
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('x', 'g1'), ident('y', 'g2'), ident('z', 'g3')],
      fragments: [{ datasetId: 'crm', ns: 'email', id: 'x', graphId: 'g1', attributes: { n: 1 }, timestamp: T0 }],
    }), T0));
    await store.refreshProfileSnapshots('a', undefined, T0);
    await store.writeMemberships('a', [
      { profileId: 'g1', audienceId: 'q"uote', membership: member('q"uote', 'existing', T0) },
      { profileId: 'g1', audienceId: 'b', membership: member('b', 'exited', T1) },
      { profileId: 'g3', audienceId: 'b', membership: member('b', 'realized', T1) },
    ], T0);
    await store.writeMemberships('b', [{ profileId: 'g2', audienceId: 'b', membership: member('b', 'realized', T1) }], T0);
    const chunks = await store.scanBatchProfiles('a', undefined, 3, 2);
    const ordered = (cs: typeof chunks): string[][] => cs.map((c) => [...c.profileIds].sort());
    assert.deepEqual(ordered(chunks), [['g1', 'g2'], ['g3']], 'chunks of 2 consecutive profiles');
    assert.deepEqual(chunks.map((c) => c.last), ['g2', 'g3']);
    assert.deepEqual(ordered(await store.scanBatchProfiles('a', 'g1', 10, 5)), [['g2', 'g3']], 'after g1');
    assert.deepEqual(ordered(await store.scanBatchProfiles('a', undefined, 2, 5)), [['g1', 'g2']], 'limit');
    assert.deepEqual(await store.scanBatchProfiles('a', 'g3', 10, 5), [], 'nothing after the last');
    // Per profile, in the chunk's order: its snapshot and its memberships.
    const byId = new Map<string, [unknown, Array<[string, string, number]>]>();
    for (const c of chunks) {
      const snaps = JSON.parse(c.snapshots) as unknown[];
      const lists = JSON.parse(c.memberships) as Array<Array<[string, string, number]>>;
      assert.equal(snaps.length, c.profileIds.length);
      assert.equal(lists.length, c.profileIds.length);
      c.profileIds.forEach((id, i) => byId.set(id, [snaps[i], lists[i]!.sort((x, y) => (x[0] < y[0] ? -1 : 1))]));
    }
    const decoded = await store.scanProfileSnapshots('a', undefined, 10, 0);
    assert.equal(decoded.length, 3);
    for (const snap of decoded) assert.deepEqual(decodeSnapshot(snap.profileId, byId.get(snap.profileId)![0] as object, 0), snap, `the snapshot of ${snap.profileId}`);
    assert.deepEqual(['g1', 'g2', 'g3'].map((id) => byId.get(id)![1]), [[['b', 'exited', T1], ['q"uote', 'existing', T0]], [], [['b', 'realized', T1]]]);
  });

  it('writes nothing of a profile privacy-deleted after the page read it', async () => {
    const ident = (id: string, graphId: string) => ({ ns: 'email', id, graphId, type: 'person' as const, lastSeen: T0 });
    await store.ingest('a', (tx) => tx.apply(plan({ newIdentities: [ident('x', 'g1'), ident('y', 'g2')] }), T0));
    await store.deleteProfile('a', 'g1', T0 + 1);
    const events = await store.writeBatchMemberships('a', page({
      changes: [{ profileId: 'g1', audienceId: 'a', status: 'realized' }, { profileId: 'g2', audienceId: 'a', status: 'realized' }],
      schedule: [{ profileId: 'g1', dueAt: T1 }, { profileId: 'g2', dueAt: T1 }],
    }), T1);
    assert.deepEqual(events.map((e) => [e.profileId, e.audienceId, e.status]), [['g2', 'a', 'realized']]);
    assert.deepEqual(await membersOf(store, 'a', ['g1', 'g2']), { g1: [], g2: [member('a', 'realized', T1)] });
    assert.deepEqual((await store.readMembershipEvents('a', 0, 10)).map((e) => e.profileId), ['g2']);
    assert.deepEqual((await store.takeDueReevaluations(T1, 10)).map((d) => d.profileId), ['g2']);
  });
});
