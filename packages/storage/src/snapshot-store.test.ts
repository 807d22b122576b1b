/**
 * Conformance suite of the storage port's batch-evaluation snapshots (refreshProfileSnapshots,
 * scanProfileSnapshots, changeHead), on every adapter: a snapshot holds what loadProfiles reads
 * for the same horizon, is rebuilt or removed on refresh, paged in byte order, scoped by sandbox,
 * and gone with a privacy delete.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { StoredFragment } from '@audient/core';
import type { ProfileSnapshot, Store } from './port.js';
import { describeBackends, eachStoreWithSandboxes, writePlan as plan } from './testing.js';

const T0 = 1_700_000_000_000;

const ident = (id: string, graphId: string) => ({ ns: 'email', id, graphId, type: 'person' as const, lastSeen: T0 });
const fragment = (datasetId: string, id: string, graphId: string, attributes: Record<string, unknown>, timestamp = T0): StoredFragment =>
  ({ datasetId, ns: 'email', id, graphId, attributes, timestamp });
const event = (eventId: string, graphId: string, timestamp: number, extra: Record<string, unknown> = {}) =>
  ({ datasetId: 'web', eventId, graphId, timestamp, body: { eventType: 'page', eventId, nested: { list: [1, 'two', null, 2.5] }, ...extra } });

const byFragmentKey = (x: StoredFragment, y: StoredFragment): number =>
  `${x.datasetId}/${x.id}`.localeCompare(`${y.datasetId}/${y.id}`);

/** Every snapshot of a sandbox, paged `limit` at a time. */
async function scanAll(store: Store, sandboxId: string, limit: number, since: number): Promise<ProfileSnapshot[]> {
  const out: ProfileSnapshot[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.scanProfileSnapshots(sandboxId, after, limit, since);
    out.push(...page);
    if (page.length < limit) return out;
    after = page.at(-1)!.profileId;
  }
}

/** What loadProfiles reads for the same profiles and horizon, fragments in key order. */
async function expected(store: Store, sandboxId: string, ids: string[], since: number): Promise<ProfileSnapshot[]> {
  const loaded = await store.loadProfiles(sandboxId, ids, since);
  return ids.map((profileId) => ({ profileId, fragments: [...loaded.get(profileId)!.fragments].sort(byFragmentKey), events: loaded.get(profileId)!.events }));
}

const sorted = (xs: ProfileSnapshot[]): ProfileSnapshot[] => xs.map((x) => ({ ...x, fragments: [...x.fragments].sort(byFragmentKey) }));

await describeBackends((backend) => {
  let store: Store;
  eachStoreWithSandboxes(backend, (s) => (store = s));

  it('builds every snapshot of a sandbox as loadProfiles reads it, and pages them in byte order', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('x', 'g1'), ident('x2', 'g1'), ident('y', 'g2'), ident('z', 'G9'), ident('w', 'g3')],
      fragments: [
        fragment('crm', 'x', 'g1', { person: { name: 'Zoë "Q" \\ O\'Neil', tags: ['a', 'b'] }, n: 1.5 }, T0 + 2),
        fragment('loyalty', 'x', 'g1', { tier: 'gold', identityMap: { email: [{ id: 'x' }] } }),
        fragment('crm', 'y', 'g2', { n: 2, nothing: null }),
        fragment('crm', 'z', 'G9', { emoji: '🎉\n\t' }),
      ],
      events: [
        event('e5', 'g1', T0 + 5), event('e1', 'g1', T0 + 1), event('e3b', 'g1', T0 + 3), event('e3a', 'g1', T0 + 3, { q: 'say "hi"' }),
        event('old', 'g2', T0 - 10), event('z1', 'G9', T0 + 7),
      ],
    }), T0));
    await store.ingest('b', (tx) => tx.apply(plan({
      newIdentities: [ident('x', 'g1')], fragments: [fragment('crm', 'x', 'g1', { b: true })], events: [event('eb', 'g1', T0 + 9)],
    }), T0));

    assert.deepEqual(await store.refreshProfileSnapshots('a', undefined, T0), { written: 4, removed: 0 });
    const all = await scanAll(store, 'a', 2, T0);
    assert.deepEqual(all.map((s) => s.profileId), ['G9', 'g1', 'g2', 'g3']);
    assert.deepEqual(sorted(all), await expected(store, 'a', ['G9', 'g1', 'g2', 'g3'], T0));
    assert.deepEqual(all[1]!.events.map((e) => e.eventId), ['e1', 'e3a', 'e3b', 'e5'], 'events oldest first, ties by event id');
    assert.deepEqual(all[2]!.events, [], 'events before the horizon are not kept');
    assert.deepEqual(all[3], { profileId: 'g3', fragments: [], events: [] }, 'a profile with identities only');

    const later = await store.scanProfileSnapshots('a', 'G9', 1, T0 + 4);
    assert.deepEqual(later.map((s) => [s.profileId, s.events.map((e) => e.eventId)]), [['g1', ['e5']]], 'reads drop events that aged out');
    assert.deepEqual(await store.scanProfileSnapshots('b', undefined, 10, 0), [], 'another sandbox has none until refreshed');
    await store.refreshProfileSnapshots('b', undefined, 0);
    assert.deepEqual(sorted(await scanAll(store, 'b', 10, 0)), await expected(store, 'b', ['g1'], 0));
    assert.equal((await scanAll(store, 'a', 10, T0)).length, 4, 'sandbox b did not touch a');
  });

  it('rebuilds named profiles, removes those that no longer exist, and leaves the others', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('x', 'g1'), ident('y', 'g2'), ident('z', 'g3')],
      fragments: [fragment('crm', 'x', 'g1', { v: 1 }), fragment('crm', 'y', 'g2', { v: 2 }), fragment('crm', 'z', 'g3', { v: 3 })],
    }), T0));
    await store.refreshProfileSnapshots('a', undefined, 0);
    // g2 is merged into g1 (its identities and fragments move), g3 changes.
    await store.ingest('a', (tx) => tx.apply(plan({
      graphMerges: [{ from: 'g2', to: 'g1' }],
      fragments: [fragment('crm', 'z', 'g3', { v: 33 }, T0 + 1)],
      events: [event('e1', 'g3', T0 + 1)],
    }), T0 + 1));
    const stale = await scanAll(store, 'a', 10, 0);
    assert.deepEqual(stale.map((s) => s.profileId), ['g1', 'g2', 'g3'], 'nothing changes before a refresh');
    assert.deepEqual(stale[2]!.fragments[0]!.attributes, { v: 3 });

    assert.deepEqual(await store.refreshProfileSnapshots('a', ['g2', 'g3', 'nope'], 0), { written: 1, removed: 1 });
    const partial = await scanAll(store, 'a', 10, 0);
    assert.deepEqual(partial.map((s) => s.profileId), ['g1', 'g3']);
    assert.deepEqual(partial[0]!.fragments.map((f) => f.attributes), [{ v: 1 }], 'g1 was not named: left as it was');
    assert.deepEqual(partial[1], (await expected(store, 'a', ['g3'], 0))[0]);

    await store.refreshProfileSnapshots('a', ['g1'], 0);
    assert.deepEqual(sorted(await scanAll(store, 'a', 10, 0)), await expected(store, 'a', ['g1', 'g3'], 0));
  });

  it('a full refresh removes snapshots of profiles that are gone', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({ newIdentities: [ident('x', 'g1'), ident('y', 'g2')] }), T0));
    await store.refreshProfileSnapshots('a', undefined, 0);
    await store.ingest('a', (tx) => tx.apply(plan({ graphMerges: [{ from: 'g2', to: 'g1' }] }), T0));
    assert.deepEqual(await store.refreshProfileSnapshots('a', undefined, 0), { written: 1, removed: 1 });
    assert.deepEqual((await scanAll(store, 'a', 10, 0)).map((s) => s.profileId), ['g1']);
  });

  it('a privacy delete removes the snapshot too', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('x', 'g1'), ident('y', 'g2')],
      fragments: [fragment('crm', 'x', 'g1', { secret: 'x' }), fragment('crm', 'y', 'g2', { secret: 'y' })],
    }), T0));
    await store.ingest('b', (tx) => tx.apply(plan({ newIdentities: [ident('x', 'g1')] }), T0));
    await store.refreshProfileSnapshots('a', undefined, 0);
    await store.refreshProfileSnapshots('b', undefined, 0);
    await store.deleteProfile('a', 'g1', T0 + 1);
    assert.deepEqual((await scanAll(store, 'a', 10, 0)).map((s) => s.profileId), ['g2']);
    assert.deepEqual((await scanAll(store, 'b', 10, 0)).map((s) => s.profileId), ['g1'], 'the same id in another sandbox survives');
  });

  it('reports the change head', async () => {
    assert.equal(await store.changeHead('a'), 0);
    const seqs = await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('x', 'g1')], changes: [{ profileId: 'g1', type: 'profile' }, { profileId: 'g1', type: 'event' }],
    }), T0));
    assert.equal(await store.changeHead('a'), seqs.at(-1));
    await store.deleteProfile('a', 'g1', T0);
    const [last] = (await store.readChanges(seqs.at(-1)!, 10)).map((c) => c.seq);
    assert.equal(await store.changeHead('b'), last, 'the head is global: any sandbox sees the latest seq');
  });
});
