import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileQuery } from './compile.js';
import { changeAfter, nextChange, timeIndependent } from './explain.js';
import { EvalState, eventTimesOf } from './runtime.js';
import { DAY, HOUR, NOW, SCHEMAS, ago, ctx, ev } from './test-fixtures.js';

describe('nextChange', () => {
  it('a purchase window expires 7 days after the last qualifying purchase', () => {
    const q = compileQuery('select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 7 days before now', SCHEMAS);
    const events = [ev('commerce.purchases', ago(5 * DAY)), ev('commerce.purchases', ago(2 * DAY)), ev('web', ago(HOUR))];
    const c = ctx({}, events);
    assert.equal(q.evaluate(c), true);
    const next = nextChange(q, c);
    assert.equal(next, NOW - 5 * DAY + 7 * DAY, 'earliest expiry first (re-evaluation is cheap)');
    // Walk forward as a scheduler would until the result flips.
    let t = NOW;
    let flips = 0;
    while (flips === 0) {
      const n = nextChange(q, { ...c, now: t });
      assert.ok(n !== undefined && n > t);
      t = n;
      if (!q.evaluate({ ...c, now: t })) flips++;
    }
    assert.equal(t, NOW - 2 * DAY + 7 * DAY);
    assert.equal(q.evaluate({ ...c, now: t - 1 }), true);
    assert.equal(nextChange(q, { ...c, now: t }), undefined, 'nothing left to expire');
  });

  it('an age condition starts holding on the birthday', () => {
    const q = compileQuery('person.birthDate occurs >= 30 years before now', SCHEMAS);
    const c = ctx({ person: { birthDate: '1994-06-20' } });
    assert.equal(q.evaluate(c), false);
    const birthday = Date.UTC(2024, 5, 20);
    assert.equal(nextChange(q, c), birthday);
    assert.equal(q.evaluate({ ...c, now: birthday - 1 }), false);
    assert.equal(q.evaluate({ ...c, now: birthday }), true);
    assert.equal(nextChange(q, { ...c, now: birthday }), undefined);
  });

  it('age = N changes twice: on the birthday and a year later', () => {
    const q = compileQuery('person.birthDate occurs = 30 years before now', SCHEMAS);
    const c = ctx({ person: { birthDate: '1994-06-20' } });
    assert.equal(nextChange(q, c), Date.UTC(2024, 5, 20));
    assert.equal(nextChange(q, { ...c, now: Date.UTC(2024, 5, 21) }), Date.UTC(2025, 5, 20));
  });

  it('is undefined when nothing depends on time, or when a static clause decides', () => {
    assert.equal(nextChange(compileQuery('homeAddress.city = "Paris"', SCHEMAS), ctx({})), undefined);
    const q = compileQuery('homeAddress.city = "Paris" and person.birthDate occurs > 30 years before now', SCHEMAS);
    assert.equal(nextChange(q, ctx({ homeAddress: { city: 'Lyon' }, person: { birthDate: '2000-01-01' } })), undefined);
    assert.equal(nextChange(q, ctx({ homeAddress: { city: 'Paris' }, person: { birthDate: '2000-01-01' } })), Date.UTC(2030, 0, 1) + 1);
  });

  it('timeIndependent: only queries with no time in them skip nextChange', () => {
    const still = ['homeAddress.city = "Paris"', 'loyalty.tier in ["gold", "silver"] and not (homeAddress.city exists)', 'homeAddress.city.contains("saint", false) or inSegment("x")'];
    for (const text of still) {
      const q = compileQuery(text, SCHEMAS);
      assert.equal(timeIndependent(q), true, text);
      assert.equal(nextChange(q, ctx({ homeAddress: { city: 'Paris' }, loyalty: { tier: 'gold' } })), undefined, text);
    }
    const timed = [
      'person.birthDate occurs > 30 years before now',
      'homeAddress.city = "Paris" and xEvent[eventType = "a" and timestamp occurs < 1 day before now].count() >= 1',
      'not (select X from xEvent where X.timestamp occurs = 1 day before today)',
    ];
    for (const text of timed) assert.equal(timeIndependent(compileQuery(text, SCHEMAS)), false, text);
    // A timed query whose window holds an event has a next change; skipping it would lose the expiry.
    const q = compileQuery('select X from xEvent where X.eventType = "a" and X.timestamp occurs < 2 days before now', SCHEMAS);
    assert.equal(timeIndependent(q), false);
    assert.equal(nextChange(q, ctx({}, [ev('a', ago(DAY))])), NOW + DAY);
  });

  it('counts: the first expiry of a counted event', () => {
    const q = compileQuery('xEvent[eventType = "view" and timestamp occurs < 1 day before now].count() >= 3', SCHEMAS);
    const c = ctx({}, [ev('view', ago(20 * HOUR)), ev('view', ago(2 * HOUR)), ev('view', ago(HOUR)), ev('other', ago(HOUR))]);
    assert.equal(q.evaluate(c), true);
    assert.equal(nextChange(q, c), NOW + 4 * HOUR);
  });

  it('future-dated events enter windows, today windows flip at midnight', () => {
    const q = compileQuery('select X from xEvent where X.timestamp occurs < 1 hour before now', SCHEMAS);
    const c = ctx({}, [ev('x', new Date(NOW + 2 * HOUR).toISOString())]);
    assert.equal(nextChange(q, c), NOW + 2 * HOUR);
    const d = compileQuery('loyalty.joinDate occurs < 1 day before today', SCHEMAS);
    assert.equal(nextChange(d, ctx({ loyalty: { joinDate: '2024-06-15T08:00:00Z' } })), Date.UTC(2024, 5, 16));
  });

  it('chains: a WHEN window on now expires', () => {
    const q = compileQuery('chain(xEvent, timestamp, [A: WHAT(eventType = "a") WHEN(< 1 day before now), B: WHAT(eventType = "b") WHEN(< 1 hour after A)])', SCHEMAS);
    const c = ctx({}, [ev('a', ago(3 * HOUR)), ev('b', ago(2.5 * HOUR))]);
    assert.equal(q.evaluate(c), true);
    assert.equal(nextChange(q, c), NOW - 3 * HOUR + DAY);
  });

  it('property: the result never changes before nextChange', () => {
    const queries = [
      'select X from xEvent where X.eventType = "a" and X.timestamp occurs < 2 days before now',
      'xEvent[eventType = "a" and timestamp occurs between 1 and 3 days before now].count() >= 2',
      'xEvent[timestamp occurs <= 36 hours before now].sum(commerce.order.priceTotal) > 10 or loyalty.joinDate occurs > 2 days before now',
      'not (select X from xEvent where X.timestamp occurs = 1 day before today)',
      'chain(xEvent, timestamp, [A: WHAT(eventType = "a") WHEN(< 2 days before now), B: WHAT(eventType = "b") WHEN(< 12 hours after A)])',
      'person.birthDate occurs between 1 and 2 months before now or loyalty.joinDate occurs < 3 days after now',
    ].map((q) => compileQuery(q, SCHEMAS));
    const arbEvent = fc.record({
      type: fc.constantFrom('a', 'b'),
      offset: fc.integer({ min: -5 * DAY, max: DAY }),
      total: fc.integer({ min: 0, max: 20 }),
    });
    fc.assert(
      fc.property(
        fc.nat({ max: queries.length - 1 }),
        fc.array(arbEvent, { maxLength: 8 }),
        fc.integer({ min: -100 * DAY, max: 5 * DAY }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 5 }),
        (qi, raw, dateOffset, samples) => {
          const q = queries[qi];
          if (!q) return;
          const events = raw.map((r) => ev(r.type, new Date(NOW + r.offset).toISOString(), { commerce: { order: { priceTotal: r.total } } }));
          const dateText = new Date(NOW + dateOffset).toISOString();
          const c = ctx({ person: { birthDate: dateText.slice(0, 10) }, loyalty: { joinDate: dateText } }, events);
          const before = q.evaluate(c);
          const next = nextChange(q, c);
          const horizon = next ?? NOW + 200 * DAY;
          for (const f of samples) {
            const t = Math.min(horizon - 1, NOW + Math.floor(f * (horizon - NOW)));
            if (t < NOW) continue;
            assert.equal(q.evaluate({ ...c, now: t }), before, `changed at ${new Date(t).toISOString()} before nextChange ${next === undefined ? 'never' : new Date(next).toISOString()}`);
          }
          if (next !== undefined) assert.ok(next > NOW);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('property: audiences sharing one bound state answer as each evaluated alone', () => {
    const queries = [
      'select X from xEvent where X.eventType = "a" and X.timestamp occurs < 2 days before now',
      'xEvent[eventType = "b"].count() >= 2 and loyalty.points > 10',
      'chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(eventType = "b") WHEN(< 12 hours after A)])',
      'loyalty.joinDate occurs < 3 days before now or inSegment("x")',
      'xEvent[timestamp occurs <= 36 hours before now].sum(commerce.order.priceTotal) > 10',
      'person.birthDate occurs > 18 years before now',
    ].map((q) => compileQuery(q, SCHEMAS));
    const state = new EvalState();
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.constantFrom('a', 'b'), offset: fc.integer({ min: -5 * DAY, max: DAY }), total: fc.integer({ min: 0, max: 20 }) }), { maxLength: 8 }),
        fc.boolean(),
        fc.integer({ min: -40 * 365 * DAY, max: DAY }),
        fc.boolean(),
        (raw, sorted, dateOffset, inX) => {
          const events = raw.map((r) => ev(r.type, new Date(NOW + r.offset).toISOString(), { commerce: { order: { priceTotal: r.total } } }));
          const dateText = new Date(NOW + dateOffset).toISOString();
          const c = ctx({ person: { birthDate: dateText.slice(0, 10) }, loyalty: { joinDate: dateText, points: raw.length * 3 } }, events, NOW, inX ? ['x'] : []);
          // Unsorted events too: the state learns that once for every audience.
          if (!sorted) c.events = [...c.events].reverse();
          const s = state.bind(c);
          for (const q of queries) {
            assert.equal(q.holds(s), q.evaluate(c));
            assert.equal(changeAfter(q.nextOf(s), c.now), nextChange(q, c));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('nextChange over a window on the events’ own timestamp (sorted events stop at the oldest match)', () => {
  // Each query with what an event at `t` contributes by hand: entering at t when it is still
  // ahead, leaving at t + span (+1 for <=) while inside, nothing once past.
  const windows: Array<{ query: string; type?: string; span: number; inclusive: boolean }> = [
    { query: 'select X from xEvent where X.eventType = "a" and X.timestamp occurs < 3 hours before now', type: 'a', span: 3 * HOUR, inclusive: false },
    { query: 'select X from xEvent where X.timestamp occurs <= 2 days before now and X.eventType = "b"', type: 'b', span: 2 * DAY, inclusive: true },
    { query: 'select X from xEvent where X.timestamp occurs < 90 minutes before now', span: 90 * 60_000, inclusive: false },
  ];
  const compiled = windows.map((w) => ({ ...w, q: compileQuery(w.query, SCHEMAS) }));
  it('equals the earliest change over every event, future events included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.constantFrom('a', 'b', 'c'), offset: fc.integer({ min: -3 * DAY, max: 6 * HOUR }) }), { maxLength: 12 }),
        (raw) => {
          const c = ctx({}, raw.map((r) => ev(r.type, new Date(NOW + r.offset).toISOString())));
          const times = c.events.map((e) => Date.parse(String(e['timestamp'])));
          for (const w of compiled) {
            let expected: number | undefined;
            c.events.forEach((e, i) => {
              if (w.type !== undefined && e['eventType'] !== w.type) return;
              const t = times[i]!;
              const hi = t + w.span + (w.inclusive ? 1 : 0);
              const n = NOW < t ? t : NOW < hi ? hi : undefined;
              if (n !== undefined && (expected === undefined || n < expected)) expected = n;
            });
            assert.equal(w.q.nextAt({ ...c, eventTimes: eventTimesOf(c.events) }), expected, `${w.query} (sorted times)`);
            // The same events out of order take the walk over every event.
            assert.equal(w.q.nextAt({ ...c, events: [...c.events].reverse() }), expected, `${w.query} (unsorted)`);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a window in months keeps the earliest change, though an older event can leave it later', () => {
    // One month after Jan 30 23:00 is Feb 28 23:00, after Jan 31 10:00 it is Feb 28 10:00 (2023).
    const q = compileQuery('select X from xEvent where X.timestamp occurs < 1 months before now', SCHEMAS);
    const now = Date.UTC(2023, 1, 10);
    const c = ctx({}, [ev('a', '2023-01-30T23:00:00Z'), ev('a', '2023-01-31T10:00:00Z')], now);
    assert.equal(q.nextAt({ ...c, eventTimes: eventTimesOf(c.events) }), Date.UTC(2023, 1, 28, 10));
    assert.equal(q.nextAt({ ...c, events: [...c.events].reverse() }), Date.UTC(2023, 1, 28, 10));
  });
});
