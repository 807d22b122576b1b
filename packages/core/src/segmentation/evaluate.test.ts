import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileQuery } from './compile.js';
import { eventTimesFrom, eventTimesOf } from './runtime.js';
import { DAY, HOUR, NOW, SCHEMAS, ago, ctx, ev } from './test-fixtures.js';

interface Step {
  name: string;
  profile?: Record<string, unknown>;
  events?: Array<Record<string, unknown>>;
  now?: number;
  segments?: string[];
  expected: boolean;
}

/** Runs a step table: each row is profile + events + now → expected membership. */
function table(query: string, steps: Step[]): void {
  it(query, () => {
    const q = compileQuery(query, SCHEMAS);
    for (const st of steps) {
      const c = ctx(st.profile ?? {}, st.events ?? [], st.now ?? NOW, st.segments ?? []);
      assert.equal(q.evaluate(c), st.expected, `${st.name}: expected ${st.expected}`);
      // Same answer with precomputed event times.
      assert.equal(q.evaluate({ ...c, eventTimes: eventTimesOf(c.events) }), st.expected, `${st.name} (eventTimes)`);
    }
  });
}

const paris = { homeAddress: { city: 'Paris', countryCode: 'FR' }, loyalty: { points: 1200, tier: 'gold' }, person: { name: { lastName: 'Martin' } } };

describe('evaluation: profile attributes', () => {
  table('homeAddress.city = "Paris" and loyalty.points > 1000', [
    { name: 'match', profile: paris, expected: true },
    { name: 'too few points', profile: { ...paris, loyalty: { points: 1000 } }, expected: false },
    { name: 'missing address', profile: { loyalty: { points: 5000 } }, expected: false },
    { name: 'points as string never coerced', profile: { ...paris, loyalty: { points: '5000' } }, expected: false },
  ]);
  table('homeAddress.city != "Paris"', [
    { name: 'other city', profile: { homeAddress: { city: 'Lyon' } }, expected: true },
    { name: 'same city', profile: paris, expected: false },
    { name: 'missing is not "different"', profile: {}, expected: false },
  ]);
  table('not (homeAddress.city = "Paris")', [
    { name: 'missing counts under not', profile: {}, expected: true },
  ]);
  table('loyalty.points >= 10 and loyalty.points <= 20 and loyalty.points < 21 and loyalty.points != 11', [
    { name: 'in range', profile: { loyalty: { points: 10 } }, expected: true },
    { name: 'excluded value', profile: { loyalty: { points: 11 } }, expected: false },
  ]);
  table('homeAddress.countryCode in ["FR", "BE", "CH"] or loyalty.tier notIn ["gold", "silver"]', [
    { name: 'in', profile: { homeAddress: { countryCode: 'BE' }, loyalty: { tier: 'gold' } }, expected: true },
    { name: 'notIn', profile: { homeAddress: { countryCode: 'US' }, loyalty: { tier: 'bronze' } }, expected: true },
    { name: 'neither', profile: { homeAddress: { countryCode: 'US' }, loyalty: { tier: 'gold' } }, expected: false },
    { name: 'notIn needs a value', profile: { homeAddress: { countryCode: 'US' } }, expected: false },
  ]);
  table('homeAddress.postalCode in ["75001","75002","75003","75004","75005","75006","75007","75008"]', [
    { name: 'large list uses a set', profile: { homeAddress: { postalCode: '75008' } }, expected: true },
    { name: 'absent', profile: { homeAddress: { postalCode: '69001' } }, expected: false },
  ]);
  table('personalEmail.address like "%@example.co_"', [
    { name: 'like match', profile: { personalEmail: { address: 'a@example.com' } }, expected: true },
    { name: 'underscore needs one char', profile: { personalEmail: { address: 'a@example.co' } }, expected: false },
  ]);
  table('person.name.lastName like "M%t_n"', [
    { name: 'general pattern', profile: paris, expected: true },
    { name: 'no match', profile: { person: { name: { lastName: 'Martinez' } } }, expected: false },
  ]);
  table('person.name.lastName.startsWith("Mar") and person.name.lastName.endsWith("tin") and person.name.lastName.contains("RT", false)', [
    { name: 'string functions', profile: paris, expected: true },
  ]);
  table('person.name.lastName.contains("RT")', [{ name: 'case-sensitive by default', profile: paris, expected: false }]);
  // Each string test and short list is written out in the hot leaf: values of other types, missing
  // steps and arrays on the way never match, as with the general value tests.
  for (const [query, hit] of [
    ['person.name.lastName like "Mar%"', 'Martin'],
    ['person.name.lastName like "%tin"', 'Martin'],
    ['person.name.lastName like "%art%"', 'Martin'],
    ['person.name.lastName like "Martin"', 'Martin'],
    ['person.name.lastName.startsWith("Mar")', 'Martin'],
    ['person.name.lastName.endsWith("tin")', 'Martin'],
    ['person.name.lastName.contains("rti")', 'Martin'],
    ['person.name.lastName.contains("RTI", false)', 'MaRTin'],
    ['person.name.lastName in ["Martin", "Dubois"]', 'Dubois'],
  ] as const) {
    table(query, [
      { name: 'hit', profile: { person: { name: { lastName: hit } } }, expected: true },
      { name: 'other string', profile: { person: { name: { lastName: 'Okafor' } } }, expected: false },
      { name: 'number', profile: { person: { name: { lastName: 5 } } }, expected: false },
      { name: 'array of the hit', profile: { person: { name: { lastName: [hit] } } }, expected: false },
      { name: 'missing', profile: { person: { name: {} } }, expected: false },
      { name: 'step is a string', profile: { person: { name: hit } }, expected: false },
      { name: 'step is an array', profile: { person: [{ name: { lastName: hit } }] }, expected: false },
    ]);
  }
  table('loyalty.points in [5, 7] and not (loyalty.points in [6])', [
    { name: 'number in list', profile: { loyalty: { points: 7 } }, expected: true },
    { name: 'string is not the number', profile: { loyalty: { points: '7' } }, expected: false },
  ]);
  table('tags = "vip" or subscriptions.plan.startsWith("pro") or subscriptions.price > 10', [
    { name: 'array element equals', profile: { tags: ['a', 'vip'] }, expected: true },
    { name: 'element of an object array', profile: { subscriptions: [{ plan: 'basic' }, { plan: 'pro-year' }] }, expected: true },
    { name: 'number in an object array', profile: { subscriptions: [{ price: 3 }, { price: 12 }] }, expected: true },
    { name: 'no element matches', profile: { tags: ['a'], subscriptions: [{ plan: 'basic', price: 10 }, null, 'pro'] }, expected: false },
    { name: 'not an array', profile: { tags: 'vip', subscriptions: { plan: 'pro' } }, expected: false },
  ]);
  table('personalEmail.address.matches("^[a-z]+@example\\\\.com$")', [
    { name: 'regex match', profile: { personalEmail: { address: 'bob@example.com' } }, expected: true },
    { name: 'regex miss', profile: { personalEmail: { address: 'bob@example.org' } }, expected: false },
  ]);
  table('personalEmail.address exists and not homeAddress.city exists', [
    { name: 'present / absent', profile: { personalEmail: { address: 'x' } }, expected: true },
    { name: 'null is absent', profile: { personalEmail: { address: null } }, expected: false },
  ]);
  table('homeAddress.city = null', [
    { name: 'missing = null', profile: {}, expected: true },
    { name: 'present', profile: paris, expected: false },
  ]);
  table('isVip = true and loyalty.points between 100 and 2000', [
    { name: 'both', profile: { isVip: true, loyalty: { points: 2000 } }, expected: true },
    { name: 'truthy is not true', profile: { isVip: 1, loyalty: { points: 200 } }, expected: false },
  ]);
  table('tags = "vip" and subscriptions.plan = "pro"', [
    { name: 'any element of arrays', profile: { tags: ['new', 'vip'], subscriptions: [{ plan: 'basic' }, { plan: 'pro' }] }, expected: true },
    { name: 'no element', profile: { tags: ['new'], subscriptions: [{ plan: 'pro' }] }, expected: false },
    { name: 'not an array', profile: { tags: 'vip', subscriptions: [{ plan: 'pro' }] }, expected: false },
  ]);
  table('attributes.segment = "b2b"', [{ name: 'map values', profile: { attributes: { segment: 'b2b' } }, expected: true }]);
  table('inSegment("gold") and not inSegment("churned")', [
    { name: 'in gold', segments: ['gold'], expected: true },
    { name: 'in both', segments: ['gold', 'churned'], expected: false },
  ]);
  table('person.birthDate < "1990-01-01" and loyalty.joinDate >= "2024-01-01T00:00:00Z"', [
    { name: 'dates compare as instants', profile: { person: { birthDate: '1985-05-05' }, loyalty: { joinDate: '2024-03-01T10:00:00+02:00' } }, expected: true },
    { name: 'malformed date never matches', profile: { person: { birthDate: 'yesterday' }, loyalty: { joinDate: '2024-03-01T10:00:00Z' } }, expected: false },
  ]);
});

describe('evaluation: relative time', () => {
  table('person.birthDate occurs > 30 years before now', [
    { name: 'turned 30 yesterday', profile: { person: { birthDate: '1994-06-14' } }, expected: true },
    { name: '30th birthday is tomorrow', profile: { person: { birthDate: '1994-06-16' } }, expected: false },
    { name: 'leap-day birthday clamps to Feb 28', profile: { person: { birthDate: '1992-02-29' } }, now: Date.UTC(2022, 1, 28, 0, 0, 1), expected: true },
  ]);
  table('person.birthDate occurs = 30 years before now', [
    { name: 'aged exactly 30', profile: { person: { birthDate: '1994-01-01' } }, expected: true },
    { name: 'aged 31', profile: { person: { birthDate: '1993-01-01' } }, expected: false },
  ]);
  table('loyalty.joinDate occurs between 1 and 3 days before now', [
    { name: '2 days ago', profile: { loyalty: { joinDate: ago(2 * DAY) } }, expected: true },
    { name: '12 hours ago', profile: { loyalty: { joinDate: ago(12 * HOUR) } }, expected: false },
    { name: 'exactly 3 days is inclusive', profile: { loyalty: { joinDate: ago(3 * DAY) } }, expected: true },
  ]);
  table('subscriptions.renewalDate occurs < 7 days after now', [
    { name: 'renews in 3 days', profile: { subscriptions: [{ renewalDate: '2024-06-18' }] }, expected: true },
    { name: 'renewed already', profile: { subscriptions: [{ renewalDate: '2024-06-10' }] }, expected: false },
  ]);
  table('loyalty.joinDate occurs < 1 day before today', [
    { name: 'yesterday afternoon', profile: { loyalty: { joinDate: '2024-06-14T18:00:00Z' } }, expected: true },
    { name: 'two days ago', profile: { loyalty: { joinDate: '2024-06-13T18:00:00Z' } }, expected: false },
  ]);
});

describe('evaluation: events', () => {
  const purchase = (t: string, total: number): Record<string, unknown> => ev('commerce.purchases', t, { commerce: { order: { priceTotal: total } } });
  table('select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 7 days before now', [
    { name: 'purchase 2 days ago', events: [purchase(ago(2 * DAY), 10)], expected: true },
    { name: 'purchase 8 days ago', events: [purchase(ago(8 * DAY), 10)], expected: false },
    { name: 'page view only', events: [ev('web.webpagedetails.pageViews', ago(HOUR))], expected: false },
    { name: 'no events', events: [], expected: false },
    { name: 'future-dated purchase does not count', events: [purchase(new Date(NOW + HOUR).toISOString(), 1)], expected: false },
  ]);
  table('homeAddress.city = "Paris" and (select X from xEvent where X.eventType = "commerce.purchases" and X.commerce.order.priceTotal > loyalty.points)', [
    { name: 'event field against a profile field', profile: { homeAddress: { city: 'Paris' }, loyalty: { points: 100 } }, events: [purchase(ago(DAY), 150)], expected: true },
    { name: 'order too small', profile: { homeAddress: { city: 'Paris' }, loyalty: { points: 200 } }, events: [purchase(ago(DAY), 150)], expected: false },
  ]);
  table('xEvent[eventType = "web.webpagedetails.pageViews" and timestamp occurs < 1 day before now].count() >= 3', [
    { name: '3 recent views', events: [1, 2, 3].map((h) => ev('web.webpagedetails.pageViews', ago(h * HOUR))), expected: true },
    { name: '2 recent + 1 old', events: [1, 2, 30].map((h) => ev('web.webpagedetails.pageViews', ago(h * HOUR))), expected: false },
  ]);
  table('xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal) > 500', [
    { name: 'sum above', events: [purchase(ago(DAY), 300), purchase(ago(2 * DAY), 250)], expected: true },
    { name: 'sum below', events: [purchase(ago(DAY), 300), ev('web.webpagedetails.pageViews', ago(DAY), { commerce: { order: { priceTotal: 900 } } })], expected: false },
  ]);
  table('xEvent[eventType = "commerce.purchases"].avg(commerce.order.priceTotal) >= 100 and xEvent.max(commerce.order.priceTotal) < 1000 and xEvent.min(commerce.order.priceTotal) > 10', [
    { name: 'avg/min/max', events: [purchase(ago(DAY), 150), purchase(ago(2 * DAY), 50)], expected: true },
    { name: 'no values: avg never holds', events: [], expected: false },
  ]);
  table('xEvent[eventType = "commerce.purchases"].count() = 0', [
    { name: 'count of nothing is 0', events: [ev('x', ago(DAY))], expected: true },
  ]);
  table('xEvent[productListItems.SKU = "SKU-1"].sum(productListItems.quantity) >= 3', [
    {
      name: 'sums across array elements',
      events: [ev('commerce.productViews', ago(DAY), { productListItems: [{ SKU: 'SKU-1', quantity: 2 }, { SKU: 'SKU-2', quantity: 1 }] })],
      expected: true,
    },
  ]);
});

describe('event order', () => {
  // The contract says events come sorted; out-of-order input must still give the right answer,
  // with or without precomputed times (which record whether they are sorted).
  // [query, answer on the shuffled array, answer once sorted]: a chain follows array positions.
  const queries: Array<[string, boolean, boolean]> = [
    ['xEvent[eventType = "view" and timestamp occurs < 1 day before now].count() >= 2', true, true],
    ['select X from xEvent where X.eventType = "cart" and X.timestamp occurs < 2 hours before now', true, true],
    ['xEvent[timestamp occurs < 1 day before now].sum(commerce.order.priceTotal) > 15', true, true],
    ['chain(xEvent, timestamp, [A: WHAT(eventType = "view"), B: WHAT(eventType = "cart") WHEN(< 1 hour after A)])', false, true],
    ['chain(xEvent, timestamp, [A: WHAT(eventType = "cart"), B: WHAT(eventType = "view") WHEN(< 1 hour after A)])', false, false],
  ];
  const shuffled = [
    ev('view', ago(3 * HOUR), { commerce: { order: { priceTotal: 10 } } }),
    ev('old', ago(3 * DAY), { commerce: { order: { priceTotal: 100 } } }),
    ev('cart', ago(1 * HOUR), { commerce: { order: { priceTotal: 10 } } }),
    ev('view', ago(90 * 60_000)),
  ];
  for (const [query, unsorted, sortedAnswer] of queries) {
    it(query, () => {
      const q = compileQuery(query, SCHEMAS);
      const c = { profile: {}, events: shuffled, now: NOW, inSegment: () => false };
      assert.equal(q.evaluate(c), unsorted, 'unsorted');
      assert.equal(q.evaluate({ ...c, eventTimes: eventTimesOf(shuffled) }), unsorted, 'unsorted, precomputed times');
      const known = shuffled.map((e) => Date.parse(String(e['timestamp'])));
      assert.equal(q.evaluate({ ...c, eventTimes: eventTimesFrom(known) }), unsorted, 'unsorted, times known as ms');
      const sorted = ctx({}, shuffled);
      assert.equal(q.evaluate(sorted), sortedAnswer, 'sorted');
      assert.equal(q.evaluate({ ...sorted, eventTimes: eventTimesOf(sorted.events) }), sortedAnswer, 'sorted, precomputed times');
      assert.equal(q.evaluate({ ...sorted, eventTimes: Float64Array.from(eventTimesOf(sorted.events)) }), sortedAnswer, 'sorted, plain times');
      const sortedKnown = sorted.events.map((e) => Date.parse(String(e['timestamp'])));
      assert.equal(q.evaluate({ ...sorted, eventTimes: eventTimesFrom(sortedKnown) }), sortedAnswer, 'sorted, times known as ms');
    });
  }
});

describe('evaluation state', () => {
  it('is safe against re-entry and recovers after a throw', () => {
    const q = compileQuery('inSegment("other") and loyalty.points > 10 and xEvent[eventType = "view"].count() >= 1', SCHEMAS);
    const inner = ctx({ loyalty: { points: 5 } }, [ev('view', ago(HOUR))], NOW, ['other']);
    let innerResult: boolean | undefined;
    // The callback evaluates the same audience on another profile while the outer evaluation runs.
    const outer = {
      ...ctx({ loyalty: { points: 20 } }, [ev('view', ago(HOUR))]),
      inSegment: () => {
        innerResult = q.evaluate(inner);
        return true;
      },
    };
    assert.equal(q.evaluate(outer), true);
    assert.equal(innerResult, false);
    const throwing = { ...outer, inSegment: (): boolean => { throw new Error('boom'); } };
    assert.throws(() => q.evaluate(throwing), /boom/);
    assert.equal(q.evaluate(inner), false);
    assert.equal(q.evaluate({ ...inner, profile: { loyalty: { points: 11 } } }), true);
  });
});
