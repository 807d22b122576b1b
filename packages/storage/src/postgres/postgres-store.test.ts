/**
 * PostgreSQL-only behaviour the conformance suite cannot show: several stores (standing in for
 * several processes) on one schema, and the constant round trips per ingestion batch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WritePlan } from '@audient/core';
import pg from 'pg';
import { POSTGRES_MIGRATIONS } from './migrations.js';
import { dropScratchSchema, pgTestUrl, scratchSchemaName, storeBackends, writePlan } from '../testing.js';
import { finalMergeTargets } from './ingest-tx.js';
import { logLockSql, sandboxLockKey } from './log-lock.js';
import { PostgresStore } from './postgres-store.js';

const postgres = (await storeBackends()).find((b) => b.name === 'postgres');
const T0 = 1_700_000_000_000;

function eventPlan(prefix: string, n: number): WritePlan {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  return {
    newIdentities: ids.map((id) => ({ ns: 'ecid', id, graphId: `g-${id}`, type: 'cookie', lastSeen: T0 })),
    touchedIdentities: ids.map((id) => ({ ns: 'ecid', id: `${id}`, lastSeen: T0 })),
    evictedIdentities: [{ ns: 'ecid', id: `${prefix}-gone` }],
    graphMerges: [{ from: `g-${prefix}-x`, to: `g-${prefix}0` }],
    fragments: ids.map((id) => ({ datasetId: 'crm', ns: 'ecid', id, graphId: `g-${id}`, attributes: { id }, timestamp: T0 })),
    events: ids.map((id) => ({ datasetId: 'web', eventId: id, graphId: `g-${id}`, timestamp: T0, body: { id } })),
    changes: ids.map((id) => ({ profileId: `g-${id}`, type: 'event' as const, eventId: id })),
    results: [],
    createdGraphs: [],
  };
}

describe('finalMergeTargets', () => {
  it('follows chains in order, like sequential updates', () => {
    assert.deepEqual(finalMergeTargets([{ from: 'b', to: 'a' }, { from: 'a', to: 'c' }, { from: 'd', to: 'c' }]), {
      from: ['b', 'a', 'd'], to: ['c', 'c', 'c'],
    });
    // A graph merged into one that was already absorbed earlier stays where the merge put it.
    assert.deepEqual(finalMergeTargets([{ from: 'a', to: 'c' }, { from: 'b', to: 'a' }]), { from: ['a', 'b'], to: ['c', 'a'] });
  });
});

describe('PostgresStore on a shared schema', { skip: postgres?.skip ?? 'no postgres backend' }, () => {
  const url = pgTestUrl();
  const schema = scratchSchemaName();
  let one: PostgresStore;
  let two: PostgresStore;

  before(async () => {
    one = new PostgresStore(url, { schema });
    two = new PostgresStore(url, { schema });
  });
  after(async () => {
    await Promise.all([one.close(), two.close()]);
    await dropScratchSchema(url, schema);
  });

  /**
   * Runs `op` while another connection holds the membership-event log's lock in an open
   * transaction (an append under way), asserts that `op` waits for that commit, and returns its result.
   */
  async function waitsForOpenMembershipAppend<T>(op: () => Promise<T>, message: string): Promise<T> {
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      await client.query(`BEGIN; ${logLockSql('membership_events')}`);
      let done = false;
      const result = op().then((r) => ((done = true), r));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(done, false, message);
      await client.query('COMMIT');
      return await result;
    } finally {
      await client.end();
    }
  }

  it('migrates concurrently without racing (advisory lock)', async () => {
    await Promise.all([one.migrate(), two.migrate(), one.migrate()]);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.schema_migrations`).finally(() => client.end());
    assert.equal(rows[0]?.n, String(POSTGRES_MIGRATIONS.length));
  });

  it('serialises one sandbox across stores (processes)', async () => {
    await one.createSandbox({ id: 'a', name: 'A' });
    let inside = 0;
    let overlapped = false;
    // From its first statement (here a read, which opens the transaction) to its commit, a batch
    // holds the sandbox: no other store's batch of it is between those two points meanwhile.
    const batch = (store: PostgresStore, i: number): Promise<number[]> =>
      store.ingest('a', async (tx) => {
        await tx.existingEvents([{ datasetId: 'web', eventId: `p${i}-0` }]);
        inside++;
        if (inside > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, 20));
        const seqs = await tx.apply(eventPlan(`p${i}-`, 3), T0);
        inside--;
        return seqs;
      });
    const seqs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => batch(i % 2 ? two : one, i)));
    assert.equal(overlapped, false);
    assert.equal(new Set(seqs.flat()).size, 18);
  });

  it('uses the same number of round trips for 10 and 1000 records', async () => {
    const counted = async (n: number, prefix: string): Promise<number> => {
      const original = pg.Client.prototype.query;
      let calls = 0;
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        calls++;
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof original;
      try {
        await one.ingest('a', async (tx) => {
          const plan = eventPlan(prefix, n);
          await tx.graphMembersOf(plan.newIdentities);
          await tx.fragments(plan.fragments.map((f) => ({ datasetId: f.datasetId, identity: f })));
          await tx.existingEvents(plan.events);
          await tx.apply(plan, T0);
          await tx.appendLake(plan.events.map((e) => ({ datasetId: 'raw', body: e.body })), T0);
        });
      } finally {
        pg.Client.prototype.query = original;
      }
      return calls;
    };
    // In step with the other store's writes first: a batch that finds them is run again.
    await one.ingest('a', (tx) => tx.existingEvents([{ datasetId: 'web', eventId: 'none' }]));
    const small = await counted(10, 'small-');
    const large = await counted(1000, 'large-');
    assert.equal(large, small);
    assert.ok(small <= 15, `${small} round trips`);
  });

  it('hands out log seqs in commit order across stores (processes)', async () => {
    await one.createSandbox({ id: 'b', name: 'B' });
    // Store one appends to the change log of sandbox a and stays open; store two appends to the
    // change log of sandbox b (another sandbox lock) and to membership_events meanwhile.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let appended!: () => void;
    const inside = new Promise<void>((r) => (appended = r));
    const first = one.ingest('a', async (tx) => {
      const seqs = await tx.apply(eventPlan('order-a-', 1), T0);
      appended();
      await held;
      return seqs;
    });
    await inside;
    const head = (await one.readChanges(0, 10_000)).at(-1)?.seq ?? 0;
    let secondDone = false;
    const second = two.ingest('b', (tx) => tx.apply(eventPlan('order-b-', 1), T0)).then((seqs) => ((secondDone = true), seqs));
    await new Promise((r) => setTimeout(r, 300));
    // Without the log lock, b's change would be committed with a higher seq while a's lower
    // one is still uncommitted, and a reader would pass it.
    const readable = await one.readChanges(head, 10);
    release();
    const [a, b] = await Promise.all([first, second]);
    assert.equal(secondDone && readable.length > 0, false, 'the second append waits for the open one to commit');
    assert.deepEqual(readable, [], 'nothing readable past the open append');
    assert.ok(a[0]! < b[0]!, `seqs follow commit order: ${a[0]} then ${b[0]}`);
    assert.deepEqual((await one.readChanges(head, 10)).map((c) => c.seq), [...a, ...b]);

    // Membership events: an open append holds back another store's.
    const events = await waitsForOpenMembershipAppend(
      () => two.writeMemberships('a', [{ profileId: 'p', audienceId: 'x', membership: { audienceId: 'x', status: 'realized', lastQualificationTime: T0 }, event: 'realized' }], T0),
      'the membership append waits for the open one',
    );
    assert.equal(events.length, 1);
  });

  it('a privacy delete waits for an open membership-event append; a write after it sees the tombstone', async () => {
    await one.ingest('a', (tx) => tx.apply(eventPlan('del-', 1), T0));
    const write = (store: PostgresStore) =>
      store.writeMemberships('a', [{ profileId: 'g-del-0', audienceId: 'x', membership: { audienceId: 'x', status: 'realized', lastQualificationTime: T0 }, event: 'realized' }], T0);
    // An evaluation's write under way (it read the profile before the delete) holds the lock.
    const del = await waitsForOpenMembershipAppend(() => two.deleteProfile('a', 'g-del-0', T0 + 1), 'the delete waits for the open append to commit');
    assert.equal(del.identities, 1);
    // A write that read the profile before the delete but reaches the store after it: nothing.
    assert.deepEqual(await write(one), []);
    assert.deepEqual((await one.memberships('a', ['g-del-0'])).get('g-del-0'), []);
  });

  it('a membership write waiting for the log sees a privacy delete committed meanwhile, and writes nothing of that profile', async () => {
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      // Another process's privacy delete of pw holds the membership log and has not committed yet.
      await client.query(`BEGIN; ${logLockSql('membership_events')}`);
      await client.query("INSERT INTO deleted_profiles (sandbox_id, profile_id, at) VALUES ('a', 'pw', 1)");
      let done = false;
      const entered = (profileId: string) => ({ profileId, audienceId: 'w', membership: { audienceId: 'w', status: 'realized' as const, lastQualificationTime: T0 }, event: 'realized' as const });
      const written = one.writeMemberships('a', [entered('pw'), entered('pw2')], T0).then((e) => ((done = true), e));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(done, false, 'the write waits for the open delete');
      await client.query('COMMIT');
      const events = await written;
      assert.deepEqual(events.map((e) => e.profileId), ['pw2'], 'only the profile that was not deleted');
      const got = await one.memberships('a', ['pw', 'pw2']);
      assert.deepEqual(got.get('pw'), []);
      assert.equal(got.get('pw2')?.length, 1);
    } finally {
      await client.end();
    }
  });

  it('a confirmation waits for a write of the same membership under way, then leaves the exit it made', async () => {
    const entered = { audienceId: 'c', status: 'realized' as const, lastQualificationTime: T0 };
    await one.writeMemberships('a', [{ profileId: 'pc1', audienceId: 'c', membership: entered }, { profileId: 'pc2', audienceId: 'c', membership: entered }], T0);
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      // Another process's evaluation exits pc2 and has not committed yet.
      await client.query('BEGIN');
      await client.query("UPDATE memberships SET status = 'exited', last_qualification_time = $1 WHERE sandbox_id = 'a' AND profile_id = 'pc2'", [T0 + 1]);
      let done = false;
      const confirmed = two
        .confirmMemberships('a', [{ profileId: 'pc2', audienceId: 'c', lastQualificationTime: T0 }, { profileId: 'pc1', audienceId: 'c', lastQualificationTime: T0 }])
        .then((n) => ((done = true), n));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(done, false, 'the confirmation waits for the open write');
      await client.query('COMMIT');
      assert.equal(await confirmed, 1, 'only pc1');
    } finally {
      await client.end();
    }
    const got = await one.memberships('a', ['pc1', 'pc2']);
    assert.equal(got.get('pc1')?.[0]?.status, 'existing');
    assert.deepEqual(got.get('pc2'), [{ audienceId: 'c', status: 'exited', lastQualificationTime: T0 + 1 }]);
  });

  describe('graphs held between batches', () => {
    const ident = (id: string, graphId: string, lastSeen = T0) => ({ ns: 'ecid', id, graphId, type: 'cookie' as const, lastSeen });
    /** The graph members `store` resolves for `ids` in a batch of its own, and how many identity reads that batch sent. */
    const resolve = async (store: PostgresStore, ids: string[]): Promise<{ members: string[]; reads: number }> => {
      const original = pg.Client.prototype.query;
      let reads = 0;
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text;
        if (text?.includes('FROM identities')) reads++;
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof original;
      try {
        const found = await store.ingest('a', (tx) => tx.graphMembersOf(ids.map((id) => ({ ns: 'ecid', id }))));
        return { members: found.map((m) => `${m.id}@${m.graphId}:${m.lastSeen}`).sort(), reads };
      } finally {
        pg.Client.prototype.query = original;
      }
    };

    it('reads a graph once, then from memory, while no other store writes identities', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('h1', 'gh'), ident('h2', 'gh')] }), T0));
      assert.deepEqual(await resolve(one, ['h1']), { members: [`h1@gh:${T0}`, `h2@gh:${T0}`], reads: 1 });
      assert.deepEqual(await resolve(one, ['h2', 'h1']), { members: [`h1@gh:${T0}`, `h2@gh:${T0}`], reads: 0 }, 'held: not read again');
      // This store's own writes keep what it holds current.
      await one.ingest('a', (tx) => tx.apply(writePlan({ touchedIdentities: [{ ns: 'ecid', id: 'h1', lastSeen: T0 + 5 }] }), T0 + 5));
      assert.deepEqual(await resolve(one, ['h1']), { members: [`h1@gh:${T0 + 5}`, `h2@gh:${T0}`], reads: 0 });
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('h3', 'gh', T0 + 6)] }), T0 + 6));
      assert.deepEqual(await resolve(one, ['h1']), { members: [`h1@gh:${T0 + 5}`, `h2@gh:${T0}`, `h3@gh:${T0 + 6}`], reads: 1 }, 'a graph this store added to is read again');
    });

    it('reads graphs again once another store (process) wrote identities of the sandbox, or deleted a profile', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('k1', 'gk'), ident('m1', 'gm')] }), T0));
      assert.equal((await resolve(one, ['k1', 'm1'])).reads, 1);
      assert.equal((await resolve(one, ['k1', 'm1'])).reads, 0);
      // Another process merges gm into gk: held, gm would still place m1 in a graph that is gone.
      await two.ingest('a', (tx) => tx.apply(writePlan({ graphMerges: [{ from: 'gm', to: 'gk' }] }), T0 + 1));
      assert.deepEqual(await resolve(one, ['m1']), { members: [`k1@gk:${T0}`, `m1@gk:${T0}`], reads: 1 });
      assert.equal((await resolve(one, ['m1'])).reads, 0);
      await two.deleteProfile('a', 'gk', T0 + 2);
      assert.deepEqual(await resolve(one, ['m1']), { members: [], reads: 1 }, 'the deleted profile is not resolved from memory');
    });

    /** Counts the statements a store sends (every client of every pool) while `fn` runs. */
    const statements = async <T>(fn: () => Promise<T>): Promise<{ result: T; sent: string[] }> => {
      const original = pg.Client.prototype.query;
      const sent: string[] = [];
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        sent.push(typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string }).text ?? ''));
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof original;
      try {
        return { result: await fn(), sent };
      } finally {
        pg.Client.prototype.query = original;
      }
    };
    /** A batch of one page view of `id` on the graph it resolves to, applied last (as ingestion does); counts its runs. */
    const pageView = (store: PostgresStore, id: string, eventId: string, runs: { n: number }): Promise<number[]> =>
      store.ingest('a', async (tx) => {
        runs.n++;
        const [member] = await tx.graphMembersOf([{ ns: 'ecid', id }]);
        assert.ok(member, `${id} resolves`);
        const plan = writePlan({
          events: [{ datasetId: 'web', eventId, graphId: member.graphId, timestamp: T0, body: { id: eventId } }],
          changes: [{ profileId: member.graphId, type: 'event', eventId }],
        });
        return tx.apply(plan, T0, { last: true });
      });
    const graphOf = async (eventId: string): Promise<string | undefined> => {
      const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
      await client.connect();
      try {
        return (await client.query<{ graph_id: string }>("SELECT graph_id FROM events WHERE sandbox_id = 'a' AND event_id = $1", [eventId])).rows[0]?.graph_id;
      } finally {
        await client.end();
      }
    };

    it('commits a batch that read only held graphs in one statement, its change readable', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('v1', 'gv')] }), T0));
      const runs = { n: 0 };
      await pageView(one, 'v1', 'pv-warm', runs); // reads the graph (held from here on)
      const head = (await one.readChanges(0, 10_000)).at(-1)?.seq ?? 0;
      const { result: seqs, sent } = await statements(() => pageView(one, 'v1', 'pv-1', runs));
      assert.equal(sent.length, 1, `one statement: ${sent.map((t) => t.slice(0, 40)).join(' | ')}`);
      assert.match(sent[0]!, /audient_ingest_guard/);
      assert.equal(runs.n, 2);
      assert.deepEqual((await one.readChanges(head, 10)).map((c) => c.seq), seqs);
      assert.equal(await graphOf('pv-1'), 'gv');
    });

    it('runs a batch again, reading, when another store changed the graphs it planned with', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('s1', 'gs'), ident('t1', 'gt')] }), T0));
      const runs = { n: 0 };
      await pageView(one, 't1', 'st-warm', runs);
      assert.equal(await graphOf('st-warm'), 'gt');
      // Another process merges gt into gs: the graph one holds for t1 is gone.
      await two.ingest('a', (tx) => tx.apply(writePlan({ graphMerges: [{ from: 'gt', to: 'gs' }] }), T0 + 1));
      runs.n = 0;
      await pageView(one, 't1', 'st-1', runs);
      assert.equal(runs.n, 2, 'refused by the guard, then run again');
      assert.equal(await graphOf('st-1'), 'gs', 'the event lands in the merged graph');
      // Held again, and current: one statement.
      const { sent } = await statements(() => pageView(one, 't1', 'st-2', runs));
      assert.equal(sent.length, 1);
      assert.equal(await graphOf('st-2'), 'gs');
    });

    it('a batch in one statement waits for another store\'s open batch of the sandbox; seqs follow commit order', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('w1', 'gw')] }), T0));
      const runs = { n: 0 };
      await two.ingest('a', (tx) => tx.existingEvents([{ datasetId: 'web', eventId: 'none' }])); // two in step with one's writes
      await pageView(two, 'w1', 'w-warm', runs);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let appended!: () => void;
      const inside = new Promise<void>((r) => (appended = r));
      const first = one.ingest('a', async (tx) => {
        const seqs = await tx.apply(writePlan({ events: [{ datasetId: 'web', eventId: 'w-open', graphId: 'gw', timestamp: T0, body: {} }], changes: [{ profileId: 'gw', type: 'event', eventId: 'w-open' }] }), T0);
        appended();
        await held;
        return seqs;
      });
      await inside;
      let secondDone = false;
      const second = pageView(two, 'w1', 'w-1', runs).then((seqs) => ((secondDone = true), seqs));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(secondDone, false, 'the guarded statement waits for the sandbox');
      release();
      const [a, b] = await Promise.all([first, second]);
      assert.ok(a[0]! < b[0]!, `seqs follow commit order: ${a[0]} then ${b[0]}`);
    });

    it('leaves no event on a merged-away graph while another store merges under batches in one statement', async () => {
      const ids = Array.from({ length: 8 }, (_, i) => `mx${i}`);
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: ids.map((id) => ident(id, `g-${id}`)) }), T0));
      const runs = { n: 0 };
      for (const id of ids) await pageView(one, id, `${id}-warm`, runs); // every graph held by one
      // Store two merges every graph into the first, one batch at a time, while one keeps sending page views.
      const merges = (async () => {
        for (const id of ids.slice(1)) {
          await two.ingest('a', (tx) => tx.apply(writePlan({ graphMerges: [{ from: `g-${id}`, to: 'g-mx0' }] }), T0 + 1));
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const views = Promise.all(Array.from({ length: 40 }, (_, k) => pageView(one, ids[k % ids.length]!, `mx-pv-${k}`, runs)));
      await Promise.all([merges, views]);
      const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
      await client.connect();
      try {
        const { rows } = await client.query<{ event_id: string; graph_id: string }>(
          "SELECT event_id, graph_id FROM events WHERE sandbox_id = 'a' AND (event_id LIKE 'mx-pv-%' OR event_id LIKE 'mx%-warm')",
        );
        assert.equal(rows.length, 48);
        assert.deepEqual(rows.filter((r) => r.graph_id !== 'g-mx0'), [], 'every event is in the graph its identity is in now');
      } finally {
        await client.end();
      }
      assert.ok(runs.n > 48, `some batches were refused and run again (${runs.n} runs for 48 batches)`);
    });

    it('keeps its graphs while another store only creates graphs (new visitors) and touches identities', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('u1', 'gu'), ident('u2', 'gu')] }), T0));
      const runs = { n: 0 };
      await pageView(one, 'u1', 'u-warm', runs); // held from here on
      for (let k = 0; k < 3; k++) {
        // Another process: a new visitor (a graph of its own), then a returning one's last-seen touch in gu.
        await two.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident(`new-${k}`, `g-new-${k}`)], createdGraphs: [`g-new-${k}`] }), T0 + k));
        await two.ingest('a', (tx) => tx.apply(writePlan({ touchedIdentities: [{ ns: 'ecid', id: 'u2', lastSeen: T0 + 100 + k }] }), T0 + k));
        runs.n = 0;
        const { sent } = await statements(() => pageView(one, 'u1', `u-${k}`, runs));
        assert.deepEqual({ statements: sent.length, runs: runs.n }, { statements: 1, runs: 1 }, `page view ${k}: one guarded statement, not refused`);
        assert.equal(await graphOf(`u-${k}`), 'gu');
      }
      // Adding an identity to a graph that existed before does change it: held graphs are dropped.
      await two.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('u3', 'gu')] }), T0 + 9));
      assert.deepEqual(await resolve(one, ['u1']), { members: [`u1@gu:${T0}`, `u2@gu:${T0 + 102}`, `u3@gu:${T0}`], reads: 1 });
    });

    it('runs a batch that evicts again, reading, when it planned with held graphs (their last-seen times may be behind another store\'s touches)', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('e1', 'ge'), ident('e2', 'ge')] }), T0));
      const runs = { n: 0 };
      await pageView(one, 'e1', 'e-warm', runs);
      await two.ingest('a', (tx) => tx.apply(writePlan({ touchedIdentities: [{ ns: 'ecid', id: 'e1', lastSeen: T0 + 50 }] }), T0 + 50));
      const seen: number[] = [];
      runs.n = 0;
      await one.ingest('a', async (tx) => {
        runs.n++;
        const members = await tx.graphMembersOf([{ ns: 'ecid', id: 'e2' }]);
        seen.push(members.find((m) => m.id === 'e1')!.lastSeen);
        return tx.apply(
          writePlan({
            evictedIdentities: [{ ns: 'ecid', id: 'e2' }],
            changes: [{ profileId: 'ge', type: 'event', identitiesEvicted: [{ ns: 'ecid', id: 'e2' }] }],
          }),
          T0 + 60,
          { last: true },
        );
      });
      assert.deepEqual({ runs: runs.n, seen }, { runs: 2, seen: [T0, T0 + 50] }, 'planned again with the touch another store made');
      assert.deepEqual((await resolve(one, ['e1'])).members, [`e1@ge:${T0 + 50}`]);
    });

    it('a batch in one statement whose connection is lost while it waits fails whole; the next batch runs on a new connection', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('l1', 'gl')] }), T0));
      const runs = { n: 0 };
      await pageView(one, 'l1', 'l-warm', runs); // held: the next page view is one guarded statement
      // Another process's batch of the sandbox is open: the guarded statement waits for its lock.
      const holder = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
      await holder.connect();
      try {
        await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${sandboxLockKey("'a'")})`);
        const lost = pageView(one, 'l1', 'l-lost', runs);
        const outcome = lost.then(() => 'committed', (err: Error) => err.message);
        // The server ends the waiting connection (a restart, a failover, an operator).
        let killed = 0;
        for (let i = 0; i < 100 && killed === 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
          const { rows } = await holder.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%audient_ingest_guard%'",
          );
          for (const { pid } of rows) killed += (await holder.query('SELECT pg_terminate_backend($1)', [pid])).rowCount ?? 0;
        }
        assert.equal(killed, 1, 'the guarded statement was waiting for the lock');
        assert.match(await outcome, /terminat|connection/i, 'the batch fails with the lost connection');
        await holder.query('ROLLBACK');
      } finally {
        await holder.end();
      }
      assert.equal(await graphOf('l-lost'), undefined, 'nothing of the failed batch was written');
      // The dead connection is not handed out again: the next batches commit.
      for (const k of [1, 2, 3]) await pageView(one, 'l1', `l-after-${k}`, runs);
      assert.equal(await graphOf('l-after-3'), 'gl');
    });

    it('checks a batch that sent nothing against the graph epoch', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('n1', 'gn'), ident('o1', 'go')] }), T0));
      assert.equal((await resolve(one, ['o1'])).reads, 1);
      const { sent } = await statements(() => resolve(one, ['o1']));
      assert.equal(sent.length, 1, 'held: only the epoch is read');
      await two.ingest('a', (tx) => tx.apply(writePlan({ graphMerges: [{ from: 'go', to: 'gn' }] }), T0 + 1));
      assert.deepEqual(await resolve(one, ['o1']), { members: [`n1@gn:${T0}`, `o1@gn:${T0}`], reads: 1 });
    });

    it('drops what it holds when a batch fails', async () => {
      await one.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('r1', 'gr')] }), T0));
      assert.equal((await resolve(one, ['r1'])).reads, 1);
      // The touch is applied to what is held, then the batch rolls back.
      await assert.rejects(
        one.ingest('a', async (tx) => {
          await tx.apply(writePlan({ touchedIdentities: [{ ns: 'ecid', id: 'r1', lastSeen: T0 + 9 }] }), T0 + 9);
          throw new Error('planned failure');
        }),
        /planned failure/,
      );
      assert.deepEqual(await resolve(one, ['r1']), { members: [`r1@gr:${T0}`], reads: 1 });
      // The same with the graph read in the failing batch itself (a transaction from its start).
      await assert.rejects(one.ingest('a', () => Promise.reject(new Error('planned failure'))), /planned failure/);
      await assert.rejects(
        one.ingest('a', async (tx) => {
          await tx.graphMembersOf([{ ns: 'ecid', id: 'r1' }]);
          await tx.apply(writePlan({ touchedIdentities: [{ ns: 'ecid', id: 'r1', lastSeen: T0 + 9 }] }), T0 + 9);
          throw new Error('planned failure');
        }),
        /planned failure/,
      );
      assert.deepEqual(await resolve(one, ['r1']), { members: [`r1@gr:${T0}`], reads: 1 });
    });
  });

  it('parses BIGINT columns to numbers without touching the global pg parsers', async () => {
    await one.setCursor('c', 2 ** 52);
    assert.equal(await one.getCursor('c'), 2 ** 52);
    assert.equal(typeof (await one.countLake('a', 'raw')), 'number');
    assert.equal(pg.types.getTypeParser(pg.types.builtins.INT8, 'text')('42'), '42');
  });
});
