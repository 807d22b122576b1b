import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileQuery } from './compile.js';
import { explain } from './explain.js';
import { DAY, HOUR, MINUTE, NOW, SCHEMAS, ago, ctx, ev } from './test-fixtures.js';
import { shift as shiftBy } from './time.js';

const VIEW_THEN_CART = 'chain(xEvent, timestamp, [A: WHAT(eventType = "view"), B: WHAT(eventType = "cart") WHEN(< 1 hour after A)])';

describe('chain sequences', () => {
  const cases: Array<{ name: string; events: Array<Record<string, unknown>>; expected: boolean }> = [
    { name: 'view then cart 30 min later', events: [ev('view', ago(3 * HOUR)), ev('cart', ago(2.5 * HOUR))], expected: true },
    { name: 'cart before view', events: [ev('cart', ago(3 * HOUR)), ev('view', ago(2.5 * HOUR))], expected: false },
    { name: 'gap too long', events: [ev('view', ago(5 * HOUR)), ev('cart', ago(3 * HOUR))], expected: false },
    {
      name: 'a later view fits although the first does not (needs backtracking)',
      events: [ev('view', ago(5 * HOUR)), ev('view', ago(2 * HOUR)), ev('cart', ago(1.5 * HOUR))],
      expected: true,
    },
    { name: 'exactly one hour is not < 1 hour', events: [ev('view', ago(2 * HOUR)), ev('cart', ago(HOUR))], expected: false },
    { name: 'no events', events: [], expected: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(compileQuery(VIEW_THEN_CART, SCHEMAS).evaluate(ctx({}, c.events)), c.expected);
    });
  }

  it('three steps with a window on now and gaps between steps', () => {
    const q = compileQuery(
      'chain(xEvent, timestamp, [A: WHAT(eventType = "view") WHEN(< 1 day before now), B: WHAT(eventType = "cart") WHEN(< 30 minutes after A), C: WHAT(eventType = "commerce.purchases") WHEN(between 1 and 2 hours after B)])',
      SCHEMAS,
    );
    const base = [ev('view', ago(10 * HOUR)), ev('cart', ago(10 * HOUR - 20 * MINUTE))];
    assert.equal(q.evaluate(ctx({}, [...base, ev('commerce.purchases', ago(8.5 * HOUR))])), true);
    assert.equal(q.evaluate(ctx({}, [...base, ev('commerce.purchases', ago(9.9 * HOUR))])), false, 'too soon after B');
    const old = [ev('view', ago(30 * HOUR)), ev('cart', ago(30 * HOUR - 60_000)), ev('commerce.purchases', ago(29 * HOUR))];
    assert.equal(q.evaluate(ctx({}, old)), false, 'A outside the 1-day window');
  });

  it('non-adjacent WHEN references and pure ordering', () => {
    const q = compileQuery(
      'chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(eventType = "b"), C: WHAT(eventType = "c") WHEN(< 2 hours after A)])',
      SCHEMAS,
    );
    assert.equal(q.evaluate(ctx({}, [ev('a', ago(5 * HOUR)), ev('a', ago(3 * HOUR)), ev('b', ago(2.5 * HOUR)), ev('c', ago(1.5 * HOUR))])), true);
    assert.equal(q.evaluate(ctx({}, [ev('a', ago(5 * HOUR)), ev('b', ago(4.5 * HOUR)), ev('c', ago(1.5 * HOUR))])), false);
  });

  it('stays fast on long histories', () => {
    const q = compileQuery(VIEW_THEN_CART, SCHEMAS);
    const events = Array.from({ length: 3000 }, (_, k) => ev(k % 2 ? 'view' : 'other', ago((3000 - k) * 2 * HOUR)));
    const start = performance.now();
    assert.equal(q.evaluate(ctx({}, events)), false);
    assert.ok(performance.now() - start < 1000);
  });

  it('explain names the events that formed the sequence', () => {
    const q = compileQuery(VIEW_THEN_CART, SCHEMAS);
    const events = [ev('view', ago(3 * HOUR)), ev('cart', ago(2.5 * HOUR))];
    const node = explain(q, ctx({}, events));
    assert.equal(node.result, true);
    assert.deepEqual(node.values['matchedEvents'], [
      { step: 'A', eventId: events[0]?.['_id'] },
      { step: 'B', eventId: events[1]?.['_id'] },
    ]);
    assert.deepEqual(node.values['eventsMatchingEachStep'], [{ step: 'A', count: 1 }, { step: 'B', count: 1 }]);
  });

  it('agrees with an exhaustive search over random histories (the single forward pass and the backtracking search)', () => {
    // Each step: an event type, and optionally a gap after an earlier step or a window on now.
    type StepSpec = { type: string; gap?: { after: number; op: '<' | '<=' | '>' | 'between'; amount: number; high?: number; unit: 'hours' | 'months' }; recent?: boolean };
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const holdsGap = (g: NonNullable<StepSpec['gap']>, ta: number, tb: number): boolean => {
      if (!(tb >= ta)) return false;
      const shift = (n: number): number => shiftBy(ta, n, g.unit);
      if (g.op === '<') return tb < shift(g.amount);
      if (g.op === '<=') return tb <= shift(g.amount);
      if (g.op === '>') return tb > shift(g.amount);
      return tb >= shift(g.amount) && tb <= shift(g.high ?? g.amount);
    };
    const reference = (steps: StepSpec[], events: Array<{ type: string; t: number }>): boolean => {
      const chosen: number[] = [];
      const go = (step: number, from: number): boolean => {
        const st = steps[step];
        if (!st) return true;
        for (let i = from; i < events.length; i++) {
          const e = events[i]!;
          if (e.type !== st.type) continue;
          if (st.recent && !(e.t <= NOW && NOW < e.t + DAY)) continue;
          if (st.gap && !holdsGap(st.gap, events[chosen[st.gap.after]!]!.t, e.t)) continue;
          chosen[step] = i;
          if (go(step + 1, i + 1)) return true;
        }
        return false;
      };
      return go(0, 0);
    };
    const labels = ['A', 'B', 'C'];
    for (let round = 0; round < 400; round++) {
      const k = 2 + Math.floor(rand() * 2);
      const steps: StepSpec[] = [];
      for (let j = 0; j < k; j++) {
        const st: StepSpec = { type: pickOf(['a', 'b', 'c']) };
        const r = rand();
        if (j > 0 && r < 0.7) {
          const op = r < 0.4 ? pickOf(['<', '<='] as const) : pickOf(['<', '<=', '>', 'between'] as const);
          const amount = 1 + Math.floor(rand() * 3);
          st.gap = { after: r < 0.55 ? j - 1 : Math.floor(rand() * j), op, amount, unit: rand() < 0.85 ? 'hours' : 'months', ...(op === 'between' ? { high: amount + 2 } : {}) };
        } else if (r > 0.85) st.recent = true;
        steps.push(st);
      }
      const text = `chain(xEvent, timestamp, [${steps
        .map((st, j) => {
          const g = st.gap;
          const when = g
            ? ` WHEN(${g.op === 'between' ? `between ${g.amount} and ${g.high}` : `${g.op} ${g.amount}`} ${g.unit} after ${labels[g.after]})`
            : st.recent
              ? ' WHEN(< 1 day before now)'
              : '';
          return `${labels[j]}: WHAT(eventType = "${st.type}")${when}`;
        })
        .join(', ')}])`;
      const q = compileQuery(text, SCHEMAS);
      const count = Math.floor(rand() * 9);
      const events = Array.from({ length: count }, () => ({ type: pickOf(['a', 'b', 'c']), t: NOW - Math.floor(rand() * 12) * (rand() < 0.2 ? 20 * DAY : HOUR / 2) }));
      events.sort((x, y) => x.t - y.t);
      const expected = reference(steps, events);
      const built = events.map((x) => ev(x.type, new Date(x.t).toISOString()));
      assert.equal(q.evaluate(ctx({}, built)), expected, `${text} on ${JSON.stringify(events)}`);
      assert.equal(explain(q, ctx({}, built)).result, expected, `explain: ${text}`);
    }
  });
});
