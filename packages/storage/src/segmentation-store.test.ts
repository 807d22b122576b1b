/**
 * Conformance suite of the storage port's segmentation methods (audiences, memberships and
 * their events, profile paging and loading, re-evaluations, size history), on every adapter.
 * Profiles are created with hand-built plans, so these tests pin storage, not planning.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Membership, StoredFragment } from '@audient/core';
import { REEVALUATION_LEASE_MS as LEASE, type AudienceRow, type MembershipWrite, type Store } from './port.js';
import { describeBackends, eachStoreWithSandboxes, writePlan as plan } from './testing.js';

const T0 = 1_700_000_000_000;

const audience = (id: string, over: Partial<AudienceRow> = {}): AudienceRow => ({
  id, name: `Audience ${id}`, description: 'adults on the web', query: 'person.age >= 18',
  mergePolicy: { kind: 'dataset-precedence', order: ['crm', 'web'] }, method: 'streaming', methodReason: 'only profile attributes',
  dependsOn: [], version: 1, createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z', ...over,
});

const member = (audienceId: string, status: Membership['status'], lastQualificationTime = T0): Membership =>
  ({ audienceId, status, lastQualificationTime });

/** A write that stores `status` (or deletes, for null) and logs `event` when given. */
const write = (
  profileId: string,
  audienceId: string,
  status: Membership['status'] | null,
  event?: MembershipWrite['event'],
  at = T0,
): MembershipWrite => ({ profileId, audienceId, membership: status === null ? null : member(audienceId, status, at), event });

const ident = (id: string, graphId: string) => ({ ns: 'email', id, graphId, type: 'person' as const, lastSeen: T0 });
const fragment = (datasetId: string, id: string, graphId: string, attributes: Record<string, unknown>): StoredFragment =>
  ({ datasetId, ns: 'email', id, graphId, attributes, timestamp: T0 });
const event = (eventId: string, graphId: string, timestamp: number) =>
  ({ datasetId: 'web', eventId, graphId, timestamp, body: { eventType: 'page', eventId, nested: { list: [1, 'two'] } } });

const byFragmentKey = (x: StoredFragment, y: StoredFragment): number =>
  `${x.datasetId}/${x.id}`.localeCompare(`${y.datasetId}/${y.id}`);

await describeBackends((backend) => {
  let store: Store;
  eachStoreWithSandboxes(backend, (s) => (store = s));

  it('puts, gets, lists and deletes audiences, per sandbox', async () => {
    await store.putAudience('a', audience('aud2'));
    await store.putAudience('a', audience('aud1'));
    const updated = audience('aud1', { name: 'Renamed', method: 'batch', dependsOn: ['aud2'], version: 2, updatedAt: '2024-02-01T00:00:00.000Z' });
    await store.putAudience('a', updated);
    await store.putAudience('b', audience('aud1', { name: 'B only' }));

    assert.deepEqual(await store.getAudience('a', 'aud1'), updated);
    assert.deepEqual((await store.listAudiences('a')).map((x) => x.id), ['aud1', 'aud2']);
    assert.equal((await store.getAudience('b', 'aud1'))?.name, 'B only');
    assert.equal(await store.getAudience('b', 'aud2'), undefined);
    assert.equal(await store.getAudience('a', 'nope'), undefined);

    assert.equal(await store.deleteAudience('b', 'aud2'), false, 'another sandbox cannot delete it');
    assert.equal(await store.deleteAudience('a', 'aud1'), true);
    assert.equal(await store.deleteAudience('a', 'aud1'), false, 'already deleted');
    assert.deepEqual((await store.listAudiences('a')).map((x) => x.id), ['aud2']);
    assert.equal((await store.getAudience('b', 'aud1'))?.name, 'B only');
    assert.deepEqual(await store.listAudiences('c'), []);
  });

  it('deletes an audience with its memberships and size history, and nothing else', async () => {
    await store.putAudience('a', audience('A'));
    await store.putAudience('a', audience('B'));
    await store.putAudience('b', audience('A'));
    await store.writeMemberships('a', [write('p1', 'A', 'realized', 'realized'), write('p1', 'B', 'realized'), write('p2', 'A', 'exited')], T0);
    await store.writeMemberships('b', [write('p1', 'A', 'realized')], T0);
    await store.addAudienceSize('a', 'A', { at: T0, size: 1, source: 'batch' });
    await store.addAudienceSize('a', 'B', { at: T0, size: 1, source: 'batch' });
    await store.addAudienceSize('b', 'A', { at: T0, size: 1, source: 'batch' });

    assert.equal(await store.deleteAudience('a', 'A'), true);
    const after = await store.memberships('a', ['p1', 'p2']);
    assert.deepEqual(after.get('p1'), [member('B', 'realized')]);
    assert.deepEqual(after.get('p2'), []);
    assert.deepEqual(await store.countMembers('a', 'A'), { realized: 0, existing: 0, exited: 0 });
    assert.deepEqual(await store.audienceSizes('a', 'A', 10), []);
    assert.equal((await store.audienceSizes('a', 'B', 10)).length, 1);
    assert.deepEqual((await store.memberships('b', ['p1'])).get('p1'), [member('A', 'realized')], 'the same audience id in another sandbox survives');
    assert.equal((await store.audienceSizes('b', 'A', 10)).length, 1);
    assert.equal((await store.readMembershipEvents('a', 0, 10)).length, 1, 'the event log is append-only');
  });

  it('writes memberships: upserts, deletes, and logs events in input order', async () => {
    assert.deepEqual(await store.writeMemberships('a', [], T0), []);

    const first = await store.writeMemberships('a', [
      write('p2', 'A', 'realized', 'realized'),
      write('p1', 'B', 'existing'),
      write('p1', 'A', 'realized', 'realized'),
      write('p3', 'A', null),
    ], T0 + 1);
    assert.deepEqual(first.map(({ seq: _, ...e }) => e), [
      { sandboxId: 'a', audienceId: 'A', profileId: 'p2', status: 'realized', at: T0 + 1 },
      { sandboxId: 'a', audienceId: 'A', profileId: 'p1', status: 'realized', at: T0 + 1 },
    ]);
    assert.ok(first[0]!.seq < first[1]!.seq, `seqs increase in input order: ${first.map((e) => e.seq).join(',')}`);
    assert.equal(typeof first[0]!.seq, 'number');

    const second = await store.writeMemberships('a', [
      write('p1', 'A', 'exited', 'exited', T0 + 2),
      write('p2', 'A', null, 'exited'),
      write('p1', 'B', 'existing', undefined, T0 + 2),
      // The same key twice: the last write wins, as if applied one by one.
      write('p4', 'A', 'realized'), write('p4', 'A', null),
      write('p5', 'A', null), write('p5', 'A', 'realized', 'realized', T0 + 2),
    ], T0 + 2);
    assert.deepEqual(second.map((e) => [e.profileId, e.status]), [['p1', 'exited'], ['p2', 'exited'], ['p5', 'realized']]);
    assert.ok(first[1]!.seq < second[0]!.seq && second[0]!.seq < second[1]!.seq && second[1]!.seq < second[2]!.seq);

    const now = await store.memberships('a', ['p1', 'p2', 'p3', 'p4', 'p5']);
    assert.deepEqual(Object.fromEntries(now), {
      p1: [member('A', 'exited', T0 + 2), member('B', 'existing', T0 + 2)],
      p2: [], p3: [], p4: [],
      p5: [member('A', 'realized', T0 + 2)],
    });
    assert.deepEqual(await store.readMembershipEvents('a', 0, 100), [...first, ...second], 'returned events are the logged ones');
    assert.deepEqual((await store.memberships('b', ['p1'])).get('p1'), [], 'another sandbox sees none');
  });

  it('writes memberships atomically: a failing write leaves no membership and no event', async () => {
    await store.writeMemberships('a', [write('p0', 'A', 'realized', 'realized')], T0);
    await assert.rejects(store.writeMemberships('a', [
      write('p1', 'A', 'realized', 'realized'),
      write('p0', 'A', null, 'exited'),
      { profileId: 'p2', audienceId: 'A', membership: member('A', 'realized', Number.NaN), event: 'realized' },
    ], T0 + 1));
    const now = await store.memberships('a', ['p0', 'p1', 'p2']);
    assert.deepEqual(Object.fromEntries(now), { p0: [member('A', 'realized')], p1: [], p2: [] });
    assert.equal((await store.readMembershipEvents(undefined, 0, 10)).length, 1);
    assert.equal((await store.writeMemberships('a', [write('p1', 'A', 'realized', 'realized')], T0 + 2)).length, 1, 'the store stays usable');
  });

  it('concurrent membership writes: each call gets its own events, as if the calls were made one after another', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({ newIdentities: [ident('x', 'gone')] }), T0));
    await store.deleteProfile('a', 'gone', T0);
    // A write in progress, and calls made meanwhile (the stores commit those together).
    const calls = await Promise.all([
      store.writeMemberships('a', [write('p1', 'A', 'realized', 'realized')], T0 + 1),
      store.writeMemberships('a', [write('gone', 'A', 'realized', 'realized'), write('p2', 'A', 'realized', 'realized'), write('p2', 'B', 'realized', 'realized')], T0 + 2),
      store.writeMemberships('b', [write('p1', 'A', 'realized', 'realized')], T0 + 3),
      // Nothing logged for a deleted profile, whatever the next call logs.
      store.writeMemberships('a', [write('gone', 'B', 'realized', 'realized')], T0 + 4),
      // The same keys as earlier calls: the later call decides the rows.
      store.writeMemberships('a', [write('p3', 'B', 'realized', 'realized'), write('p1', 'A', 'exited', 'exited', T0 + 5), write('p2', 'B', null, 'exited')], T0 + 5),
    ]);
    assert.deepEqual(calls.map((c) => c.map((e) => `${e.sandboxId}/${e.profileId}/${e.audienceId}/${e.status}@${e.at - T0}`)), [
      ['a/p1/A/realized@1'],
      ['a/p2/A/realized@2', 'a/p2/B/realized@2'],
      ['b/p1/A/realized@3'],
      [],
      ['a/p3/B/realized@5', 'a/p1/A/exited@5', 'a/p2/B/exited@5'],
    ]);
    const inA = [0, 1, 3, 4].flatMap((i) => calls[i]!.map((e) => e.seq));
    assert.deepEqual(inA, [...inA].sort((x, y) => x - y), `seqs follow the calls' order in a sandbox: ${inA.join(',')}`);
    assert.deepEqual(await store.readMembershipEvents(undefined, 0, 100), calls.flat().sort((x, y) => x.seq - y.seq), 'the log holds exactly the returned events');
    const now = await store.memberships('a', ['p1', 'p2', 'p3', 'gone']);
    assert.deepEqual(Object.fromEntries(now), { p1: [member('A', 'exited', T0 + 5)], p2: [member('A', 'realized')], p3: [member('B', 'realized')], gone: [] });
  });

  it('concurrent membership writes: a failing call costs no other', async () => {
    const calls = await Promise.allSettled([
      store.writeMemberships('a', [write('p1', 'A', 'realized', 'realized')], T0 + 1),
      store.writeMemberships('a', [write('p2', 'A', 'realized', 'realized')], T0 + 2),
      store.writeMemberships('a', [write('p3', 'A', 'realized', 'realized'), { profileId: 'p4', audienceId: 'A', membership: member('A', 'realized', Number.NaN), event: 'realized' }], T0 + 3),
      store.writeMemberships('a', [write('p5', 'A', 'realized', 'realized')], T0 + 4),
    ]);
    assert.deepEqual(calls.map((c) => (c.status === 'fulfilled' ? c.value.map((e) => e.profileId) : 'failed')), [['p1'], ['p2'], 'failed', ['p5']]);
    const now = await store.memberships('a', ['p1', 'p2', 'p3', 'p4', 'p5']);
    assert.deepEqual(Object.fromEntries(now), { p1: [member('A', 'realized')], p2: [member('A', 'realized')], p3: [], p4: [], p5: [member('A', 'realized')] });
    assert.deepEqual((await store.readMembershipEvents('a', 0, 10)).map((e) => e.profileId), ['p1', 'p2', 'p5']);
  });

  it('confirms only the entries named: realized since that time, nothing exited, entered again, deleted or of another sandbox', async () => {
    await store.writeMemberships('a', [
      write('p1', 'A', 'realized'), write('p1', 'B', 'realized'), write('p2', 'A', 'realized', undefined, T0 + 5),
      write('p3', 'A', 'exited'), write('p4', 'A', 'existing'), write('p5', 'A', 'realized'),
    ], T0);
    await store.writeMemberships('b', [write('p1', 'A', 'realized')], T0);
    await store.writeMemberships('a', [write('p5', 'A', null)], T0);
    const changed = await store.confirmMemberships('a', [
      { profileId: 'p1', audienceId: 'A', lastQualificationTime: T0 },
      { profileId: 'p1', audienceId: 'A', lastQualificationTime: T0 },
      { profileId: 'p1', audienceId: 'B', lastQualificationTime: T0 },
      { profileId: 'p2', audienceId: 'A', lastQualificationTime: T0 },
      { profileId: 'p3', audienceId: 'A', lastQualificationTime: T0 },
      { profileId: 'p4', audienceId: 'A', lastQualificationTime: T0 },
      { profileId: 'p5', audienceId: 'A', lastQualificationTime: T0 },
      { profileId: 'p9', audienceId: 'A', lastQualificationTime: T0 },
    ]);
    assert.equal(changed, 2, 'p1 in A and in B');
    const got = await store.memberships('a', ['p1', 'p2', 'p3', 'p4', 'p5', 'p9']);
    assert.deepEqual(got.get('p1'), [member('A', 'existing'), member('B', 'existing')]);
    assert.deepEqual(got.get('p2'), [member('A', 'realized', T0 + 5)], 'entered again since: left realized');
    assert.deepEqual(got.get('p3'), [member('A', 'exited')], 'exited: not brought back');
    assert.deepEqual(got.get('p4'), [member('A', 'existing')]);
    assert.deepEqual(got.get('p5'), [], 'deleted: not brought back');
    assert.deepEqual(got.get('p9'), []);
    assert.deepEqual((await store.memberships('b', ['p1'])).get('p1'), [member('A', 'realized')], 'another sandbox is left alone');
    assert.equal(await store.confirmMemberships('a', []), 0);
    assert.deepEqual((await store.readMembershipEvents('a', 0, 100)).length, 0, 'a confirmation is no membership event');
  });

  it('reads memberships of many profiles at once; unknown profiles map to []', async () => {
    await store.writeMemberships('a', [
      write('p1', 'B', 'existing'), write('p1', 'A', 'realized'), write('p2', 'C', 'exited'), write('p9', 'A', 'realized'),
    ], T0);
    await store.writeMemberships('b', [write('p1', 'Z', 'realized')], T0);
    const got = await store.memberships('a', ['p2', 'nope', 'p1']);
    assert.deepEqual([...got.keys()], ['p2', 'nope', 'p1']);
    assert.deepEqual(got.get('p1'), [member('A', 'realized'), member('B', 'existing')], 'ordered by audience id');
    assert.deepEqual(got.get('p2'), [member('C', 'exited')]);
    assert.deepEqual(got.get('nope'), []);
    assert.deepEqual((await store.memberships('a', [])).size, 0);

    const many = Array.from({ length: 600 }, (_, i) => `m${i}`);
    await store.writeMemberships('a', many.map((p) => write(p, 'A', 'realized')), T0);
    const all = await store.memberships('a', many);
    assert.equal(all.size, 600);
    assert.ok([...all.values()].every((ms) => ms.length === 1));
  });

  it('lists members by profile id with a status filter, and counts them', async () => {
    await store.writeMemberships('a', [
      write('p05', 'A', 'realized'), write('p01', 'A', 'existing'), write('p03', 'A', 'exited'),
      write('p02', 'A', 'realized'), write('p04', 'A', 'existing'), write('P00', 'A', 'realized'),
      write('p01', 'B', 'realized'),
    ], T0);
    await store.writeMemberships('b', [write('p00', 'A', 'realized')], T0);

    const inside: Array<Membership['status']> = ['realized', 'existing'];
    const p1 = await store.listMembers('a', 'A', { statuses: inside, limit: 2 });
    assert.deepEqual(p1, [
      { profileId: 'P00', membership: member('A', 'realized') },
      { profileId: 'p01', membership: member('A', 'existing') },
    ], 'byte order: upper case first');
    const p2 = await store.listMembers('a', 'A', { statuses: inside, limit: 2, after: p1.at(-1)?.profileId });
    assert.deepEqual(p2.map((m) => m.profileId), ['p02', 'p04']);
    const p3 = await store.listMembers('a', 'A', { statuses: inside, limit: 2, after: 'p04' });
    assert.deepEqual(p3.map((m) => m.profileId), ['p05']);
    assert.deepEqual(await store.listMembers('a', 'A', { statuses: inside, limit: 2, after: 'p05' }), []);
    assert.deepEqual((await store.listMembers('a', 'A', { statuses: ['exited'], limit: 10 })).map((m) => m.profileId), ['p03']);
    assert.deepEqual(await store.listMembers('a', 'A', { statuses: [], limit: 10 }), []);
    assert.deepEqual((await store.listMembers('b', 'A', { statuses: inside, limit: 10 })).map((m) => m.profileId), ['p00']);

    assert.deepEqual(await store.countMembers('a', 'A'), { realized: 3, existing: 2, exited: 1 });
    assert.deepEqual(await store.countMembers('a', 'B'), { realized: 1, existing: 0, exited: 0 });
    assert.deepEqual(await store.countMembers('a', 'nope'), { realized: 0, existing: 0, exited: 0 });
    assert.deepEqual(await store.countMembers('b', 'A'), { realized: 1, existing: 0, exited: 0 });
  });

  it('reads membership events per sandbox and across sandboxes, after a seq, with a limit', async () => {
    const a1 = await store.writeMemberships('a', [write('p1', 'A', 'realized', 'realized'), write('p2', 'A', 'realized', 'realized')], T0);
    const b1 = await store.writeMemberships('b', [write('p1', 'A', 'realized', 'realized')], T0 + 1);
    const a2 = await store.writeMemberships('a', [write('p1', 'A', 'exited', 'exited')], T0 + 2);
    const seqs = (rows: ReadonlyArray<{ seq: number }>): number[] => rows.map((r) => r.seq);

    assert.deepEqual(await store.readMembershipEvents(undefined, 0, 10), [...a1, ...b1, ...a2]);
    assert.deepEqual(await store.readMembershipEvents('a', 0, 10), [...a1, ...a2]);
    assert.deepEqual(await store.readMembershipEvents('b', 0, 10), b1);
    assert.deepEqual(seqs(await store.readMembershipEvents(undefined, a1[1]!.seq, 1)), seqs(b1));
    assert.deepEqual(seqs(await store.readMembershipEvents('a', a1[0]!.seq, 10)), seqs([a1[1]!, ...a2]));
    assert.deepEqual(seqs(await store.readMembershipEvents('a', 0, 1)), seqs([a1[0]!]));
    assert.deepEqual(await store.readMembershipEvents(undefined, a2[0]!.seq, 10), []);
    assert.deepEqual(await store.readMembershipEvents('c', 0, 10), []);

    assert.equal(await store.membershipEventHead('a'), a2[0]!.seq);
    assert.equal(await store.membershipEventHead('b'), b1[0]!.seq);
    assert.equal(await store.membershipEventHead('c'), 0);
  });

  it('purges exited memberships older than a time, in every sandbox', async () => {
    await store.writeMemberships('a', [
      write('old', 'A', 'exited', undefined, T0), write('recent', 'A', 'exited', undefined, T0 + 100),
      write('in', 'A', 'realized', undefined, T0), write('kept', 'A', 'existing', undefined, T0),
      write('edge', 'A', 'exited', undefined, T0 + 50),
    ], T0);
    await store.writeMemberships('b', [write('old', 'A', 'exited', undefined, T0)], T0);
    assert.equal(await store.purgeExitedMemberships(T0 + 50), 2);
    assert.deepEqual(await store.countMembers('a', 'A'), { realized: 1, existing: 1, exited: 2 });
    assert.deepEqual((await store.listMembers('a', 'A', { statuses: ['exited'], limit: 10 })).map((m) => m.profileId), ['edge', 'recent']);
    assert.deepEqual(await store.countMembers('b', 'A'), { realized: 0, existing: 0, exited: 0 });
    assert.equal(await store.purgeExitedMemberships(T0 + 50), 0);
  });

  it('counts profiles and pages their ids in byte order', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('x1', 'g3'), ident('x2', 'g3'), ident('x3', 'g1'), ident('x4', 'g2'), ident('x5', 'g10'), ident('x6', 'G9')],
    }), T0));
    await store.ingest('b', (tx) => tx.apply(plan({ newIdentities: [ident('x1', 'gb')] }), T0));

    assert.equal(await store.countProfiles('a'), 5);
    assert.equal(await store.countProfiles('b'), 1);
    assert.equal(await store.countProfiles('c'), 0);
    const p1 = await store.listProfileIds('a', undefined, 2);
    assert.deepEqual(p1, ['G9', 'g1']);
    const p2 = await store.listProfileIds('a', p1.at(-1), 2);
    assert.deepEqual(p2, ['g10', 'g2']);
    assert.deepEqual(await store.listProfileIds('a', 'g2', 2), ['g3'], 'a graph with two identities is listed once');
    assert.deepEqual(await store.listProfileIds('a', 'g3', 2), []);
    assert.deepEqual(await store.listProfileIds('b', undefined, 10), ['gb']);
  });

  it('loads fragments and recent events of many profiles, oldest event first', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('x', 'g1'), ident('y', 'g2')],
      fragments: [fragment('crm', 'x', 'g1', { person: { name: 'X' } }), fragment('loyalty', 'x', 'g1', { tier: 'gold' }), fragment('crm', 'y', 'g2', { n: 2 })],
      events: [event('e5', 'g1', T0 + 5), event('e1', 'g1', T0 + 1), event('e3b', 'g1', T0 + 3), event('e3a', 'g1', T0 + 3), event('old', 'g2', T0)],
    }), T0));
    await store.ingest('b', (tx) => tx.apply(plan({
      newIdentities: [ident('x', 'g1')], fragments: [fragment('crm', 'x', 'g1', { b: true })], events: [event('eb', 'g1', T0 + 9)],
    }), T0));

    const got = await store.loadProfiles('a', ['g2', 'nope', 'g1'], T0 + 3);
    assert.deepEqual([...got.keys()], ['g2', 'nope', 'g1']);
    const g1 = got.get('g1');
    assert.deepEqual([...(g1?.fragments ?? [])].sort(byFragmentKey), [
      fragment('crm', 'x', 'g1', { person: { name: 'X' } }), fragment('loyalty', 'x', 'g1', { tier: 'gold' }),
    ]);
    assert.deepEqual(g1?.events, [
      { datasetId: 'web', eventId: 'e3a', timestamp: T0 + 3, body: event('e3a', 'g1', 0).body },
      { datasetId: 'web', eventId: 'e3b', timestamp: T0 + 3, body: event('e3b', 'g1', 0).body },
      { datasetId: 'web', eventId: 'e5', timestamp: T0 + 5, body: event('e5', 'g1', 0).body },
    ]);
    assert.deepEqual(got.get('g2'), { fragments: [fragment('crm', 'y', 'g2', { n: 2 })], events: [] }, 'events before eventsSince are left out');
    assert.deepEqual(got.get('nope'), { fragments: [], events: [] });
    assert.deepEqual((await store.loadProfiles('a', ['g2'], 0)).get('g2')?.events.map((e) => e.eventId), ['old']);
    assert.equal((await store.loadProfiles('a', [], 0)).size, 0);
  });

  it('schedules re-evaluations (earliest wins) and hands each out once, when due, earliest first', async () => {
    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 + 100 }]);
    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 + 50 }]);
    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 + 200 }]);
    await store.scheduleReevaluations('b', [{ profileId: 'p1', dueAt: T0 + 10 }]);
    await store.scheduleReevaluations('a', [{ profileId: 'p2', dueAt: T0 + 300 }]);
    await store.scheduleReevaluations('a', [{ profileId: 'p3', dueAt: T0 + 60 }]);

    assert.deepEqual(await store.takeDueReevaluations(T0 + 5, 10), [], 'nothing before it is due');
    assert.deepEqual(await store.takeDueReevaluations(T0 + 55, 10), [
      { sandboxId: 'b', profileId: 'p1', dueAt: T0 + 10 },
      { sandboxId: 'a', profileId: 'p1', dueAt: T0 + 50 },
    ]);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 1000, 1), [{ sandboxId: 'a', profileId: 'p3', dueAt: T0 + 60 }]);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 1000, 10), [{ sandboxId: 'a', profileId: 'p2', dueAt: T0 + 300 }]);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 1000, 10), []);

    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 + 500 }]);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 1000, 10), [{ sandboxId: 'a', profileId: 'p1', dueAt: T0 + 500 }], 'taken ones can be scheduled again');
  });

  it('shares due re-evaluations between concurrent takers without handing one out twice', async () => {
    for (let i = 0; i < 20; i++) await store.scheduleReevaluations(i % 2 ? 'a' : 'b', [{ profileId: `p${i}`, dueAt: T0 + i }]);
    const taken = (await Promise.all([1, 2, 3, 4].map(() => store.takeDueReevaluations(T0 + 100, 5)))).flat();
    const keys = taken.map((t) => `${t.sandboxId}/${t.profileId}`);
    assert.equal(keys.length, 20);
    assert.equal(new Set(keys).size, 20);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 100, 5), []);
  });

  it('leases taken re-evaluations: unfinished ones are due again when the lease ends, finished ones are gone', async () => {
    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 + 10 }, { profileId: 'p2', dueAt: T0 + 20 }]);
    await store.scheduleReevaluations('b', [{ profileId: 'p1', dueAt: T0 + 30 }]);
    const t1 = T0 + 100;
    assert.equal((await store.takeDueReevaluations(t1, 10)).length, 3);
    assert.deepEqual(await store.takeDueReevaluations(t1 + LEASE - 1, 10), [], 'leased until the lease ends');

    await store.finishReevaluations('a', ['p1'], t1);
    const t2 = t1 + LEASE;
    const again = await store.takeDueReevaluations(t2, 10);
    assert.deepEqual(again.map((d) => `${d.sandboxId}/${d.profileId}@${d.dueAt}`).sort(), [`a/p2@${t2}`, `b/p1@${t2}`], 'the unfinished ones, due at their lease end');

    // The first taker finishing late must not end the lease the second one holds.
    await store.finishReevaluations('a', ['p2'], t1);
    await store.finishReevaluations('b', ['p1'], t1);
    assert.deepEqual(await store.takeDueReevaluations(t2 + LEASE - 1, 10), []);
    await store.finishReevaluations('a', ['p2'], t2);
    await store.finishReevaluations('b', ['p1'], t2);
    assert.deepEqual(await store.takeDueReevaluations(t2 + 100 * LEASE, 10), [], 'finished: none left');
  });

  it('keeps a re-evaluation asked for during a lease when the lease is finished', async () => {
    await store.scheduleReevaluations('a', ['p1', 'p2', 'p3', 'p4'].map((profileId) => ({ profileId, dueAt: T0 })));
    assert.equal((await store.takeDueReevaluations(T0 + 1, 10)).length, 4);
    // Later than the lease end (the evaluation's own next change), earlier than it, and from a batch page.
    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 + 10 * LEASE }, { profileId: 'p2', dueAt: T0 + 5 }]);
    await store.writeBatchMemberships('a', {
      changes: [], confirm: { profileIds: [], audienceIds: [], unconfirmed: [] }, schedule: [{ profileId: 'p4', dueAt: T0 + 20 * LEASE }],
    }, T0 + 2);
    await store.finishReevaluations('a', ['p1', 'p2', 'p3', 'p4'], T0 + 1);

    assert.deepEqual(await store.takeDueReevaluations(T0 + 2 * LEASE, 10), [{ sandboxId: 'a', profileId: 'p2', dueAt: T0 + 5 }], 'p3 is gone');
    await store.finishReevaluations('a', ['p2'], T0 + 2 * LEASE);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 10 * LEASE, 10), [{ sandboxId: 'a', profileId: 'p1', dueAt: T0 + 10 * LEASE }]);
    await store.finishReevaluations('a', ['p1'], T0 + 10 * LEASE);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 20 * LEASE, 10), [{ sandboxId: 'a', profileId: 'p4', dueAt: T0 + 20 * LEASE }]);
  });

  it('keeps a later request held by an expired lease when taking it again', async () => {
    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 }]);
    await store.takeDueReevaluations(T0, 10);
    await store.scheduleReevaluations('a', [{ profileId: 'p1', dueAt: T0 + 10 * LEASE }]);
    // The taker died: the lease expires and another takes it, the request stays pending.
    assert.deepEqual(await store.takeDueReevaluations(T0 + LEASE, 10), [{ sandboxId: 'a', profileId: 'p1', dueAt: T0 + LEASE }]);
    await store.finishReevaluations('a', ['p1'], T0 + LEASE);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 10 * LEASE - 1, 10), []);
    assert.deepEqual(await store.takeDueReevaluations(T0 + 10 * LEASE, 10), [{ sandboxId: 'a', profileId: 'p1', dueAt: T0 + 10 * LEASE }]);
  });

  it('keeps audience size history, newest first', async () => {
    await store.addAudienceSize('a', 'A', { at: T0 + 1, size: 10, source: 'batch' });
    await store.addAudienceSize('a', 'A', { at: T0 + 3, size: 1_000_000, source: 'streaming' });
    await store.addAudienceSize('a', 'A', { at: T0 + 2, size: 12, source: 'batch' });
    await store.addAudienceSize('a', 'B', { at: T0 + 9, size: 1, source: 'batch' });
    await store.addAudienceSize('b', 'A', { at: T0 + 9, size: 2, source: 'batch' });
    assert.deepEqual(await store.audienceSizes('a', 'A', 2), [
      { at: T0 + 3, size: 1_000_000, source: 'streaming' },
      { at: T0 + 2, size: 12, source: 'batch' },
    ]);
    assert.deepEqual((await store.audienceSizes('a', 'A', 10)).map((p) => p.size), [1_000_000, 12, 10]);
    assert.deepEqual(await store.audienceSizes('b', 'A', 10), [{ at: T0 + 9, size: 2, source: 'batch' }]);
    assert.deepEqual(await store.audienceSizes('a', 'C', 10), []);
  });

  it('deletes a profile with its memberships and pending re-evaluations', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({ newIdentities: [ident('x', 'g1'), ident('y', 'g2')] }), T0));
    await store.writeMemberships('a', [write('g1', 'A', 'realized', 'realized'), write('g1', 'B', 'exited'), write('g2', 'A', 'realized')], T0);
    await store.writeMemberships('b', [write('g1', 'A', 'realized')], T0);
    await store.scheduleReevaluations('a', [{ profileId: 'g1', dueAt: T0 }]);
    await store.scheduleReevaluations('a', [{ profileId: 'g2', dueAt: T0 }]);
    await store.scheduleReevaluations('b', [{ profileId: 'g1', dueAt: T0 }]);

    assert.deepEqual(await store.deleteProfile('a', 'g1', T0 + 1), { identities: 1, fragments: 0, events: 0 });
    const left = await store.memberships('a', ['g1', 'g2']);
    assert.deepEqual(left.get('g1'), []);
    assert.deepEqual(left.get('g2'), [member('A', 'realized')]);
    assert.deepEqual((await store.memberships('b', ['g1'])).get('g1'), [member('A', 'realized')], 'the same id in another sandbox survives');
    assert.deepEqual(await store.countMembers('a', 'B'), { realized: 0, existing: 0, exited: 0 });
    const due = (await store.takeDueReevaluations(T0 + 1, 10)).map((t) => `${t.sandboxId}/${t.profileId}`).sort();
    assert.deepEqual(due, ['a/g2', 'b/g1']);
    assert.equal(await store.countProfiles('a'), 1);
  });

  it('writes no membership and no event of a privacy-deleted profile afterwards (an evaluation that read it before the delete)', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({ newIdentities: [ident('x', 'g1'), ident('y', 'g2')] }), T0));
    await store.deleteProfile('a', 'g1', T0 + 1);
    const events = await store.writeMemberships('a', [
      write('g1', 'A', 'realized', 'realized'),
      write('g2', 'A', 'realized', 'realized'),
      write('g1', 'B', null, 'exited'),
      write('g1', 'C', 'existing'),
    ], T0 + 2);
    assert.deepEqual(events.map((e) => [e.profileId, e.audienceId, e.status]), [['g2', 'A', 'realized']]);
    assert.deepEqual((await store.readMembershipEvents('a', 0, 10)).map((e) => e.profileId), ['g2'], 'nothing of g1 was logged');
    const left = await store.memberships('a', ['g1', 'g2']);
    assert.deepEqual(left.get('g1'), []);
    assert.deepEqual(left.get('g2'), [member('A', 'realized')]);
    // Only the deleted profile of that sandbox: the same id elsewhere is written as before.
    assert.equal((await store.writeMemberships('b', [write('g1', 'A', 'realized', 'realized')], T0 + 2)).length, 1);
    // Tombstones go with the exited memberships' retention.
    await store.purgeExitedMemberships(T0 + 5);
    assert.equal((await store.writeMemberships('a', [write('g1', 'A', 'realized', 'realized')], T0 + 6)).length, 1);
  });
});
