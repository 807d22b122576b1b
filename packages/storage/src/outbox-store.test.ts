/**
 * Conformance suite of the storage port's activation outbox (enqueue, lease, finish, retry,
 * dead letters, counts) and per-hour activation metrics, on every adapter; plus, on PostgreSQL,
 * several stores (processes) claiming from one outbox at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ExportRecord } from '@audient/core';
import type { OutboxRow, Store } from './port.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { describeBackends, dropScratchSchema, pgTestUrl, scratchSchemaName, storeBackends, eachStoreWithSandboxes } from './testing.js';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const LEASE = 30_000;

type NewExport = Parameters<Store['enqueueExports']>[0][number];

const payload = (profileId: string, key: string): ExportRecord => ({
  profileId,
  attributes: { person: { firstName: 'Ada' } },
  identities: { email: [`${profileId}@example.com`] },
  identityMap: { email: [{ id: `${profileId}@example.com`, primary: true }] },
  segmentMembership: { ups: { aud1: { status: 'realized', lastQualificationTime: '2024-01-01T00:00:00.000Z' } } },
  audiences: [{ id: 'aud1', name: 'Adults', status: 'realized' }],
  reasons: ['membership'],
  idempotencyKey: key,
});

/** A new export of `profileId`; its idempotency key names it in assertions. */
const exp = (key: string, over: Partial<NewExport> = {}): NewExport => {
  const profileId = over.profileId ?? 'p1';
  return { sandboxId: 'a', dataflowId: 'df1', profileId, idempotencyKey: key, payload: payload(profileId, key), createdAt: T0, ...over };
};

const keys = (rows: readonly OutboxRow[]): string[] => rows.map((r) => r.idempotencyKey);
const ids = (rows: readonly OutboxRow[]): number[] => rows.map((r) => r.id);
/** A claimed row as listed (listed rows carry no lease). */
const unleased = ({ lease: _lease, ...row }: OutboxRow): OutboxRow => row;
const held = (r: OutboxRow): { id: number; lease: number } => ({ id: r.id, lease: r.lease ?? assert.fail(`row ${r.id} is not leased`) });
/** Settles claimed rows as the delivery runtime does (fenced by their lease). */
const finish = (store: Store, rows: readonly OutboxRow[]) => store.settleExports({ done: rows.map(held), retry: [], dead: [] });
const retry = (store: Store, r: OutboxRow, nextAttemptAt: number, lastError: string) =>
  store.settleExports({ done: [], retry: [{ ...held(r), nextAttemptAt, lastError }], dead: [] });
const deadLetter = (store: Store, rows: ReadonlyArray<{ row: OutboxRow; lastError: string }>) =>
  store.settleExports({ done: [], retry: [], dead: rows.map(({ row, lastError }) => ({ ...held(row), lastError })) });

await describeBackends((backend) => {
  let store: Store;
  eachStoreWithSandboxes(backend, (s) => (store = s));

  /** Every row of a sandbox with a status, across pages. */
  const all = (sandboxId: string, status: OutboxRow['status']): Promise<OutboxRow[]> =>
    store.listOutbox(sandboxId, { status }, { limit: 1000 });

  it('claims due exports oldest first up to the limit, and finishing removes them', async () => {
    await store.enqueueExports([
      exp('k1', { createdAt: T0 }),
      exp('k2', { createdAt: T0 + 1 }),
      exp('k3', { createdAt: T0 + 2 }),
      exp('future', { createdAt: T0 + 100 }),
    ]);
    await store.enqueueExports([]);

    const first = await store.claimExports(T0 + 10, 2, LEASE);
    assert.deepEqual(keys(first), ['k1', 'k2']);
    assert.ok((first[0]?.id ?? 0) < (first[1]?.id ?? 0));
    assert.deepEqual(first[0], {
      id: first[0]?.id, sandboxId: 'a', dataflowId: 'df1', profileId: 'p1', idempotencyKey: 'k1', payload: payload('p1', 'k1'),
      status: 'inflight', attempts: 0, nextAttemptAt: T0, createdAt: T0, lastError: null, lease: first[0]?.lease,
    });
    assert.ok(Number.isSafeInteger(first[0]?.lease) && (first[0]?.lease ?? 0) > 0, 'a claimed row carries its lease token');
    assert.equal(first[1]?.lease, first[0]?.lease, 'one claim, one lease');

    const second = await store.claimExports(T0 + 10, 10, LEASE);
    assert.deepEqual(keys(second), ['k3'], 'only due rows, and not the ones already leased');

    await finish(store, [...first, ...second]);
    await finish(store, []);
    assert.deepEqual(keys(await all('a', 'inflight')), []);
    assert.deepEqual(keys(await all('a', 'pending')), ['future']);
    assert.deepEqual(keys(await store.claimExports(T0 + LEASE + 100, 10, LEASE)), ['future'], 'finished rows never come back');
  });

  it('keeps enqueue order within one batch', async () => {
    const batch = Array.from({ length: 50 }, (_, i) => exp(`k${String(i).padStart(2, '0')}`));
    await store.enqueueExports(batch);
    assert.deepEqual(keys(await store.claimExports(T0, 100, LEASE)), batch.map((r) => r.idempotencyKey));
  });

  it('leases claimed rows: nothing before the lease expires, the same rows after (a dead worker)', async () => {
    await store.enqueueExports([exp('k1'), exp('k2')]);
    const claimed = await store.claimExports(T0, 10, 1_000);
    assert.deepEqual(keys(claimed), ['k1', 'k2']);

    assert.deepEqual(await store.claimExports(T0 + 999, 10, 1_000), []);
    const again = await store.claimExports(T0 + 1_000, 10, 1_000);
    assert.deepEqual(ids(again), ids(claimed));
    assert.deepEqual(again.map((r) => [r.status, r.attempts]), [['inflight', 0], ['inflight', 0]]);
    assert.deepEqual(await store.claimExports(T0 + 1_999, 10, 1_000), [], 'the new claim took a new lease');
    assert.deepEqual(ids(await store.claimExports(T0 + 2_000, 1, 1_000)), ids(claimed).slice(0, 1));
  });

  it('settles leased rows in one call: finished, retried, dead-lettered; an empty settlement is a no-op', async () => {
    await store.enqueueExports([exp('k1'), exp('k2'), exp('k3'), exp('k4')]);
    const [k1, k2, k3, k4] = await store.claimExports(T0, 10, LEASE);
    assert.ok(k1 && k2 && k3 && k4);
    assert.deepEqual(await store.settleExports({ done: [], retry: [], dead: [] }), []);
    const settled = await store.settleExports({
      done: [{ id: k1.id, lease: k1.lease! }, { id: k4.id, lease: k4.lease! }],
      retry: [{ id: k2.id, lease: k2.lease!, nextAttemptAt: T0 + 5_000, lastError: 'HTTP 503' }],
      dead: [{ id: k3.id, lease: k3.lease!, lastError: 'HTTP 400' }],
    });
    assert.deepEqual([...settled].sort((a, b) => a - b), ids([k1, k2, k3, k4]));
    assert.deepEqual(await all('a', 'inflight'), []);
    const [pending] = await all('a', 'pending');
    assert.deepEqual([pending?.idempotencyKey, pending?.attempts, pending?.nextAttemptAt, pending?.lastError], ['k2', 1, T0 + 5_000, 'HTTP 503']);
    assert.equal(pending?.lease, undefined, 'listed rows carry no lease');
    const [dead] = await all('a', 'dead');
    assert.deepEqual([dead?.idempotencyKey, dead?.attempts, dead?.lastError], ['k3', 1, 'HTTP 400']);
    assert.deepEqual(keys(await store.claimExports(T0 + 5_000, 10, LEASE)), ['k2'], 'finished rows are gone, the retry is due again');
  });

  it('fences settling by the lease: an expired lease taken by another claim cannot be settled by its old holder', async () => {
    await store.enqueueExports([exp('k1'), exp('k2'), exp('k3')]);
    const old = await store.claimExports(T0, 10, 1_000);
    assert.deepEqual(keys(old), ['k1', 'k2', 'k3']);
    // The first holder stalls past its lease; another runtime re-leases the rows.
    const taken = await store.claimExports(T0 + 1_000, 10, 1_000);
    assert.deepEqual(ids(taken), ids(old));
    assert.notEqual(taken[0]?.lease, old[0]?.lease, 'the new claim has a new lease');
    const [o1, o2, o3] = old;
    assert.ok(o1 && o2 && o3);
    // The old holder's outcomes, whatever they are, apply to nothing.
    assert.deepEqual(await store.settleExports({
      done: [{ id: o1.id, lease: o1.lease! }],
      retry: [{ id: o2.id, lease: o2.lease!, nextAttemptAt: T0 + 2_000, lastError: 'late' }],
      dead: [{ id: o3.id, lease: o3.lease!, lastError: 'late' }],
    }), []);
    const inflight = await all('a', 'inflight');
    assert.deepEqual(keys(inflight), ['k1', 'k2', 'k3'], 'nothing was removed or moved');
    assert.deepEqual(inflight.map((r) => [r.attempts, r.lastError]), [[0, null], [0, null], [0, null]]);
    // The current holder settles them, once: a second settlement of the same lease applies to nothing.
    const done = taken.map((r) => ({ id: r.id, lease: r.lease! }));
    assert.deepEqual([...(await store.settleExports({ done, retry: [], dead: [] }))].sort((a, b) => a - b), ids(taken));
    assert.deepEqual(await store.settleExports({ done, retry: [], dead: [] }), []);
    assert.deepEqual(await all('a', 'inflight'), []);
    assert.deepEqual(await all('a', 'pending'), []);
  });

  it('a holder settles its rows even after its lease ran out while no other claim took them; the old lease is dead after that', async () => {
    await store.enqueueExports([exp('k1')]);
    const [k1] = await store.claimExports(T0, 10, 1_000);
    assert.ok(k1);
    assert.deepEqual(await store.settleExports({ done: [], retry: [{ id: k1.id, lease: k1.lease!, nextAttemptAt: T0 + 10_000, lastError: 'timeout' }], dead: [] }), [k1.id]);
    const [again] = await store.claimExports(T0 + 10_000, 10, 1_000);
    assert.ok(again);
    assert.equal(again.attempts, 1);
    assert.deepEqual(await store.settleExports({ done: [{ id: k1.id, lease: k1.lease! }], retry: [], dead: [] }), [], 'the retried row has a new lease');
    assert.deepEqual(await store.settleExports({ done: [{ id: again.id, lease: again.lease! }], retry: [], dead: [] }), [again.id]);
  });

  it('retries: pending again, one more attempt, not claimable before the next attempt', async () => {
    await store.enqueueExports([exp('k1'), exp('k2')]);
    const [one, two] = await store.claimExports(T0, 10, LEASE);
    assert.ok(one && two);
    await retry(store, one, T0 + 5_000, 'HTTP 503: upstream unavailable');

    const [pending] = await all('a', 'pending');
    assert.deepEqual(pending, { ...unleased(one), status: 'pending', attempts: 1, nextAttemptAt: T0 + 5_000, lastError: 'HTTP 503: upstream unavailable' });
    assert.deepEqual(await store.claimExports(T0 + 4_999, 10, LEASE), []);
    const retried = await store.claimExports(T0 + 5_000, 10, LEASE);
    assert.deepEqual(retried.map((r) => [r.id, r.attempts, r.lastError]), [[one.id, 1, 'HTTP 503: upstream unavailable']]);

    await retry(store, retried[0]!, T0 + 9_000, 'timeout');
    assert.deepEqual((await all('a', 'pending')).map((r) => [r.attempts, r.lastError]), [[2, 'timeout']]);
    assert.deepEqual(ids(await all('a', 'inflight')), [two.id], 'other rows are untouched');
  });

  it('dead-letters, lists dead letters by page and requeues them by ids or by dataflow', async () => {
    await store.enqueueExports([
      exp('k1'), exp('k2'), exp('k3', { dataflowId: 'df2' }), exp('k4'), exp('k5'),
    ]);
    const claimed = await store.claimExports(T0, 10, LEASE);
    const [k1, k2, k3, k4, k5] = claimed;
    assert.ok(k1 && k2 && k3 && k4 && k5);
    await deadLetter(store, [
      { row: k1, lastError: 'HTTP 400: {"error":"invalid email"}' },
      { row: k2, lastError: 'HTTP 404' },
      { row: k3, lastError: 'HTTP 401' },
      { row: k4, lastError: 'HTTP 422' },
    ]);
    await deadLetter(store, []);
    await finish(store, [k5]);

    const page1 = await store.listOutbox('a', { status: 'dead' }, { limit: 2 });
    assert.deepEqual(keys(page1), ['k1', 'k2']);
    const page2 = await store.listOutbox('a', { status: 'dead' }, { limit: 2, after: page1[1]?.id });
    assert.deepEqual(keys(page2), ['k3', 'k4']);
    assert.deepEqual(await store.listOutbox('a', { status: 'dead' }, { limit: 2, after: page2[1]?.id }), []);
    assert.deepEqual(page1[0], { ...unleased(k1), status: 'dead', attempts: 1, lastError: 'HTTP 400: {"error":"invalid email"}' });
    assert.deepEqual(keys(await store.listOutbox('a', { dataflowId: 'df1', status: 'dead' }, { limit: 10 })), ['k1', 'k2', 'k4']);
    assert.deepEqual(keys(await store.listOutbox('a', { dataflowId: 'df2', status: 'dead' }, { limit: 10 })), ['k3']);
    assert.deepEqual(await all('a', 'inflight'), []);
    assert.deepEqual(await store.claimExports(T0 + 10 * LEASE, 10, LEASE), [], 'dead letters are never claimed');

    const now = T0 + 60_000;
    assert.equal(await store.requeueDeadLetters('a', { ids: [k2.id, k2.id, k5.id] }, now), 1, 'only dead rows, each once');
    assert.equal(await store.requeueDeadLetters('a', { ids: [] }, now), 0);
    assert.equal(await store.requeueDeadLetters('a', { dataflowId: 'df1' }, now), 2);
    assert.deepEqual(keys(await all('a', 'dead')), ['k3']);
    const requeued = await all('a', 'pending');
    assert.deepEqual(requeued.map((r) => [r.idempotencyKey, r.attempts, r.nextAttemptAt]), [['k1', 1, now], ['k2', 1, now], ['k4', 1, now]]);
    assert.equal(requeued[0]?.lastError, 'HTTP 400: {"error":"invalid email"}', 'the reason is kept');
    assert.deepEqual(await store.claimExports(now - 1, 10, LEASE), []);
    assert.deepEqual(keys(await store.claimExports(now, 10, LEASE)), ['k1', 'k2', 'k4']);
  });

  it('counts by status with the creation time of the oldest pending export', async () => {
    assert.deepEqual(await store.outboxCounts('a', 'df1'), { pending: 0, inflight: 0, dead: 0, oldestPendingAt: null });
    await store.enqueueExports([
      exp('k1', { createdAt: T0 }), exp('k2', { createdAt: T0 + 10 }), exp('k3', { createdAt: T0 + 20 }),
      exp('k4', { createdAt: T0 + 30 }), exp('k5', { createdAt: T0 + 40 }), exp('other', { dataflowId: 'df2', createdAt: T0 - 5 }),
    ]);
    const [k1, k2] = await store.claimExports(T0 + 15, 2, LEASE);
    assert.ok(k1 && k2);
    await deadLetter(store, [{ row: k2, lastError: 'HTTP 400' }]);
    assert.deepEqual(await store.outboxCounts('a', 'df1'), { pending: 3, inflight: 1, dead: 1, oldestPendingAt: T0 + 20 });
    assert.deepEqual(await store.outboxCounts('a', 'df2'), { pending: 1, inflight: 0, dead: 0, oldestPendingAt: T0 - 5 });
    await retry(store, k1, T0 + 1_000, 'HTTP 500');
    assert.deepEqual(await store.outboxCounts('a', 'df1'), { pending: 4, inflight: 0, dead: 1, oldestPendingAt: T0 });
  });

  it('keeps sandboxes apart in listing, requeueing and counting', async () => {
    await store.enqueueExports([exp('a1'), exp('b1', { sandboxId: 'b' }), exp('b2', { sandboxId: 'b' })]);
    const [a1, b1, b2] = await store.claimExports(T0, 10, LEASE);
    assert.ok(a1 && b1 && b2);
    await deadLetter(store, [a1, b1, b2].map((row) => ({ row, lastError: 'HTTP 400' })));

    assert.deepEqual(keys(await all('a', 'dead')), ['a1']);
    assert.deepEqual(keys(await store.listOutbox('b', { dataflowId: 'df1', status: 'dead' }, { limit: 10 })), ['b1', 'b2']);
    assert.deepEqual(await all('c', 'dead'), []);
    assert.deepEqual(await store.outboxCounts('b', 'df1'), { pending: 0, inflight: 0, dead: 2, oldestPendingAt: null });

    assert.equal(await store.requeueDeadLetters('b', { ids: [a1.id] }, T0), 0, "another sandbox's ids are not requeued");
    assert.equal(await store.requeueDeadLetters('b', { dataflowId: 'df1' }, T0), 2);
    assert.deepEqual(keys(await all('a', 'dead')), ['a1']);
    assert.deepEqual(await store.outboxCounts('a', 'df1'), { pending: 0, inflight: 0, dead: 1, oldestPendingAt: null });
    assert.deepEqual(await store.outboxCounts('b', 'df1'), { pending: 2, inflight: 0, dead: 0, oldestPendingAt: T0 });
  });

  it('sums activation metrics per hour, keeps the maximum of max: metrics, and reads since an hour', async () => {
    const h = T0 - (T0 % HOUR);
    await store.addActivationStats('a', 'df1', h - HOUR, { sent: 9 });
    await store.addActivationStats('a', 'df1', h, { sent: 2, failed: 1, 'max:latencyMs': 120, 'max:lagMs': -5 });
    await store.addActivationStats('a', 'df1', h, { sent: 3, 'max:latencyMs': 80 });
    await store.addActivationStats('a', 'df1', h, { 'max:latencyMs': 200.5, failed: 0.25 });
    await store.addActivationStats('a', 'df1', h, {});
    await store.addActivationStats('a', 'df1', h + HOUR, { sent: 1.5 });
    await store.addActivationStats('a', 'df2', h, { sent: 100 });
    await store.addActivationStats('b', 'df1', h, { sent: 1000 });

    assert.deepEqual(await store.activationStats('a', 'df1', h), [
      { hour: h, metrics: { sent: 5, failed: 1.25, 'max:latencyMs': 200.5, 'max:lagMs': -5 } },
      { hour: h + HOUR, metrics: { sent: 1.5 } },
    ]);
    assert.deepEqual((await store.activationStats('a', 'df1', 0)).map((x) => x.hour), [h - HOUR, h, h + HOUR]);
    assert.deepEqual(await store.activationStats('b', 'df1', h), [{ hour: h, metrics: { sent: 1000 } }]);
    assert.deepEqual(await store.activationStats('a', 'df1', h + 2 * HOUR), []);
  });

  it("drops a profile's queued exports, of every status, when the profile is deleted", async () => {
    await store.enqueueExports([
      exp('p1-a', { profileId: 'p1' }), exp('p2-a', { profileId: 'p2' }), exp('p1-b', { profileId: 'p1' }),
      exp('p1-c', { profileId: 'p1' }), exp('b-p1', { profileId: 'p1', sandboxId: 'b' }),
    ]);
    const [p1a, , p1b] = await store.claimExports(T0, 3, LEASE);
    assert.ok(p1a && p1b);
    await deadLetter(store, [{ row: p1b, lastError: 'HTTP 400' }]);

    await store.deleteProfile('a', 'p1', T0 + 1);
    assert.deepEqual(keys(await all('a', 'pending')), []);
    assert.deepEqual(keys(await all('a', 'inflight')), ['p2-a']);
    assert.deepEqual(keys(await all('a', 'dead')), []);
    assert.deepEqual(keys(await all('b', 'pending')), ['b-p1'], 'the same profile id in another sandbox stays');
    assert.deepEqual(keys(await store.claimExports(T0 + 10 * LEASE, 10, LEASE)), ['p2-a', 'b-p1']);
  });

  it('round-trips payloads exactly', async () => {
    const rich: ExportRecord = {
      ...payload('p1', 'rich'),
      attributes: {
        'person.name': { first: 'Zoë "Z" O\'Brien', last: 'Ünlü\\n', emoji: '🧪👩🏽‍🔬', cjk: '数据', rtl: 'مرحبا' },
        numbers: { int: 42, neg: -7, float: 0.1 + 0.2, tiny: 5e-324, big: Number.MAX_SAFE_INTEGER, huge: 1.7976931348623157e308, zero: 0 },
        flags: [true, false, null],
        empty: { list: [], object: {}, string: '' },
        deep: { a: { b: { c: { d: [1, [2, [3, { e: 'f' }]]] } } } },
        text: 'line1\nline2\ttab\r\u2028\u00e9\\',
      },
      identities: { email: ['a@example.com', 'b@example.com'], phone: [] },
      reasons: ['membership', 'identity', 'attribute', 'backfill', 'delete'],
    };
    await store.enqueueExports([exp('rich', { payload: rich })]);
    const [claimed] = await store.claimExports(T0, 1, LEASE);
    assert.deepEqual(claimed?.payload, rich);
    assert.deepEqual(JSON.parse(JSON.stringify(claimed?.payload)), JSON.parse(JSON.stringify(rich)));
    assert.ok(claimed);
    await deadLetter(store, [{ row: claimed, lastError: 'x' }]);
    assert.deepEqual((await all('a', 'dead'))[0]?.payload, rich);
  });
});

const postgres = (await storeBackends()).find((b) => b.name === 'postgres');

describe('PostgreSQL outbox with several processes', { skip: postgres?.skip ?? 'no postgres backend' }, () => {
  const url = pgTestUrl();
  const schema = scratchSchemaName();
  let one: PostgresStore;
  let two: PostgresStore;

  before(async () => {
    one = new PostgresStore(url, { schema });
    two = new PostgresStore(url, { schema });
    await one.migrate();
    await one.createSandbox({ id: 'a', name: 'A' });
  });
  after(async () => {
    await Promise.all([one.close(), two.close()]);
    await dropScratchSchema(url, schema);
  });

  it('never hands the same row to two concurrent claimers', async () => {
    const total = 400;
    await one.enqueueExports(Array.from({ length: total }, (_, i) => exp(`k${i}`, { createdAt: T0 + (i % 7) })));
    const seen: number[] = [];
    let claims = 0;
    const worker = async (store: PostgresStore): Promise<void> => {
      for (;;) {
        const rows = await store.claimExports(T0 + 10, 3, LEASE);
        if (rows.length === 0) return;
        seen.push(...ids(rows));
        claims++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, i) => worker(i % 2 ? two : one)));
    assert.ok(claims > 16, 'claims actually interleaved');
    assert.equal(new Set(seen).size, seen.length, 'no row was claimed twice');
    assert.equal(seen.length, total, 'every row was claimed');
    assert.deepEqual(await one.outboxCounts('a', 'df1'), { pending: 0, inflight: total, dead: 0, oldestPendingAt: null });
  });
});
