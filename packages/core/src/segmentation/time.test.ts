import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileLike, regexProblem } from './matchers.js';
import type { Distance, TimeRelation } from './ast.js';
import { addMonths, parseInstant, shift, startOfDay } from './time.js';
import { compileRelation, relationBounds } from './time-relation.js';

describe('time', () => {
  it('reads ISO dates and date-times in UTC, never local time', () => {
    assert.equal(parseInstant('2024-06-15'), Date.UTC(2024, 5, 15));
    assert.equal(parseInstant('2024-06-15T12:30:00Z'), Date.UTC(2024, 5, 15, 12, 30));
    assert.equal(parseInstant('2024-06-15T12:30'), Date.UTC(2024, 5, 15, 12, 30));
    assert.equal(parseInstant('2024-06-15 12:30:05.123456+02:00'), Date.UTC(2024, 5, 15, 10, 30, 5, 123));
    assert.equal(parseInstant('2024-06-15T12:30:00-0130'), Date.UTC(2024, 5, 15, 14, 0));
    assert.equal(parseInstant(1718452800000), 1718452800000);
    for (const bad of ['2024-02-30', '2024-13-01', '15/06/2024', '2024-06-15T25:00Z', '2024-06-15T12:00:00Zjunk', '', null, {}, NaN]) {
      assert.ok(Number.isNaN(parseInstant(bad)), String(bad));
    }
  });

  it('agrees with Date.parse on random instants', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }), (d) => {
        const s = d.toISOString();
        assert.equal(parseInstant(s), Date.parse(s));
        assert.equal(parseInstant(s.slice(0, 10)), Date.parse(s.slice(0, 10)));
      }),
    );
  });

  it('shifts by calendar months with clamping', () => {
    assert.equal(addMonths(Date.UTC(2024, 0, 31, 8), 1), Date.UTC(2024, 1, 29, 8));
    assert.equal(addMonths(Date.UTC(2023, 0, 31), 1), Date.UTC(2023, 1, 28));
    assert.equal(addMonths(Date.UTC(2024, 2, 15), -14), Date.UTC(2023, 0, 15));
    assert.equal(shift(Date.UTC(1992, 1, 29), 30, 'years'), Date.UTC(2022, 1, 28));
    assert.equal(shift(0, 2, 'weeks'), 14 * 86_400_000);
  });
});

describe('matchers', () => {
  it('like agrees with a reference regex', () => {
    const toRegex = (p: string): RegExp => new RegExp(`^${[...p].map((c) => (c === '%' ? '[\\s\\S]*' : c === '_' ? '[\\s\\S]' : c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))).join('')}$`);
    const alphabet = fc.constantFrom('a', 'b', '%', '_');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 8 }).map((a) => a.join('')), fc.array(fc.constantFrom('a', 'b'), { maxLength: 10 }).map((a) => a.join('')), (pattern, value) => {
        assert.equal(compileLike(pattern)(value), toRegex(pattern).test(value), `${pattern} vs ${value}`);
      }),
      { numRuns: 3000 },
    );
  });

  it('like is linear on adversarial input and honours escapes', () => {
    const m = compileLike('%a%a%a%a%a%a%a%b');
    const start = performance.now();
    assert.equal(m('a'.repeat(20_000)), false);
    assert.ok(performance.now() - start < 2000);
    assert.equal(compileLike('100\\%')('100%'), true);
    assert.equal(compileLike('100\\%')('1000'), false);
  });

  it('accepts ordinary regexes and refuses dangerous ones', () => {
    assert.equal(regexProblem('^[A-Z]{2}-\\d+$'), undefined);
    assert.equal(regexProblem('(ab|cd)?x+'), undefined);
    assert.match(regexProblem('(a*)*') ?? '', /nested/);
    assert.match(regexProblem('((a|b)+c)+') ?? '', /nested/);
    assert.match(regexProblem('(?:x+){2,}') ?? '', /nested/);
  });

  it('relation cut-offs cached per anchor agree with the exact interval, near month ends too', () => {
    const unit = fc.constantFrom('seconds', 'minutes', 'hours', 'days', 'weeks', 'months', 'years' as const);
    const op = fc.constantFrom('<', '<=', '>', '>=', '=', '!=' as const);
    const distance: fc.Arbitrary<Distance> = fc.oneof(
      fc.record({ kind: fc.constant('compare' as const), op, amount: fc.integer({ min: 0, max: 40 }), unit }),
      fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }), unit).map(([a, b, u]) => ({ kind: 'between' as const, low: Math.min(a, b), high: Math.max(a, b), unit: u })),
    );
    const relation: fc.Arbitrary<TimeRelation> = fc.record({ distance, direction: fc.constantFrom('before', 'after' as const), anchor: fc.constantFrom('now', 'today' as const) });
    const base = Date.UTC(2024, 0, 31, 23, 0);
    const instant = fc.oneof(
      fc.integer({ min: -4e12, max: 4e12 }),
      fc.integer({ min: -2000, max: 2000 }).map((k) => base + k * 3_600_000),
      fc.integer({ min: -40 * 366, max: 40 * 366 }).map((k) => base + k * 86_400_000 + (k % 7) * 1000),
      fc.constantFrom(NaN, 1e300, -1e300, 0.5),
    );
    fc.assert(
      fc.property(relation, fc.array(instant, { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 2 }), (rel, ts, nowPick) => {
        const test = compileRelation(rel);
        const bounds = relationBounds(rel);
        for (const now of [base, base + nowPick * 86_400_000 + 12_345]) {
          const today = startOfDay(now);
          const a = rel.anchor === 'today' ? today : now;
          const d = rel.distance;
          const amounts = d.kind === 'between' ? [d.low, d.high, d.high + 1] : [d.amount, d.amount + 1];
          const near = amounts.flatMap((k) => [k, -k]).flatMap((k) => [-86_400_000, -3_600_001, -1, 0, 1, 86_399_999].map((dt) => shift(a, k, d.unit) + dt));
          for (const t of [...ts, ...near, ...ts.map((x) => shift(x, 1, d.unit)), ...ts.map((x) => x + 1)]) {
            const b = bounds(t);
            assert.equal(test.holds(t, now, today), b.lo <= a && a < b.hi, `${JSON.stringify(rel)} t=${t} now=${now}`);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
