import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RecentMap } from './recent-map.js';

describe('RecentMap', () => {
  it('keeps the max/2 most recently used entries, never more than max, and tells what it forgets', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 12 }),
        fc.array(fc.tuple(fc.constantFrom('use', 'use', 'use', 'delete'), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }),
        (max, ops) => {
          const forgotten: number[] = [];
          const m = new RecentMap<number, string>(max, (k, v) => {
            assert.equal(v, `v${k}`);
            forgotten.push(k);
          });
          const live = new Set<number>();
          const order: number[] = []; // most recently used last
          for (const [op, k] of ops) {
            if (op === 'use') {
              m.use(k, `v${k}`);
              live.add(k);
              order.splice(order.indexOf(k) >>> 0, order.includes(k) ? 1 : 0);
              order.push(k);
            } else {
              assert.equal(m.delete(k), live.has(k));
              live.delete(k);
              if (order.includes(k)) order.splice(order.indexOf(k), 1);
            }
            for (const f of forgotten.splice(0)) {
              live.delete(f);
              order.splice(order.indexOf(f), 1);
            }
            assert.ok(m.size <= max, `${m.size} entries held over the bound ${max}`);
            assert.equal(m.size, live.size);
            // The most recently used half is always there.
            for (const r of order.slice(-Math.floor(max / 2))) assert.equal(m.get(r), `v${r}`);
            assert.deepEqual(new Set(m.keys()), live);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads without counting a use, and a use of an old entry keeps it', () => {
    const forgotten: string[] = [];
    const m = new RecentMap<string, number>(4, (k) => forgotten.push(k));
    m.use('a', 1);
    m.use('b', 2); // young full (2 = max/2): a, b become old
    m.use('c', 3);
    assert.equal(m.get('a'), 1); // a read, not a use
    m.use('b', 2); // b used again: young now c, b → old (a forgotten)
    assert.deepEqual(forgotten, ['a']);
    assert.equal(m.get('a'), undefined);
    assert.equal(m.get('b'), 2);
    assert.equal(m.get('c'), 3);
    m.use('b', 20); // a new value replaces the old one
    assert.equal(m.get('b'), 20);
    m.clear();
    assert.equal(m.size, 0);
    assert.throws(() => new RecentMap(1), /at least 2/);
  });
});
