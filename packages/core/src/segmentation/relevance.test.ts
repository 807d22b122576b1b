import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileQuery, type CompiledAudience } from './compile.js';
import { RelevanceIndex } from './relevance.js';
import { EvalState } from './runtime.js';
import { DAY, HOUR, NOW, SCHEMAS, ago, ctx, ev } from './test-fixtures.js';

/** Whether the compiled query says one of `events` can change it. */
function touchedBy(q: CompiledAudience, events: Array<Record<string, unknown>>): boolean {
  const r = q.relevance;
  return typeof r === 'boolean' ? r : r(new EvalState().bind(ctx({}, events)));
}

const purchase = (extra: Record<string, unknown> = {}) => ev('commerce.purchases', ago(HOUR), extra);
const view = (name: string) => ev('web.webpagedetails.pageViews', ago(HOUR), { web: { webPageDetails: { name } } });

describe('event relevance', () => {
  it('no event touches an attribute-only audience', () => {
    assert.equal(compileQuery('loyalty.points > 100 and homeAddress.city = "Paris"', SCHEMAS).relevance, false);
  });

  it('every event touches a clause without a condition, or with only timed or profile-dependent ones', () => {
    for (const q of [
      'xEvent.count() > 3',
      'select X from xEvent where X.timestamp occurs < 7 days before now',
      'select X from xEvent where X.web.webPageDetails.name = homeAddress.city',
      'select X from xEvent where X.eventType = "a" or X.eventType = "b"',
    ]) assert.equal(compileQuery(q, SCHEMAS).relevance, true, q);
  });

  it('an event failing a condition on itself does not touch the clause', () => {
    const q = compileQuery('loyalty.points > 10 and select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 2 days before now', SCHEMAS);
    assert.equal(touchedBy(q, [view('home')]), false);
    assert.equal(touchedBy(q, [purchase()]), true);
    assert.equal(touchedBy(q, [view('home'), purchase()]), true, 'one of the events is enough');
    assert.equal(touchedBy(q, [ev('commerce.purchases', ago(30 * DAY))]), true, 'time relations are not decided here: they move with now');
  });

  it('in-lists, string functions and nested and-conditions count; a not around the clause does not change relevance', () => {
    const q = compileQuery(
      'not (select X from xEvent where (X.eventType in ["commerce.purchases", "commerce.checkouts"] and X.commerce.order.currencyCode = "EUR") and X.web.webPageDetails.name.startsWith("cart"))',
      SCHEMAS,
    );
    assert.equal(touchedBy(q, [purchase({ commerce: { order: { currencyCode: 'USD' } }, web: { webPageDetails: { name: 'cart' } } })]), false);
    assert.equal(touchedBy(q, [purchase({ commerce: { order: { currencyCode: 'EUR' } }, web: { webPageDetails: { name: 'cart-2' } } })]), true);
    assert.equal(touchedBy(q, [ev('commerce.checkouts', ago(HOUR), { commerce: { order: { currencyCode: 'EUR' } }, web: { webPageDetails: { name: 'home' } } })]), false);
  });

  it('aggregates by their filter, chains by any step', () => {
    const sum = compileQuery('xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal) > 100', SCHEMAS);
    assert.equal(touchedBy(sum, [view('home')]), false);
    assert.equal(touchedBy(sum, [purchase()]), true);
    const chain = compileQuery(
      'chain(xEvent, timestamp, [A: WHAT(eventType = "web.webpagedetails.pageViews"), B: WHAT(eventType = "commerce.purchases") WHEN(< 1 hour after A)])',
      SCHEMAS,
    );
    assert.equal(touchedBy(chain, [view('home')]), true);
    assert.equal(touchedBy(chain, [purchase()]), true);
    assert.equal(touchedBy(chain, [ev('commerce.productViews', ago(HOUR))]), false);
  });

  // The engine asks many audiences at once: shared terms run once, and the answer is each audience's own.
  it('an index over many audiences answers what each audience answers alone (property)', () => {
    const queries = [
      'select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 3 days before now',
      'select X from xEvent where X.eventType = "commerce.purchases" and X.commerce.order.priceTotal > 40',
      'xEvent[eventType = "commerce.purchases"].count() >= 2 and loyalty.points > 5',
      'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.web.webPageDetails.name = "cart"',
      'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.web.webPageDetails.name = "home"',
      'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.productViews"), B: WHAT(eventType = "commerce.purchases") WHEN(< 1 day after A)])',
      'loyalty.points > 5',
      'select X from xEvent where X.timestamp occurs < 1 day before now',
    ].map((q) => compileQuery(q, SCHEMAS));
    const index = new RelevanceIndex(queries.map((q) => q.relevanceTerms));
    const event = fc
      .record({
        type: fc.constantFrom('commerce.purchases', 'web.webpagedetails.pageViews', 'commerce.productViews'),
        name: fc.constantFrom('home', 'cart'),
        total: fc.integer({ min: 0, max: 80 }),
      })
      .map(({ type, name, total }) => ev(type, ago(HOUR), { web: { webPageDetails: { name } }, commerce: { order: { priceTotal: total } } }));
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 3 }), (events) => {
        const touched = index.touched(new EvalState().bind(ctx({}, events)));
        assert.deepEqual([...touched].map((t) => t === 1), queries.map((q) => touchedBy(q, events)));
      }),
      { numRuns: 300 },
    );
    // Equal conditions of different audiences are one term.
    const keys = (q: (typeof queries)[number]) => (typeof q.relevanceTerms === 'boolean' ? [] : q.relevanceTerms.flat(2).map((t) => t.key));
    assert.equal(keys(queries[0]!)[0], keys(queries[1]!)[0]);
    assert.notEqual(keys(queries[3]!)[1], keys(queries[4]!)[1]);
  });

  // The property the engine relies on: an event the audience is not touched by never changes its result.
  it('an event that does not touch an audience never changes its result (property)', () => {
    const types = ['commerce.purchases', 'web.webpagedetails.pageViews', 'commerce.productViews'];
    const names = ['home', 'cart', 'checkout'];
    const queries = [
      'select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 3 days before now',
      'not (select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.web.webPageDetails.name = "cart")',
      'xEvent[eventType = "commerce.purchases"].count() >= 2 and loyalty.points > 5',
      'xEvent[eventType in ["commerce.purchases", "commerce.productViews"] and timestamp occurs < 2 days before now].sum(commerce.order.priceTotal) > 50',
      'select X from xEvent where X.web.webPageDetails.name.startsWith("ch") and X.eventType = "web.webpagedetails.pageViews"',
      'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.productViews"), B: WHAT(eventType = "commerce.purchases") WHEN(< 1 day after A)])',
      'loyalty.points > 5 or select X from xEvent where X.eventType = "commerce.productViews"',
    ].map((q) => compileQuery(q, SCHEMAS));
    const event = fc
      .record({ type: fc.constantFrom(...types), hoursAgo: fc.integer({ min: 0, max: 24 * 5 }), name: fc.constantFrom(...names), total: fc.integer({ min: 0, max: 80 }) })
      .map(({ type, hoursAgo, name, total }) => ev(type, ago(hoursAgo * HOUR), { web: { webPageDetails: { name } }, commerce: { order: { priceTotal: total } } }));
    const byTime = (a: Record<string, unknown>, b: Record<string, unknown>) => Date.parse(a['timestamp'] as string) - Date.parse(b['timestamp'] as string);
    fc.assert(
      fc.property(fc.array(event, { maxLength: 6 }), event, fc.integer({ min: 0, max: 10 }), (events, added, points) => {
        const profile = { loyalty: { points } };
        for (const q of queries) {
          if (touchedBy(q, [added])) continue;
          const before = q.evaluate(ctx(profile, [...events].sort(byTime), NOW));
          const after = q.evaluate(ctx(profile, [...events, added].sort(byTime), NOW));
          assert.equal(after, before, `${q.ast.source} changed with an event it is not touched by`);
        }
      }),
      { numRuns: 400 },
    );
  });
});
