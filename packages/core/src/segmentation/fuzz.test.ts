import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { diagnoseAudience } from './check.js';
import { compileAudience, compileQuery } from './compile.js';
import { AudienceQueryError } from './errors.js';
import { explain, nextChange } from './explain.js';
import type { AudienceContext } from './runtime.js';
import { NOW, SCHEMAS, ctx } from './test-fixtures.js';

const TOKENS = [
  'select', 'X', 'from', 'xEvent', 'where', 'X.eventType', 'X.timestamp', '=', '!=', '<', '<=', '>', '>=', '"a"', "'b'", '(', ')',
  'and', 'or', 'not', '[', ']', '.', 'count()', 'sum(commerce.order.priceTotal)', 'avg(', 'chain', ',', 'timestamp', 'WHAT',
  'WHEN', 'A', 'B', ':', 'after', 'before', 'now', 'today', 'occurs', '1', '3.5', '-2', '1e400', 'days', 'years', 'months',
  'in', 'notIn', 'like', 'exists', 'between', 'inSegment', 'loyalty.points', 'homeAddress.city', 'person.birthDate',
  'tags', 'productListItems.SKU', 'eventType', '"%a_"', 'null', 'true', 'false', '.matches("(a+)+")', '.contains("x", false)',
  '.startsWith(', 'constructor', '__proto__', 'process', '`x y`', 'attributes.constructor', '"\\u0041"', '"unterminated', '\n',
];

/** Parse, check and compile; anything thrown must be the typed query error. Compiled queries must evaluate. */
function exercise(source: string, contexts: AudienceContext[]): void {
  let compiled;
  try {
    compiled = compileQuery(source, SCHEMAS);
  } catch (err) {
    if (err instanceof AudienceQueryError) {
      assert.ok(err.diagnostics.length > 0);
      for (const d of err.diagnostics) assert.ok(d.line >= 1 && d.column >= 1 && d.formatted.includes('^'));
      return;
    }
    throw err;
  }
  for (const c of contexts) {
    const result = compiled.evaluate(c);
    assert.equal(typeof result, 'boolean');
    assert.equal(explain(compiled, c).result, result);
    const n = nextChange(compiled, c);
    assert.ok(n === undefined || n > c.now);
  }
}

const weirdProfile = JSON.parse(
  '{"__proto__": {"polluted": true}, "constructor": "own", "homeAddress": {"city": ["Paris"]}, "loyalty": {"points": "12"}, "tags": "vip", "attributes": {"constructor": "own", "__proto__": "own-proto"}}',
) as Record<string, unknown>;
const CONTEXTS: AudienceContext[] = [
  ctx({}),
  ctx({ homeAddress: { city: 'a' }, loyalty: { points: 3 }, tags: ['a'], person: { birthDate: '1990-01-01' } }, [
    { _id: '1', eventType: 'a', timestamp: new Date(NOW - 1000).toISOString(), commerce: { order: { priceTotal: 5 } }, productListItems: [{ SKU: 'a' }] },
    { _id: '2', eventType: 'b', timestamp: 'not a date' },
  ]),
  { profile: weirdProfile, events: [null as unknown as Record<string, unknown>, [] as unknown as Record<string, unknown>, { timestamp: 12 }], now: NOW, inSegment: () => true },
];

describe('fuzz: nothing but typed errors', () => {
  it('random strings', () => {
    fc.assert(fc.property(fc.string({ maxLength: 120 }), (s) => exercise(s, CONTEXTS)), { numRuns: 2000 });
  });

  it('random unicode strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (s) => exercise(s, CONTEXTS)), { numRuns: 500 });
  });

  it('random token sequences', () => {
    const seq = fc.array(fc.constantFrom(...TOKENS), { maxLength: 30 }).map((ts) => ts.join(' '));
    fc.assert(fc.property(seq, (s) => exercise(s, CONTEXTS)), { numRuns: 5000 });
  });

  it('random well-formed-ish queries evaluate on random JSON', () => {
    const atom = fc.constantFrom(
      'loyalty.points > 2', 'homeAddress.city = "a"', 'tags in ["a", "b"]', 'person.birthDate occurs > 3 years before now',
      'select X from xEvent where X.eventType = "a"', 'xEvent[timestamp occurs < 1 day before now].count() >= 1',
      'xEvent.sum(productListItems.quantity) > 1', 'inSegment("s")', 'homeAddress.city like "%a%"', 'attributes.k exists',
      'chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(eventType = "b") WHEN(< 1 day after A)])',
    );
    const query = fc.array(fc.tuple(fc.constantFrom(' and ', ' or ', ' and not '), atom), { minLength: 1, maxLength: 5 }).map((parts) =>
      parts.map(([op, a], k) => (k === 0 ? a : `${op}${a}`)).join(''),
    );
    const jsonCtx = fc.record({ profile: fc.dictionary(fc.constantFrom('homeAddress', 'loyalty', 'tags', 'person', 'attributes', 'constructor'), fc.jsonValue()), events: fc.array(fc.jsonValue(), { maxLength: 4 }) });
    fc.assert(
      fc.property(query, jsonCtx, (q, c) => {
        const context = { profile: c.profile, events: c.events as Array<Record<string, unknown>>, now: NOW, inSegment: () => false };
        exercise(q, [context]);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('no query can reach JavaScript properties', () => {
  it('inherited names are plain missing data', () => {
    for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'length', 'map', '0', 'process', 'polluted']) {
      const q = compileQuery(`attributes.\`${key}\` exists or nested.\`${key}\`.\`${key}\` exists or attributes.\`${key}\` = "own"`, SCHEMAS);
      assert.equal(q.evaluate(ctx({ attributes: {}, nested: {} })), false, key);
      assert.equal(q.evaluate(ctx({ nested: JSON.parse(`{${JSON.stringify(key)}: {}}`) as Record<string, unknown> })), false, `nested ${key}`);
      assert.equal(q.evaluate(ctx({ attributes: [] as unknown as Record<string, unknown> })), false, `${key} on an array`);
      assert.equal(q.evaluate(ctx({ attributes: 'text' as unknown as Record<string, unknown> })), false, `${key} on a string`);
      assert.equal(q.evaluate(ctx({ attributes: JSON.parse(`{${JSON.stringify(key)}: "own"}`) as Record<string, unknown> })), true, `own ${key}`);
    }
  });

  it('fields that are not in the schema are rejected, never looked up', () => {
    for (const q of ['constructor exists', '__proto__.polluted = true', 'process.env.HOME exists', 'xEvent[constructor.name = "Object"].count() > 0', 'homeAddress.city.constructor exists']) {
      const { diagnostics } = diagnoseAudience(q, SCHEMAS);
      assert.ok(diagnostics.length > 0, q);
    }
  });

  it('a polluted-looking own __proto__ key does not change the prototype chain', () => {
    const q = compileQuery('attributes.polluted exists', SCHEMAS);
    assert.equal(q.evaluate({ ...CONTEXTS[2]!, profile: weirdProfile }), false);
    assert.equal(compileQuery('attributes.`__proto__` = "own-proto"', SCHEMAS).evaluate({ ...CONTEXTS[2]!, profile: weirdProfile }), true);
  });

  it('source text is data: the compiler never builds functions from it', () => {
    const checked = diagnoseAudience('homeAddress.city = "\'); process.exit(1); (\'"', SCHEMAS).checked;
    assert.ok(checked);
    assert.equal(compileAudience(checked).evaluate(ctx({ homeAddress: { city: "'); process.exit(1); ('" } })), true);
  });
});
