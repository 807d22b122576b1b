/**
 * `Store.readProfile` (one read for a whole profile) gives what the piecewise reads give, on
 * every adapter that has it.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, it } from 'node:test';
import type { ProfileRead, Store } from './port.js';
import { describeBackends, openWithSandboxes, writePlan as plan } from './testing.js';

const T0 = 1_700_000_000_000;

const ident = (ns: string, id: string, graphId: string, lastSeen = T0) => ({ ns, id, graphId, type: 'person' as const, lastSeen });
const event = (eventId: string, graphId: string, timestamp: number, datasetId = 'web') =>
  ({ datasetId, eventId, graphId, timestamp, body: { eventType: 'page', nested: { n: 1, list: [1, 'two'] }, eventId } });
const fragment = (datasetId: string, id: string, graphId: string, attributes: Record<string, unknown>, timestamp = T0) =>
  ({ datasetId, ns: 'email', id, graphId, attributes, timestamp });

async function piecewise(store: Store, sandboxId: string, ns: string, id: string, limit: number, before?: { timestamp: number; eventId: string }): Promise<ProfileRead | undefined> {
  const profileId = await store.findProfileId(sandboxId, { ns, id });
  if (!profileId) return undefined;
  return {
    profileId,
    identities: await store.profileIdentities(sandboxId, profileId),
    fragments: await store.profileFragments(sandboxId, profileId),
    memberships: (await store.memberships(sandboxId, [profileId])).get(profileId) ?? [],
    events: limit > 0 ? await store.profileEvents(sandboxId, profileId, { limit, before }) : [],
  };
}

await describeBackends((backend) => {
  let store: Store;
  beforeEach(async () => {
    store = await openWithSandboxes(backend);
    await store.ingest('a', async (tx) =>
      tx.apply(
        plan({
          newIdentities: [ident('email', 'z@x.io', 'g1', T0 + 5), ident('ecid', '1', 'g1'), ident('ecid', '0', 'g1'), ident('ecid', '9', 'g2')],
          fragments: [
            fragment('crm', 'z@x.io', 'g1', { name: { first: 'Zoe' }, tags: ['a'] }, T0 + 1),
            fragment('loyalty', 'z@x.io', 'g1', { points: 3 }, T0),
            fragment('crm', 'y@x.io', 'g2', { name: { first: 'Yan' } }),
          ],
          events: [event('e1', 'g1', T0 + 10), event('e3', 'g1', T0 + 30), event('e2', 'g1', T0 + 30), event('e4', 'g1', T0 + 5, 'app'), event('x', 'g2', T0)],
        }),
        T0,
      ),
    );
    await store.writeMemberships('a', [{ profileId: 'g1', audienceId: 'aud1', membership: { audienceId: 'aud1', status: 'realized', lastQualificationTime: T0 } }], T0);
    // The same identity in another sandbox must not leak.
    await store.ingest('b', async (tx) => tx.apply(plan({ newIdentities: [ident('ecid', '1', 'gb')], events: [event('e1', 'gb', T0)] }), T0));
  });
  afterEach(async () => {
    await store.close();
  });

  it('reads a whole profile at once, as the piecewise reads do', async (t) => {
    if (!store.readProfile) return t.skip(`${backend.name} reads profiles piecewise`);
    for (const limit of [0, 2, 3, 10]) {
      const got = await store.readProfile('a', { ns: 'ecid', id: '1' }, { eventsLimit: limit });
      assert.deepEqual(got, await piecewise(store, 'a', 'ecid', '1', limit), `limit ${limit}`);
    }
    const got = await store.readProfile('a', { ns: 'email', id: 'z@x.io' }, { eventsLimit: 10 });
    assert.equal(got?.profileId, 'g1');
    assert.deepEqual(got?.identities.map((i) => `${i.ns}:${i.id}`), ['ecid:0', 'ecid:1', 'email:z@x.io']);
    assert.deepEqual(got?.events.map((e) => e.eventId), ['e3', 'e2', 'e1', 'e4']);
    assert.deepEqual(got?.memberships, [{ audienceId: 'aud1', status: 'realized', lastQualificationTime: T0 }]);
    assert.equal(got?.fragments.length, 2);
    const other = await store.readProfile('b', { ns: 'ecid', id: '1' }, { eventsLimit: 10 });
    assert.deepEqual(other, await piecewise(store, 'b', 'ecid', '1', 10));
    assert.equal(other?.events.length, 1);
  });

  it('pages events with a cursor and finds nothing for an unknown identity', async (t) => {
    if (!store.readProfile) return t.skip(`${backend.name} reads profiles piecewise`);
    const before = { timestamp: T0 + 30, eventId: 'e2' };
    const got = await store.readProfile('a', { ns: 'ecid', id: '0' }, { eventsLimit: 10, before });
    assert.deepEqual(got?.events.map((e) => e.eventId), ['e1', 'e4']);
    assert.deepEqual(got, await piecewise(store, 'a', 'ecid', '0', 10, before));
    assert.equal(await store.readProfile('a', { ns: 'ecid', id: 'nobody' }, { eventsLimit: 10 }), undefined);
    assert.equal(await store.readProfile('b', { ns: 'ecid', id: '9' }, { eventsLimit: 10 }), undefined);
  });
});
