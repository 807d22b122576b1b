import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { SqliteStore, type MembershipConfirmation } from '@audient/storage';
import { Confirmations, MAX_ATTEMPTS } from './confirmations.js';

const T0 = 1_700_000_000_000;
const entered = (profileId: string, audienceId: string) =>
  ({ profileId, audienceId, membership: { audienceId, status: 'realized' as const, lastQualificationTime: T0 }, event: 'realized' as const });
const confirm = (profileId: string, audienceId: string): MembershipConfirmation => ({ profileId, audienceId, lastQualificationTime: T0 });

async function setup(opts: { delayMs?: number; chunk?: number; maxQueued?: number } = {}) {
  const store = new SqliteStore(':memory:');
  await store.migrate();
  const calls: number[] = [];
  let failures = 0;
  const real = store.confirmMemberships.bind(store);
  store.confirmMemberships = async (sandboxId, list) => {
    calls.push(list.length);
    if (failures > 0) {
      failures--;
      throw new Error('injected confirmation failure');
    }
    return real(sandboxId, list);
  };
  const outcomes = new Counter({ name: 'confirmations', help: 'test', labelNames: ['outcome'], registers: [new Registry()] });
  const confirmations = new Confirmations({ store, log: pino({ level: 'silent' }), outcomes, ...opts });
  const status = async (sandboxId: string, profileId: string) =>
    Object.fromEntries(((await store.memberships(sandboxId, [profileId])).get(profileId) ?? []).map((m) => [m.audienceId, m.status]));
  const counted = async () => Object.fromEntries((await outcomes.get()).values.map((v) => [v.labels['outcome'], v.value]));
  return { store, calls, confirmations, status, counted, fail: (n: number) => (failures = n) };
}

describe('membership confirmations written off the evaluation path', () => {
  it('are written after a delay, together, once per membership, per sandbox', async () => {
    const t = await setup({ delayMs: 20 });
    await t.store.writeMemberships('a', [entered('p1', 'A'), entered('p1', 'B'), entered('p2', 'A')], T0);
    await t.store.writeMemberships('b', [entered('p1', 'A')], T0);
    t.confirmations.add('a', [confirm('p1', 'A'), confirm('p1', 'B')]);
    t.confirmations.add('a', [confirm('p1', 'A'), confirm('p2', 'A')]);
    t.confirmations.add('b', [confirm('p1', 'A')]);
    assert.equal(t.confirmations.pending, 4, 'the same membership twice is one confirmation');
    assert.deepEqual(await t.status('a', 'p1'), { A: 'realized', B: 'realized' }, 'not written with the call');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(t.confirmations.pending, 0);
    assert.deepEqual(t.calls, [3, 1], 'one store call per sandbox');
    assert.deepEqual(await t.status('a', 'p1'), { A: 'existing', B: 'existing' });
    assert.deepEqual(await t.status('a', 'p2'), { A: 'existing' });
    assert.deepEqual(await t.status('b', 'p1'), { A: 'existing' });
    assert.deepEqual(await t.counted(), { written: 4 });
  });

  it('are written in chunks, and one written late never undoes a later exit', async () => {
    const t = await setup({ delayMs: 60_000, chunk: 2, maxQueued: 2 });
    await t.store.writeMemberships('a', [entered('p1', 'A'), entered('p2', 'A'), entered('p3', 'A')], T0);
    t.confirmations.add('a', [confirm('p1', 'A'), confirm('p2', 'A'), confirm('p3', 'A')]);
    assert.equal(t.confirmations.full, true, 'past the bound: evaluations wait for the writes');
    // p3 leaves before its confirmation is written.
    await t.store.writeMemberships('a', [{ profileId: 'p3', audienceId: 'A', membership: { audienceId: 'A', status: 'exited', lastQualificationTime: T0 + 1 }, event: 'exited' }], T0 + 1);
    await t.confirmations.flush();
    assert.deepEqual(t.calls, [2, 1]);
    assert.equal(t.confirmations.full, false);
    assert.deepEqual(await t.status('a', 'p2'), { A: 'existing' });
    assert.deepEqual(await t.status('a', 'p3'), { A: 'exited' });
    assert.deepEqual(await t.counted(), { written: 2, stale: 1 });
  });

  it('are retried when the store fails, then given up and counted', async () => {
    const t = await setup({ delayMs: 1 });
    await t.store.writeMemberships('a', [entered('p1', 'A'), entered('p2', 'A')], T0);
    t.fail(1);
    t.confirmations.add('a', [confirm('p1', 'A')]);
    await t.confirmations.flush();
    assert.deepEqual(t.calls, [1, 1], 'retried once');
    assert.deepEqual(await t.status('a', 'p1'), { A: 'existing' });

    t.fail(MAX_ATTEMPTS);
    t.confirmations.add('a', [confirm('p2', 'A')]);
    await t.confirmations.flush();
    assert.equal(t.calls.length, 2 + MAX_ATTEMPTS);
    assert.equal(t.confirmations.pending, 0);
    assert.deepEqual(await t.status('a', 'p2'), { A: 'realized' }, 'given up: still realized');
    assert.deepEqual(await t.counted(), { written: 1, dropped: 1 });
  });

  it('retry on their own after a failure, with a back-off', async () => {
    const t = await setup({ delayMs: 5 });
    await t.store.writeMemberships('a', [entered('p1', 'A')], T0);
    t.fail(1);
    t.confirmations.add('a', [confirm('p1', 'A')]);
    const deadline = Date.now() + 5_000;
    while (t.confirmations.pending > 0 || t.calls.length < 2) {
      assert.ok(Date.now() < deadline, 'retried within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await t.confirmations.flush();
    assert.deepEqual(await t.status('a', 'p1'), { A: 'existing' });
  });
});
