/**
 * Conformance suite of the storage port's ID-sync table (partner user ids per partner and ECID):
 * upsert, ordered lookups, deletes, sandbox and partner isolation, and removal by a privacy
 * delete of the profile holding the ECID, on every adapter.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { IdSyncRow, Store } from './port.js';
import { describeBackends, eachStoreWithSandboxes, writePlan as plan } from './testing.js';

const T0 = 1_700_000_000_000;
const E1 = '1'.repeat(38);
const E2 = '2'.repeat(38);
const E3 = '3'.repeat(38);

const sync = (ecid: string, partnerUid: string, over: Partial<IdSyncRow> = {}): IdSyncRow => ({
  sandboxId: 'a', partnerId: 'conn-1', ecid, partnerUid, syncedAt: T0, ...over,
});

const ident = (ns: string, id: string, graphId: string) => ({ ns, id, graphId, type: 'cookie' as const, lastSeen: T0 });

await describeBackends((backend) => {
  let store: Store;
  eachStoreWithSandboxes(backend, (s) => (store = s));

  it('stores syncs, finds them in the order asked, and a later sync replaces the partner id', async () => {
    await store.putIdSyncs([sync(E1, 'P-1'), sync(E2, 'P-2')]);
    await store.putIdSyncs([]);
    assert.deepEqual(await store.idSyncsOf('a', 'conn-1', [E2, E3, E1, E2]), [sync(E2, 'P-2'), sync(E1, 'P-1')]);
    assert.deepEqual(await store.idSyncsOf('a', 'conn-1', []), []);

    await store.putIdSyncs([sync(E1, 'P-1b', { syncedAt: T0 + 5 }), sync(E1, 'P-1c', { syncedAt: T0 + 6 })]);
    assert.deepEqual(await store.idSyncsOf('a', 'conn-1', [E1]), [sync(E1, 'P-1c', { syncedAt: T0 + 6 })], 'the last one given wins');
  });

  it('keeps partners and sandboxes apart', async () => {
    await store.putIdSyncs([sync(E1, 'P-1'), sync(E1, 'Q-1', { partnerId: 'conn-2' }), sync(E1, 'B-1', { sandboxId: 'b' })]);
    assert.deepEqual((await store.idSyncsOf('a', 'conn-1', [E1])).map((r) => r.partnerUid), ['P-1']);
    assert.deepEqual((await store.idSyncsOf('a', 'conn-2', [E1])).map((r) => r.partnerUid), ['Q-1']);
    assert.deepEqual((await store.idSyncsOf('b', 'conn-1', [E1])).map((r) => r.partnerUid), ['B-1']);
    assert.deepEqual(await store.idSyncsOf('b', 'conn-2', [E1]), []);
  });

  it("deletes some of a partner's syncs or all of them", async () => {
    await store.putIdSyncs([sync(E1, 'P-1'), sync(E2, 'P-2'), sync(E3, 'P-3'), sync(E1, 'Q-1', { partnerId: 'conn-2' })]);
    assert.equal(await store.deleteIdSyncs('a', 'conn-1', [E1, E3, '9'.repeat(38)]), 2);
    assert.deepEqual((await store.idSyncsOf('a', 'conn-1', [E1, E2, E3])).map((r) => r.partnerUid), ['P-2']);
    assert.equal(await store.deleteIdSyncs('a', 'conn-1'), 1);
    assert.deepEqual(await store.idSyncsOf('a', 'conn-1', [E1, E2, E3]), []);
    assert.deepEqual((await store.idSyncsOf('a', 'conn-2', [E1])).map((r) => r.partnerUid), ['Q-1'], 'the other partner keeps its syncs');
  });

  it("a privacy delete removes the syncs of the profile's ECIDs for every partner, and only those", async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('ecid', E1, 'g1'), ident('ecid', E2, 'g1'), ident('email', 'x@example.com', 'g1'), ident('ecid', E3, 'g2')],
    }), T0));
    await store.ingest('b', (tx) => tx.apply(plan({ newIdentities: [ident('ecid', E1, 'g9')] }), T0));
    await store.putIdSyncs([
      sync(E1, 'P-1'), sync(E2, 'P-2'), sync(E3, 'P-3'), sync(E2, 'Q-2', { partnerId: 'conn-2' }), sync(E1, 'B-1', { sandboxId: 'b' }),
    ]);

    await store.deleteProfile('a', 'g1', T0 + 1);
    assert.deepEqual((await store.idSyncsOf('a', 'conn-1', [E1, E2, E3])).map((r) => r.partnerUid), ['P-3']);
    assert.deepEqual(await store.idSyncsOf('a', 'conn-2', [E2]), []);
    assert.deepEqual((await store.idSyncsOf('b', 'conn-1', [E1])).map((r) => r.partnerUid), ['B-1'], 'the same ECID in another sandbox survives');
  });
});
