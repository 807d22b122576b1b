import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyAudience, eventLookbackMs, type EvaluationMethod } from './classify.js';
import { dependencies, findCycle } from './dependencies.js';
import { parseAudience } from './parser.js';

function method(q: string, methods: Record<string, EvaluationMethod> = {}): { method: EvaluationMethod; reason: string } {
  return classifyAudience(parseAudience(q), { methodOf: (id) => methods[id] });
}

describe('classifier', () => {
  const table: Array<[string, EvaluationMethod, RegExp]> = [
    ['homeAddress.city = "Paris" and person.birthDate occurs > 30 years before now', 'edge', /profile attributes only/],
    ['select X from xEvent where X.eventType = "commerce.purchases"', 'edge', /single event with no time window/],
    ['loyalty.points > 10 and select X from xEvent where X.eventType = "a" and X.timestamp occurs < 2 hours before now', 'edge', /single event within 2 hour/],
    ['xEvent[eventType = "a" and timestamp occurs < 1 day before now].count() > 0', 'edge', /single event/],
    [
      '(select X from xEvent where X.eventType = "a" and X.timestamp occurs < 1 day before now) and (select Y from xEvent where Y.eventType = "b" and Y.timestamp occurs < 12 hours before now)',
      'streaming',
      /within 1 day\(s\) \(Adobe's streaming rules\)/,
    ],
    ['chain(xEvent, timestamp, [A: WHAT(eventType = "a") WHEN(< 20 hours before now), B: WHAT(eventType = "b") WHEN(< 1 hour after A)])', 'streaming', /Adobe/],
    ['select X from xEvent where X.eventType = "a" and X.timestamp occurs < 7 days before now', 'streaming', /event-retention horizon/],
    ['xEvent[eventType = "a" and timestamp occurs < 14 days before now].count() >= 3', 'streaming', /event-retention horizon/],
    ['xEvent[eventType = "a"].count() >= 3', 'batch', /has no upper time window/],
    ['xEvent[timestamp occurs < 90 days before now].sum(commerce.order.priceTotal) > 3', 'batch', /looks back 90 day/],
    ['not (select X from xEvent where X.eventType = "a")', 'batch', /no upper time window/],
    ['chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(eventType = "b") WHEN(< 1 hour after A)])', 'batch', /chain|no upper/],
  ];
  for (const [q, expected, reason] of table) {
    it(`${expected}: ${q}`, () => {
      const c = method(q);
      assert.equal(c.method, expected, c.reason);
      assert.match(c.reason, reason);
    });
  }

  it('inherits the weakest method of referenced audiences', () => {
    assert.equal(method('inSegment("e") and loyalty.points > 1', { e: 'edge' }).method, 'edge');
    assert.equal(method('inSegment("s") and loyalty.points > 1', { s: 'streaming' }).method, 'streaming');
    assert.match(method('inSegment("b")', { b: 'batch' }).reason, /batch or unknown/);
    assert.equal(method('inSegment("unknown")').method, 'batch');
  });

  it('honours a custom retention horizon', () => {
    const q = parseAudience('xEvent[timestamp occurs < 60 days before now].count() > 2');
    assert.equal(classifyAudience(q).method, 'batch');
    assert.equal(classifyAudience(q, { eventRetentionMs: 90 * 86_400_000 }).method, 'streaming');
  });
});

describe('how far back a query reaches in events', () => {
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;
  const table: Array<[string, number]> = [
    ['loyalty.tier = "gold" and person.birthDate occurs > 18 years before now', 0],
    ['select X from xEvent where X.eventType = "a" and X.timestamp occurs < 7 days before now', 7 * DAY],
    ['loyalty.points > 10 or xEvent[eventType = "a" and timestamp occurs < 2 hours before now].count() >= 3', 2 * HOUR],
    // The longest clause counts; one without a window reaches back without end.
    ['(select X from xEvent where X.timestamp occurs < 1 day before now) and xEvent[timestamp occurs < 3 days before now].count() > 1', 3 * DAY],
    ['(select X from xEvent where X.timestamp occurs < 1 day before now) or xEvent[eventType = "b"].count() > 1', Infinity],
    ['not (select X from xEvent where X.eventType = "a")', Infinity],
    // A chain: as far back as its first step can lie.
    ['chain(xEvent, timestamp, [A: WHAT(eventType = "a") WHEN(< 20 hours before now), B: WHAT(eventType = "b") WHEN(< 1 hour after A)])', 20 * HOUR],
    ['chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(eventType = "b") WHEN(< 1 hour after A)])', Infinity],
    // Relative to the start of today: as far back as today began, whatever the side.
    ['select X from xEvent where X.timestamp occurs < 2 days before today', 3 * DAY],
    ['select X from xEvent where X.timestamp occurs > 2 hours after today', DAY],
    ['select X from xEvent where X.timestamp occurs < 2 hours after now', 0],
  ];
  for (const [q, reach] of table) {
    it(q, () => assert.equal(eventLookbackMs(parseAudience(q)), reach));
  }
});

describe('dependencies and cycles', () => {
  it('lists inSegment ids once, in order, including inside event clauses', () => {
    assert.deepEqual(dependencies(parseAudience('inSegment("a") and (inSegment("b") or not inSegment("a")) and xEvent[inSegment("c")].count() > 0')), ['a', 'b', 'c']);
  });

  it('finds a cycle path or none', () => {
    assert.equal(findCycle(new Map([['a', ['b']], ['b', ['c']], ['c', []]])), undefined);
    assert.deepEqual(findCycle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]])), ['a', 'b', 'c', 'a']);
    assert.deepEqual(findCycle(new Map([['x', ['x']]])), ['x', 'x']);
    assert.deepEqual(findCycle(new Map([['a', ['b', 'd']], ['b', []], ['d', ['e']], ['e', ['d']]])), ['d', 'e', 'd']);
    const long = new Map(Array.from({ length: 100_000 }, (_, k) => [`n${k}`, [`n${k + 1}`]] as [string, string[]]));
    assert.equal(findCycle(long), undefined);
  });
});
