import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileQuery } from './compile.js';
import { explain } from './explain.js';
import { HOUR, MINUTE, SCHEMAS, ago, ctx, ev } from './test-fixtures.js';

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
});
