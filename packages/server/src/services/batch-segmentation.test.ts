/**
 * Batch segmentation over profile snapshots: the first run builds them all, later runs refresh
 * the profiles the change log names (changed, merged away, deleted), so each run evaluates what
 * the store holds — a privacy-deleted person is neither evaluated nor kept in a snapshot.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, type Harness } from '../testing/harness.js';
import { BatchSegmentation } from './batch-segmentation.js';

const T0 = Date.parse('2025-03-01T12:00:00Z');
const DAY = 86_400_000;

const person = (emails: string[], tier: string) => ({ identityMap: { email: emails.map((id) => ({ id })) }, loyalty: { tier } });

async function send(h: Harness, records: Array<Record<string, unknown>>): Promise<void> {
  for (const r of records) {
    const res = await h.call('POST', '/v1/datasets/crm/records', r);
    assert.equal(res.statusCode, 200, res.body);
  }
  await h.ctx.feed.flush();
  await h.ctx.bus.drain();
}

/** The CRM schema and its profile dataset. */
const CRM: Array<[string, Record<string, unknown>]> = [
  ['/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-person-details', 'profile-loyalty-details'], fields: {} }],
  ['/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true }],
];

/** POSTs each body to its URL, in order, expecting 201s. */
async function createAll(h: Harness, items: Array<[string, Record<string, unknown>]>): Promise<void> {
  for (const [url, body] of items) {
    const r = await h.call('POST', url, body);
    assert.equal(r.statusCode, 201, r.body);
  }
}

async function runBatch(h: Harness): Promise<Record<string, unknown>> {
  const job = await h.ctx.batchSegmentation.run('prod', { all: true });
  await h.ctx.jobs.idle();
  const done = await h.ctx.store.getJob('prod', job.id);
  assert.equal(done?.status, 'succeeded', JSON.stringify(done?.state));
  return done!.state;
}

/** Snapshots and the store agree: same profiles, same fragments and events. */
async function assertSnapshotsMatch(h: Harness, since: number): Promise<string[]> {
  const { store } = h.ctx;
  const ids = await store.listProfileIds('prod', undefined, 1000);
  const snaps = await store.scanProfileSnapshots('prod', undefined, 1000, since);
  assert.deepEqual(snaps.map((s) => s.profileId), ids);
  const loaded = await store.loadProfiles('prod', ids, since);
  for (const s of snaps) {
    const l = loaded.get(s.profileId)!;
    assert.deepEqual(s.fragments.map((f) => f.attributes).sort(), l.fragments.map((f) => f.attributes).sort(), s.profileId);
    assert.deepEqual(s.events, l.events, s.profileId);
  }
  return ids;
}

await describeBackends((backend) => {
  it('refreshes changed, merged and privacy-deleted profiles between runs', async () => {
    let clock = T0;
    const h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
    try {
      await createAll(h, [...CRM, ['/v1/audiences', { id: 'gold', name: 'gold', query: 'loyalty.tier = "gold"' }]]);
      await send(h, [person(['ann@x.io'], 'gold'), person(['bob@x.io'], 'gold'), person(['cy@x.io'], 'silver'), person(['dan@x.io'], 'gold')]);
      const first = await runBatch(h);
      assert.equal((first['snapshot'] as { mode: string }).mode, 'full');
      assert.equal((first['snapshot'] as { written: number }).written, 4);
      assert.deepEqual(first['sizes'], { gold: 3 });
      assert.equal((await assertSnapshotsMatch(h, 0)).length, 4);

      clock = T0 + DAY;
      const ann = (await h.call('GET', '/v1/profiles?ns=email&id=ann@x.io')).json().profileId as string;
      assert.equal(typeof ann, 'string');
      const del = await h.call('POST', '/v1/privacy/deletes', { ns: 'email', id: 'ann@x.io' });
      assert.equal(del.statusCode, 202, del.body);
      await h.ctx.jobs.idle();
      // Bob leaves gold, Cy joins it, and one record links Cy and Dan: their graphs merge.
      await send(h, [person(['bob@x.io'], 'silver'), person(['cy@x.io'], 'gold'), person(['cy@x.io', 'dan@x.io'], 'gold')]);
      const second = await runBatch(h);
      const snap = second['snapshot'] as { mode: string; removed: number };
      assert.equal(snap.mode, 'changes');
      assert.ok(snap.removed >= 1, 'the graph merged away is removed (the deleted one already was)');
      const ids = await assertSnapshotsMatch(h, 0);
      assert.equal(ids.length, 2, 'bob, and cy+dan merged');
      assert.ok(!ids.includes(ann), 'the deleted person has no snapshot');
      assert.deepEqual(second['sizes'], { gold: 1 });
      const members = await h.ctx.store.listMembers('prod', 'gold', { statuses: ['realized', 'existing'], limit: 10 });
      assert.equal(members.length, 1);
      assert.ok(ids.includes(members[0]!.profileId));
      const points = await h.ctx.store.audienceSizes('prod', 'gold', 10);
      assert.deepEqual(points.filter((p) => p.source === 'batch').map((p) => p.size), [1, 3], 'a size point per batch run');
      const third = await runBatch(h);
      assert.deepEqual(third['snapshot'], { ...(third['snapshot'] as object), mode: 'changes', changes: 0, written: 0, removed: 0 }, 'nothing changed: nothing rebuilt');
    } finally {
      await h.close();
    }
  });

  it('realizes, then confirms (keeping the qualification time) and exits memberships, logging only entries and exits', async () => {
    let clock = T0;
    const h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
    try {
      await createAll(h, CRM);
      await send(h, [person(['ann@x.io'], 'gold'), person(['bob@x.io'], 'gold'), person(['cy@x.io'], 'silver')]);
      // Created after the data: only the batch job evaluates them.
      for (const a of [{ id: 'gold', query: 'loyalty.tier = "gold"' }, { id: 'silver', query: 'loyalty.tier = "silver"' }]) {
        const r = await h.call('POST', '/v1/audiences', { ...a, name: a.id });
        assert.equal(r.statusCode, 201, r.body);
      }
      const pid = async (email: string): Promise<string> => (await h.ctx.store.findProfileId('prod', { ns: 'email', id: email }))!;
      const [ann, bob, cy] = [await pid('ann@x.io'), await pid('bob@x.io'), await pid('cy@x.io')];
      const statuses = async (): Promise<Record<string, Record<string, [string, number]>>> => {
        const m = await h.ctx.store.memberships('prod', [ann, bob, cy]);
        const out: Record<string, Record<string, [string, number]>> = {};
        for (const [name, id] of [['ann', ann], ['bob', bob], ['cy', cy]] as const) {
          out[name] = Object.fromEntries(m.get(id)!.map((x) => [x.audienceId, [x.status, x.lastQualificationTime - T0]]));
        }
        return out;
      };
      const head0 = await h.ctx.store.membershipEventHead('prod');
      const first = await runBatch(h);
      assert.equal(first['realized'], 3);
      assert.deepEqual(await statuses(), { ann: { gold: ['realized', 0] }, bob: { gold: ['realized', 0] }, cy: { silver: ['realized', 0] } });

      clock = T0 + DAY;
      const head1 = await h.ctx.store.membershipEventHead('prod');
      await send(h, [person(['bob@x.io'], 'silver')]);
      const second = await runBatch(h);
      assert.deepEqual([second['realized'], second['exited']], [0, 0], 'streaming already moved bob');
      assert.deepEqual(await statuses(), {
        ann: { gold: ['existing', 0] }, bob: { gold: ['exited', DAY], silver: ['existing', DAY] }, cy: { silver: ['existing', 0] },
      }, 'confirmed memberships keep the time they were realized, even one realized by streaming at the same instant');
      const head2 = await h.ctx.store.membershipEventHead('prod');
      const logged = await h.ctx.store.readMembershipEvents('prod', head0, 100);
      assert.equal(logged.filter((e) => e.seq <= head1).length, 3, 'run 1 logged its three entries');
      assert.equal(logged.filter((e) => e.seq > head1 && e.seq <= head2).length, 2, 'bob\'s exit and entry (streaming); confirmations log nothing');

      clock = T0 + 2 * DAY;
      await h.ctx.store.writeMemberships('prod', [{ profileId: cy, audienceId: 'gold', membership: { audienceId: 'gold', status: 'realized', lastQualificationTime: T0 } }], T0);
      const third = await runBatch(h);
      assert.deepEqual([third['realized'], third['exited']], [0, 1], 'a membership that no longer holds is exited by the batch');
      assert.deepEqual((await statuses()).cy, { gold: ['exited', 2 * DAY], silver: ['existing', 0] });
      assert.deepEqual(third['sizes'], { gold: 1, silver: 2 });
    } finally {
      await h.close();
    }
  });

  it('evaluates the same on worker threads as on the job thread', async () => {
    const clock = T0;
    const make = async (): Promise<Harness> => {
      const h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
      for (const [url, body] of [
        ['/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-person-details', 'profile-loyalty-details'], fields: {} }],
        ['/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details', 'event-commerce-details'], fields: {} }],
        ['/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true }],
        ['/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true }],
        ['/v1/audiences', { id: 'gold', name: 'gold', query: 'loyalty.tier = "gold"' }],
        ['/v1/audiences', { id: 'buyers', name: 'buyers', query: 'select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 7 days before now' }],
        ['/v1/audiences', { id: 'spend', name: 'spend', query: 'xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal) > 300' }],
        ['/v1/audiences', { id: 'gold-buyers', name: 'gold-buyers', query: 'inSegment("gold") and inSegment("buyers")' }],
        ['/v1/audiences', { id: 'a-names', name: 'a-names', query: 'person.name.firstName.matches("^A")' }],
      ] as const) {
        const r = await h.call('POST', url, body);
        assert.equal(r.statusCode, 201, r.body);
      }
      const records: Array<{ dataset: string; record: Record<string, unknown> }> = [];
      for (let i = 0; i < 40; i++) {
        const email = { identityMap: { email: [{ id: `p${i}@x.io` }] } };
        records.push({ dataset: 'crm', record: { ...email, loyalty: { tier: ['gold', 'silver', 'bronze'][i % 3] }, person: { name: { firstName: i % 4 ? 'Ann' : 'Bo' } } } });
        for (let k = 0; k < i % 4; k++) {
          records.push({ dataset: 'web', record: { ...email, _id: `e${i}-${k}`, eventType: 'commerce.purchases', timestamp: new Date(T0 - (i + k) * 3_600_000 * 12).toISOString(), commerce: { order: { priceTotal: 50 * (i % 7) + k } } } });
        }
      }
      for (const r of records) assert.equal((await h.call('POST', `/v1/datasets/${r.dataset}/records`, r.record)).statusCode, 200);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      return h;
    };
    const a = await make();
    const b = await make();
    try {
      const threaded = new BatchSegmentation({
        store: b.ctx.store, bus: b.ctx.bus, jobs: b.ctx.jobs, engine: b.ctx.segmentation, audiences: b.ctx.audiences,
        config: b.ctx.config.segmentation, log: b.ctx.log, now: () => clock, workers: 2, workerMinProfiles: 0,
      });
      for (const round of [1, 2]) {
        const job = await threaded.run('prod', { all: true });
        await b.ctx.jobs.idle();
        const done = await b.ctx.store.getJob('prod', job.id);
        assert.equal(done?.status, 'succeeded', JSON.stringify(done?.state));
        const ref = await runBatch(a);
        for (const k of ['processed', 'evaluations', 'realized', 'exited', 'sizes']) assert.deepEqual(done!.state[k], ref[k], `round ${round}: ${k}`);
        // Profile ids are random per store: compare by person.
        const byPerson = async (h: Harness): Promise<unknown[]> => {
          const out: unknown[] = [];
          for (let i = 0; i < 40; i++) {
            const pid = (await h.ctx.store.findProfileId('prod', { ns: 'email', id: `p${i}@x.io` }))!;
            out.push((await h.ctx.store.memberships('prod', [pid])).get(pid)!.sort((x, y) => x.audienceId.localeCompare(y.audienceId)));
          }
          return out;
        };
        assert.deepEqual(await byPerson(b), await byPerson(a), `round ${round}: memberships`);
      }
      assert.ok(((await a.ctx.store.countMembers('prod', 'gold-buyers')).realized + (await a.ctx.store.countMembers('prod', 'gold-buyers')).existing) > 0, 'inSegment audiences have members');
    } finally {
      await a.close();
      await b.close();
    }
  });
});
