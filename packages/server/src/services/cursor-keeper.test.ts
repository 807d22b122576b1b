import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { SqliteStore, type Store } from '@audient/storage';
import { CursorKeeper } from './cursor-keeper.js';
import type { ChangeMessage } from './change-feed.js';
import { createHarness, type Harness } from '../testing/harness.js';

/** setCursor of `store` held until released, recording the positions asked for. */
function gated(store: Store): { asked: Array<[string, number]>; release: () => void; fail: (n: number) => void } {
  const real = store.setCursor.bind(store);
  const asked: Array<[string, number]> = [];
  let open: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (open = resolve));
  let failures = 0;
  store.setCursor = async (name, seq) => {
    asked.push([name, seq]);
    await gate;
    if (failures > 0) {
      failures--;
      throw new Error('injected cursor write failure');
    }
    return real(name, seq);
  };
  return {
    asked,
    release: () => {
      open();
      gate = Promise.resolve();
    },
    fail: (n) => (failures = n),
  };
}

describe('cursor keeper', () => {
  it('writes behind its reader: one write at a time, the latest position winning', async () => {
    const store = new SqliteStore(':memory:');
    await store.migrate();
    const g = gated(store);
    const keeper = new CursorKeeper(store, 'feed', pino({ level: 'silent' }));
    keeper.set(1);
    keeper.set(2);
    keeper.set(3);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(g.asked, [['feed', 1]], 'one write in flight; the reader did not wait for it');
    g.release();
    await keeper.settled();
    assert.deepEqual(g.asked, [['feed', 1], ['feed', 3]], 'positions handed over meanwhile are written once, the latest');
    assert.equal(await store.getCursor('feed'), 3);
    keeper.set(3);
    await keeper.settled();
    assert.equal(g.asked.length, 2, 'a position already written is not written again');

    // A failed write is logged and retried with the next position.
    g.fail(1);
    keeper.set(4);
    await keeper.settled();
    assert.equal(await store.getCursor('feed'), 3);
    keeper.set(5);
    await keeper.settled();
    assert.equal(await store.getCursor('feed'), 5);
    await store.close();
  });

  it('writes at most once per interval; settled() writes the latest at once', async () => {
    const store = new SqliteStore(':memory:');
    await store.migrate();
    const turns = async (n: number) => {
      for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    };
    const keeper = new CursorKeeper(store, 'slow', pino({ level: 'silent' }), 60_000);
    keeper.set(1);
    for (let i = 0; i < 100 && (await store.getCursor('slow')) !== 1; i++) await turns(1);
    assert.equal(await store.getCursor('slow'), 1, 'the first position is written at once');
    keeper.set(2);
    keeper.set(3);
    await turns(20);
    assert.equal(await store.getCursor('slow'), 1, 'later ones wait out the interval');
    await keeper.settled();
    assert.equal(await store.getCursor('slow'), 3);
    await store.close();
  });
});

describe('change feed with a slow cursor write', () => {
  let h: Harness;
  before(async () => {
    const store = new SqliteStore(':memory:');
    await store.migrate();
    h = await createHarness(store);
    const r1 = await h.call('POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details'], fields: {} });
    assert.ok(r1.statusCode < 300, r1.body);
    const r2 = await h.call('POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
    assert.ok(r2.statusCode < 300, r2.body);
  });
  after(() => h.close());

  it('publishes every change without waiting for its cursor to be written, and stop() writes the last one', async () => {
    const published: number[] = [];
    h.ctx.bus.subscribe<ChangeMessage>('changes.>', 'test', async (m) => {
      published.push(m.payload.seq);
    });
    const g = gated(h.ctx.store);
    const ev = (n: number) => ({
      _id: `e-${n}`, timestamp: '2024-03-01T10:00:00Z', eventType: 'web.webpagedetails.pageViews',
      web: { webPageDetails: { name: 'home' } }, identityMap: { ECID: [{ id: String(n).padStart(38, '3') }] },
    });
    for (let n = 0; n < 3; n++) {
      const r = await h.call('POST', '/v1/datasets/web/records', ev(n));
      assert.equal(r.statusCode, 200, r.body);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
    }
    assert.equal(published.length, 3, 'each commit published while the first cursor write is still held');
    assert.ok(g.asked.filter(([name]) => name === 'change-feed').length <= 1);
    g.release();
    await h.ctx.feed.stop();
    assert.equal(await h.ctx.store.getCursor('change-feed'), Math.max(...published));
  });
});
