import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileQuery, type CompiledAudience } from './compile.js';
import { nextChange } from './explain.js';
import { approxJsonBytes, eventProjection, projectEvent } from './projection.js';
import { EvalState, eventTimesOf, type AudienceContext } from './runtime.js';
import { DAY, HOUR, NOW, SCHEMAS } from './test-fixtures.js';

/** Event clauses over every kind of leaf, plain and array paths, and profile comparisons. */
const ATOMS = [
  'select X from xEvent where X.eventType = "a"',
  'select X from xEvent where X.web.webPageDetails.name in ["home", "sale"] and X.timestamp occurs < 2 hours before now',
  'select X from xEvent where X.web.webPageDetails.URL like "%/p/%"',
  'select X from xEvent where X.web.webPageDetails.pageViews.value between 1 and 3',
  'select X from xEvent where X.web.webPageDetails.name.startsWith("ho")',
  'select X from xEvent where X.commerce.order.currencyCode exists',
  'select X from xEvent where X.productListItems.SKU = "s1"',
  'select X from xEvent where X.commerce.order.priceTotal > loyalty.points',
  'select X from xEvent',
  'xEvent[eventType = "b"].count() >= 2',
  'xEvent[timestamp occurs < 1 day before now].sum(commerce.order.priceTotal) > 10',
  'xEvent.sum(productListItems.quantity) > 1',
  'xEvent[productListItems.name.contains("x", false)].max(productListItems.priceTotal) >= 5',
  'chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(commerce.purchases.value > 0) WHEN(< 1 day after A)])',
  'loyalty.points > 2',
];

const leaf = fc.oneof(fc.constantFrom('a', 'b', 'home', 'sale', 'https://x/p/1', 's1', 'xx', 'ho'), fc.integer({ min: -2, max: 20 }), fc.jsonValue({ maxDepth: 1 }));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });
const clean = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const item = fc.oneof(fc.record({ SKU: leaf, name: leaf, quantity: leaf, priceTotal: leaf }, { requiredKeys: [] }), leaf);
const event = fc
  .record({
    _id: fc.uuid(),
    eventType: maybe(fc.oneof(fc.constantFrom('a', 'b', 'c'), leaf)),
    timestamp: maybe(fc.oneof(fc.integer({ min: 0, max: 3 * DAY }).map((ms) => new Date(NOW - ms).toISOString()), leaf)),
    web: maybe(
      fc.oneof(
        fc.record({ webPageDetails: fc.oneof(fc.record({ name: leaf, URL: leaf, pageViews: fc.oneof(fc.record({ value: leaf }), leaf) }, { requiredKeys: [] }), leaf), webReferrer: leaf }, { requiredKeys: [] }),
        leaf,
      ),
    ),
    commerce: maybe(fc.record({ order: fc.oneof(fc.record({ priceTotal: leaf, currencyCode: leaf }, { requiredKeys: [] }), leaf), purchases: fc.record({ value: leaf }) }, { requiredKeys: [] })),
    productListItems: maybe(fc.oneof(fc.array(item, { maxLength: 3 }), leaf)),
    extra: maybe(fc.jsonValue({ maxDepth: 2 })),
  })
  .map(clean);
const events = fc.array(fc.oneof({ arbitrary: event, weight: 9 }, { arbitrary: fc.dictionary(fc.constantFrom('eventType', 'timestamp', 'web', 'commerce', 'productListItems'), fc.jsonValue({ maxDepth: 2 })), weight: 1 }), { maxLength: 6 });

function outcome(q: CompiledAudience, ctx: AudienceContext, timesGiven: boolean): [boolean, number | undefined, boolean | undefined] {
  // Also bound without the parsed times (unless the projection was told they are always given):
  // the state then reads each event's `timestamp`.
  const { eventTimes: _times, ...untimed } = ctx;
  return [q.evaluate(ctx), nextChange(q, ctx), timesGiven ? undefined : q.holds(new EvalState().bind(untimed))];
}

describe('event projection', () => {
  it('evaluating projected events gives what evaluating the events gives', () => {
    const query = fc
      .array(fc.tuple(fc.constantFrom(' and ', ' or ', ' and not '), fc.constantFrom(...ATOMS)), { minLength: 1, maxLength: 4 })
      .map((parts) => parts.map(([op, a], k) => (k === 0 ? `(${a})` : `${op}(${a})`)).join(''));
    fc.assert(
      fc.property(fc.array(query, { minLength: 1, maxLength: 3 }), events, fc.integer({ min: 0, max: 20 }), fc.boolean(), (queries, evs, points, timesGiven) => {
        const compiled = queries.map((q) => compileQuery(q, SCHEMAS));
        const projection = eventProjection(compiled, { timesGiven });
        const sorted = (evs as Array<Record<string, unknown>>).slice();
        const times = eventTimesOf(sorted);
        const base = { profile: { loyalty: { points } }, now: NOW, inSegment: () => false };
        const full: AudienceContext = { ...base, events: sorted, eventTimes: times };
        const projected: AudienceContext = { ...base, events: sorted.map((e) => projectEvent(e, projection)), eventTimes: times };
        for (const q of compiled) assert.deepEqual(outcome(q, projected, timesGiven), outcome(q, full, timesGiven));
      }),
      { numRuns: 1500 },
    );
  });

  it('keeps only the paths the queries read, and the timestamp', () => {
    const p = eventProjection([
      compileQuery('select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.web.webPageDetails.siteSection = "home"', {
        ...SCHEMAS,
        event: { type: 'object', properties: { ...SCHEMAS.event.properties, web: { type: 'object', properties: { webPageDetails: { type: 'object', properties: { siteSection: { type: 'string' }, name: { type: 'string' } } } } } } },
      }),
      compileQuery('xEvent.sum(productListItems.quantity) > 1', SCHEMAS),
    ]);
    const body = {
      _id: 'e1',
      timestamp: '2024-06-15T11:00:00Z',
      eventType: 'web.webpagedetails.pageViews',
      identityMap: { ECID: [{ id: '1', primary: true }] },
      web: { webPageDetails: { siteSection: 'home', name: 'Home', URL: 'https://x/' }, webReferrer: { URL: 'https://y/' } },
      productListItems: [{ SKU: 's', quantity: 2, name: 'n' }],
    };
    const projected = projectEvent(body, p);
    assert.deepEqual(projected, {
      timestamp: body.timestamp,
      eventType: body.eventType,
      web: { webPageDetails: { siteSection: 'home' } },
      // An array on the way is kept whole.
      productListItems: body.productListItems,
    });
    const { productListItems: _kept, ...page } = body;
    const { productListItems: _same, ...projectedPage } = projected;
    assert.ok(approxJsonBytes(projectedPage) < approxJsonBytes(page) / 2, 'the projected page view takes well under half the memory');
    // Strings past Latin-1 take two bytes a character in V8's heap.
    assert.equal(approxJsonBytes('café crème'), 16 + 16);
    assert.equal(approxJsonBytes('東京のページ名です'), 16 + 24);
    assert.equal(approxJsonBytes('sale 🎉'), 16 + 16);
    // The same parts, whatever the order they were named in, have the same key.
    assert.equal(eventProjection([compileQuery('select X from xEvent where X.eventType = "a" and X.commerce.order.priceTotal > 1', SCHEMAS)]).key,
      eventProjection([compileQuery('xEvent[commerce.order.priceTotal > 1].count() > 0 and select X from xEvent where X.eventType = "b"', SCHEMAS)]).key);
  });

  it('with the times given, keeps no timestamp: time relations read the parsed times', () => {
    const page = { timestamp: '2024-06-15T11:00:00Z', eventType: 'a', web: { webPageDetails: { name: 'home' } } };
    const queries = [
      'select X from xEvent where X.eventType = "a" and X.timestamp occurs < 2 hours before now',
      'chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(eventType = "b") WHEN(< 1 day after A)])',
      'xEvent[timestamp occurs < 1 day before now].count() > 0',
    ].map((q) => compileQuery(q, SCHEMAS));
    const given = eventProjection(queries, { timesGiven: true });
    assert.deepEqual(projectEvent(page, given), { eventType: 'a' });
    assert.deepEqual(projectEvent(page, eventProjection(queries)), { timestamp: page.timestamp, eventType: 'a' });
    assert.notEqual(given.key, eventProjection(queries).key);
    // Evaluated with their parsed times, the projected events qualify as the events do.
    const at = (events: Array<Record<string, unknown>>): AudienceContext => ({ profile: {}, events, eventTimes: eventTimesOf([page]), now: Date.parse(page.timestamp) + HOUR, inSegment: () => false });
    assert.equal(queries[0]!.evaluate(at([projectEvent(page, given)])), true);
    assert.equal(queries[0]!.evaluate(at([page])), true);
  });

  it('projected events of equal content are one object, and only those', () => {
    const p = eventProjection([compileQuery('select X from xEvent where X.eventType = "a" and X.commerce.order.priceTotal > 0', SCHEMAS)], { timesGiven: true });
    const at = (body: string) => projectEvent(JSON.parse(body) as Record<string, unknown>, p);
    const first = at('{"_id": "1", "eventType": "a", "commerce": {"order": {"priceTotal": 5, "currencyCode": "EUR"}}}');
    assert.equal(p.hits, 0, 'a new body is no hit');
    assert.equal(at('{"_id": "2", "commerce": {"order": {"priceTotal": 5}}, "eventType": "a"}'), first);
    assert.equal(p.hits, 1, 'a shared one is');
    assert.deepEqual(first, { eventType: 'a', commerce: { order: { priceTotal: 5 } } });
    // Another value, -0 beside 0, another key order in a value kept whole, a long value: not shared.
    assert.notEqual(at('{"eventType": "a", "commerce": {"order": {"priceTotal": 6}}}'), first);
    assert.notEqual(at('{"eventType": "a", "commerce": {"order": {"priceTotal": -0}}}'), at('{"eventType": "a", "commerce": {"order": {"priceTotal": 0}}}'));
    const whole = eventProjection([compileQuery('select X from xEvent where X.commerce.order exists', SCHEMAS)], { timesGiven: true });
    const order = (body: string) => projectEvent(JSON.parse(body) as Record<string, unknown>, whole);
    assert.equal(order('{"commerce": {"order": {"priceTotal": 1, "currencyCode": "EUR"}}}'), order('{"commerce": {"order": {"priceTotal": 1, "currencyCode": "EUR"}}}'));
    assert.notEqual(order('{"commerce": {"order": {"priceTotal": 1, "currencyCode": "EUR"}}}'), order('{"commerce": {"order": {"currencyCode": "EUR", "priceTotal": 1}}}'));
    const long = JSON.stringify({ eventType: 'x'.repeat(300) });
    const hits = p.hits;
    assert.notEqual(at(long), at(long));
    assert.equal(p.hits, hits, 'bodies not shared are no hits');
    assert.deepEqual(at(long), JSON.parse(long));
    // Past the kept number of distinct ones, the projection starts over: still equal content.
    for (let i = 0; i < 3000; i++) assert.deepEqual(at(`{"eventType": "e${i}"}`), { eventType: `e${i}` });
    assert.ok(p.shared.size <= 1024, `${p.shared.size} kept`);
    assert.equal(at('{"eventType": "e2999"}'), at('{"eventType": "e2999", "web": {}}'));
  });

  it('an own __proto__ key stays an own property', () => {
    const schemas = { ...SCHEMAS, event: { type: 'object' as const, properties: { ...SCHEMAS.event.properties, attributes: { type: 'map' as const, values: { type: 'string' as const } } } } };
    const q = compileQuery('select X from xEvent where X.attributes.`__proto__` = "own"', schemas);
    const body = JSON.parse('{"attributes": {"__proto__": "own", "other": "x"}, "timestamp": "2024-06-15T11:00:00Z"}') as Record<string, unknown>;
    const projected = projectEvent(body, eventProjection([q]));
    assert.equal(Object.getPrototypeOf(projected['attributes']), Object.prototype);
    assert.deepEqual(Object.keys(projected['attributes'] as object), ['__proto__']);
    const at = (e: Record<string, unknown>): AudienceContext => ({ profile: {}, events: [e], now: NOW + HOUR, inSegment: () => false });
    assert.equal(q.evaluate(at(body)), true);
    assert.equal(q.evaluate(at(projected)), true);
  });
});
