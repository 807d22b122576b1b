import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PairMap, RecentMap } from './recent-map.js';

describe('RecentMap', () => {
  it('keeps the max/2 most recently used entries, never more than max, and tells what it forgets', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 12 }),
        fc.array(fc.tuple(fc.constantFrom('use', 'use', 'use', 'delete'), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }),
        (max, ops) => {
          // Keys spread over three scopes: entry k lives under scope k % 3.
          const scope = (k: number): string => `s${k % 3}`;
          const forgotten: number[] = [];
          const m = new RecentMap<string>(max, (a, b, v) => {
            assert.equal(a, scope(Number(b)));
            assert.equal(v, `v${b}`);
            forgotten.push(Number(b));
          });
          const live = new Set<number>();
          const order: number[] = []; // most recently used last
          for (const [op, k] of ops) {
            if (op === 'use') {
              m.use(scope(k), String(k), `v${k}`);
              live.add(k);
              order.splice(order.indexOf(k) >>> 0, order.includes(k) ? 1 : 0);
              order.push(k);
            } else {
              assert.equal(m.delete(scope(k), String(k)), live.has(k));
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
            for (const r of order.slice(-Math.floor(max / 2))) assert.equal(m.get(scope(r), String(r)), `v${r}`);
            for (const a of ['s0', 's1', 's2']) assert.deepEqual(new Set(m.keysOf(a)), new Set([...live].filter((k) => scope(k) === a).map(String)));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads without counting a use, and a use of an old entry keeps it', () => {
    const forgotten: string[] = [];
    const m = new RecentMap<number>(4, (_a, b) => forgotten.push(b));
    m.use('x', 'a', 1);
    m.use('x', 'b', 2); // young full (2 = max/2): a, b become old
    m.use('x', 'c', 3);
    assert.equal(m.get('x', 'a'), 1); // a read, not a use
    m.use('x', 'b', 2); // b used again: young now c, b → old (a forgotten)
    assert.deepEqual(forgotten, ['a']);
    assert.equal(m.get('x', 'a'), undefined);
    assert.equal(m.get('x', 'b'), 2);
    assert.equal(m.get('x', 'c'), 3);
    assert.equal(m.get('y', 'c'), undefined, 'another scope');
    m.use('x', 'b', 20); // a new value replaces the old one
    assert.equal(m.get('x', 'b'), 20);
    m.clear();
    assert.equal(m.size, 0);
    assert.throws(() => new RecentMap(1), /at least 2/);
  });

  it('PairMap counts its entries across scopes and drops an emptied scope', () => {
    const m = new PairMap<number>();
    m.set('a', '1', 1);
    m.set('a', '1', 11);
    m.set('b', '1', 2);
    assert.equal(m.size, 2);
    assert.equal(m.get('a', '1'), 11);
    assert.equal(m.delete('a', '2'), false);
    assert.equal(m.delete('a', '1'), true);
    assert.equal(m.size, 1);
    assert.deepEqual(m.keysOf('a'), []);
    assert.deepEqual([...m.entries()], [['b', '1', 2]]);
  });
});
