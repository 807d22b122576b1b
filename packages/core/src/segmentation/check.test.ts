import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAudience, diagnoseAudience } from './check.js';
import { AudienceTypeError } from './errors.js';
import { parseAudience } from './parser.js';
import { SCHEMAS } from './test-fixtures.js';

function problems(q: string): string[] {
  return diagnoseAudience(q, SCHEMAS).diagnostics.map((d) => d.message);
}

describe('type checker', () => {
  it('accepts a valid query and records every path', () => {
    const checked = checkAudience(parseAudience('person.name.lastName = "x" and tags = "y" or xEvent[productListItems.SKU = "s"].count() > 1'), SCHEMAS);
    assert.equal(checked.paths.size, 3);
  });

  it('rejects unknown fields with a did-you-mean over known paths', () => {
    const [d] = diagnoseAudience('person.nme.lastName = "Smith"', SCHEMAS).diagnostics;
    assert.ok(d);
    assert.equal(d.reason, 'unknown-field');
    assert.equal(d.suggestion, 'person.name.lastName');
    assert.equal(d.message, "unknown profile field 'person.nme' in 'person.nme.lastName'; did you mean 'person.name.lastName'? at line 1, column 1");
    assert.match(d.formatted, /\n1 \| person\.nme\.lastName = "Smith"\n {2}\| \^{19}$/);
  });

  it('suggests event fields inside event clauses', () => {
    assert.deepEqual(problems('select X from xEvent where X.evenType = "x"'), [
      "unknown event field 'evenType'; did you mean 'eventType'? at line 1, column 28",
    ]);
    assert.deepEqual(problems('select X from xEvent where eventType = "x"'), [
      "unknown profile field 'eventType'; event fields need the variable: X.eventType at line 1, column 28",
    ]);
    assert.deepEqual(problems('xEvent[commerce.order.priceTotl > 1].count() > 0'), [
      "unknown event field 'commerce.order.priceTotl'; did you mean 'commerce.order.priceTotal'? at line 1, column 8",
    ]);
  });

  it('collects several errors with precise positions', () => {
    const all = problems('loyalty.points = "many"\n  and homeAddress.city occurs < 1 day before now\n  and xEvent[eventType = "x"].sum(eventType) > 5\n  and person.birthDate > 3');
    assert.deepEqual(all, [
      `'loyalty.points' is an integer field and cannot be compared with the string "many" at line 1, column 18`,
      "occurs needs a date or date-time field, but 'homeAddress.city' is a string at line 2, column 7",
      "sum() needs a number field, but 'eventType' is a string at line 3, column 35",
      `'person.birthDate' is a date field; compare it with a date string like "2024-01-31" or "2024-01-31T12:00:00Z", not the number 3 at line 4, column 26`,
    ]);
    assert.throws(() => checkAudience(parseAudience('loyalty.points = "x" and isVip > true'), SCHEMAS), (err: unknown) => {
      assert.ok(err instanceof AudienceTypeError);
      assert.equal(err.diagnostics.length, 2);
      return true;
    });
  });

  it('checks enums, booleans, like, string functions and lists', () => {
    assert.match(problems('person.gender = "f"')[0] ?? '', /"f" is not a value of 'person.gender' \(allowed: "male", "female", "non_specified"\)/);
    assert.match(problems('isVip >= true')[0] ?? '', /booleans can only be compared with = and !=/);
    assert.match(problems('loyalty.points like "1%"')[0] ?? '', /like needs a string field, but 'loyalty.points' is an integer/);
    assert.match(problems('loyalty.points.startsWith("1")')[0] ?? '', /startsWith\(\) needs a string field/);
    assert.match(problems('homeAddress.city in ["Paris", 3]')[0] ?? '', /cannot be compared with the number 3 at line 1, column 31/);
    assert.match(problems('person.name = "x"')[0] ?? '', /= cannot be applied to 'person.name', which is an object/);
    assert.match(problems('loyalty.points.value = 1')[0] ?? '', /'loyalty.points' is an integer field and has no field 'value' at line 1, column 1/);
  });

  it('validates regular expressions at compile time', () => {
    assert.match(problems('homeAddress.city.matches("(a+")')[0] ?? '', /invalid regular expression/);
    assert.match(problems('homeAddress.city.matches("(a+)+$")')[0] ?? '', /nested unbounded quantifiers/);
    assert.match(problems('homeAddress.city.matches("(x*y)*")')[0] ?? '', /nested unbounded quantifiers/);
    assert.match(problems(`homeAddress.city.matches("${'a'.repeat(300)}")`)[0] ?? '', /longer than 256/);
    assert.match(problems('homeAddress.city.matches("(a)\\\\1")')[0] ?? '', /back-references/);
    assert.deepEqual(problems('homeAddress.city.matches("^Par(is|ma)$")'), []);
  });

  it('checks chains: labels, order, timestamp field and nesting', () => {
    assert.match(problems('chain(xEvent, timestamp, [A: WHAT(eventType = "a") WHEN(< 1 hour after B), B: WHAT(eventType = "b")])')[0] ?? '', /first step cannot be timed after another step/);
    assert.match(problems('chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(eventType = "b") WHEN(< 1 hour after C)])')[0] ?? '', /WHEN refers to 'C', which is not an earlier step \(earlier: A\)/);
    assert.match(problems('chain(xEvent, eventType, [A: WHAT(eventType = "a")])')[0] ?? '', /orders events by 'timestamp' only/);
    assert.match(problems('xEvent[select X from xEvent].count() > 1')[0] ?? '', /cannot be nested/);
    assert.match(problems('x occurs != 3 days before now')[0] ?? '', /unknown profile field 'x'/);
  });

  it('checks date literals and maps', () => {
    assert.deepEqual(problems('person.birthDate < "2000-01-01" and loyalty.joinDate between "2020-01-01" and "2021-01-01T00:00:00Z"'), []);
    assert.match(problems('person.birthDate < "2000-13-01"')[0] ?? '', /compare it with a date string/);
    assert.deepEqual(problems('attributes.anything = "x" and attributes.`odd key` exists'), []);
    assert.match(problems('loyalty.points between 10 and 5')[0] ?? '', /low bound is greater/);
  });
});
