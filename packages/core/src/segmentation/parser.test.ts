import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Expr } from './ast.js';
import { AudienceSyntaxError } from './errors.js';
import { parseAudience } from './parser.js';

function root(q: string): Expr {
  return parseAudience(q).root;
}

function syntaxError(q: string): AudienceSyntaxError {
  try {
    parseAudience(q);
  } catch (err) {
    assert.ok(err instanceof AudienceSyntaxError, `expected AudienceSyntaxError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(q)} to fail`);
}

describe('parser: constructs', () => {
  it('parses a nested path comparison with a span', () => {
    const e = root('person.name.lastName = "Smith"');
    assert.equal(e.kind, 'compare');
    if (e.kind !== 'compare') return;
    assert.equal(e.op, '=');
    assert.deepEqual(e.left.kind === 'path' && e.left.segments, ['person', 'name', 'lastName']);
    assert.equal(e.left.kind === 'path' && e.left.scope, 'profile');
    assert.deepEqual(e.right, { kind: 'literal', value: 'Smith', span: { start: 23, end: 30, line: 1, column: 24 } });
    assert.deepEqual(e.span, { start: 0, end: 30, line: 1, column: 1 });
  });

  it('parses every comparison operator (and <> / == aliases)', () => {
    for (const [text, op] of [['=', '='], ['!=', '!='], ['<', '<'], ['<=', '<='], ['>', '>'], ['>=', '>='], ['<>', '!='], ['==', '=']]) {
      const e = root(`loyalty.points ${text} 10`);
      assert.equal(e.kind === 'compare' && e.op, op, text);
    }
  });

  it('gives and precedence over or, and keeps them n-ary', () => {
    const e = root('a = 1 or b = 2 and c = 3 and d = 4');
    assert.equal(e.kind, 'or');
    if (e.kind !== 'or') return;
    assert.equal(e.operands.length, 2);
    assert.equal(e.operands[1]?.kind, 'and');
    assert.equal(e.operands[1]?.kind === 'and' && e.operands[1].operands.length, 3);
  });

  it('parses not and parentheses', () => {
    const e = root('not (a = 1 or b = 2) and not c exists');
    assert.equal(e.kind, 'and');
    if (e.kind !== 'and') return;
    assert.equal(e.operands[0]?.kind, 'not');
    assert.equal(e.operands[1]?.kind, 'not');
  });

  it('parses literals: strings with escapes, negative and decimal numbers, booleans, null', () => {
    const lit = (q: string): unknown => {
      const e = root(q);
      return e.kind === 'compare' && e.right.kind === 'literal' ? e.right.value : undefined;
    };
    assert.equal(lit('x = "a\\"b\\n"'), 'a"b\n');
    assert.equal(lit("x = 'single'"), 'single');
    assert.equal(lit('x = -12.5'), -12.5);
    assert.equal(lit('x = 1e3'), 1000);
    assert.equal(lit('x = true'), true);
    assert.equal(lit('x = null'), null);
  });

  it('parses in, notIn, like, exists, between', () => {
    const e1 = root('homeAddress.countryCode in ["US", "CA"]');
    assert.equal(e1.kind === 'in' && !e1.negated && e1.values.length, 2);
    const e2 = root('homeAddress.countryCode notIn ["US"]');
    assert.equal(e2.kind === 'in' && e2.negated, true);
    const e3 = root('personalEmail.address like "%@example.com"');
    assert.equal(e3.kind === 'like' && e3.pattern.value, '%@example.com');
    assert.equal(root('x exists').kind, 'exists');
    const e4 = root('loyalty.points between 10 and 20');
    assert.equal(e4.kind === 'between' && e4.high.value, 20);
  });

  it('parses string functions with an optional case flag', () => {
    const e = root('person.name.lastName.contains("mi", false)');
    assert.equal(e.kind, 'stringFn');
    if (e.kind !== 'stringFn') return;
    assert.equal(e.fn, 'contains');
    assert.equal(e.caseSensitive, false);
    assert.deepEqual(e.target.segments, ['person', 'name', 'lastName']);
    for (const fn of ['startsWith', 'endsWith', 'matches']) assert.equal(root(`a.${fn}("x")`).kind, 'stringFn');
  });

  it('parses occurs with every unit, direction and anchor', () => {
    const e = root('person.birthDate occurs > 30 years before now');
    assert.deepEqual(e.kind === 'occurs' && e.relation, {
      distance: { kind: 'compare', op: '>', amount: 30, unit: 'years' },
      direction: 'before',
      anchor: 'now',
    });
    const b = root('x occurs between 1 and 3 days before today');
    assert.deepEqual(b.kind === 'occurs' && b.relation.distance, { kind: 'between', low: 1, high: 3, unit: 'days' });
    for (const u of ['second', 'seconds', 'minute', 'minutes', 'hours', 'day', 'weeks', 'month', 'years']) {
      assert.equal(root(`x occurs < 2 ${u} after now`).kind, 'occurs', u);
    }
  });

  it('parses select with the event variable stripped from event paths', () => {
    const e = root('select X from xEvent where X.eventType = "commerce.purchases" and homeAddress.city = "Paris"');
    assert.equal(e.kind, 'select');
    if (e.kind !== 'select' || e.where?.kind !== 'and') return assert.fail();
    const [a, b] = e.where.operands;
    assert.ok(a?.kind === 'compare' && a.left.kind === 'path');
    assert.equal(a.left.scope, 'event');
    assert.deepEqual(a.left.segments, ['eventType']);
    assert.ok(b?.kind === 'compare' && b.left.kind === 'path');
    assert.equal(b.left.scope, 'profile');
  });

  it('parses filtered aggregates', () => {
    const e = root('xEvent[eventType = "web.webpagedetails.pageViews" and timestamp occurs < 1 day before now].count() >= 3');
    assert.ok(e.kind === 'aggregate');
    assert.equal(e.fn, 'count');
    assert.equal(e.op, '>=');
    assert.equal(e.value.value, 3);
    assert.equal(e.filter?.kind, 'and');
    const s = root('xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal) > 500');
    assert.ok(s.kind === 'aggregate' && s.field);
    assert.deepEqual(s.field.segments, ['commerce', 'order', 'priceTotal']);
    assert.equal(s.field.scope, 'event');
    assert.equal(root('xEvent.count() = 0').kind, 'aggregate');
  });

  it('parses chains with WHAT and WHEN', () => {
    const e = root('chain(xEvent, timestamp, [A: WHAT(eventType = "x"), B: WHAT(eventType = "y") WHEN(< 1 hour after A), C: WHAT(eventType = "z") WHEN(<= 7 days before now)])');
    assert.ok(e.kind === 'chain');
    assert.deepEqual(e.steps.map((s) => s.label), ['A', 'B', 'C']);
    assert.equal(e.steps[1]?.when?.kind, 'afterStep');
    assert.equal(e.steps[2]?.when?.kind, 'relative');
  });

  it('parses inSegment and constants', () => {
    assert.deepEqual(root('inSegment("gold-members")').kind, 'inSegment');
    assert.equal(root('true').kind, 'constant');
  });

  it('accepts backtick-quoted and keyword-named fields', () => {
    const e = root('attributes.`favourite-colour` = "red" and loyalty.count = 1');
    assert.ok(e.kind === 'and');
  });
});

describe('parser: errors', () => {
  it('says what was expected, with line, column and caret', () => {
    const err = syntaxError('(person.name.lastName = "Smith"\n   and homeAddress.city = "x" ecid');
    const d = err.diagnostics[0];
    assert.ok(d);
    assert.equal(d.line, 2);
    assert.equal(d.column, 31);
    assert.equal(d.message, "expected 'and', 'or' or ')' but found 'ecid' at line 2, column 31");
    assert.deepEqual(d.expected, ["'and'", "'or'", "')'"]);
    assert.equal(d.formatted, [d.message, '2 |    and homeAddress.city = "x" ecid', '  |                               ^^^^'].join('\n'));
    assert.equal(err.code, 'VALIDATION_FAILED');
    assert.equal(err.line, 2);
  });

  it('reports the end of the query', () => {
    const d = syntaxError('loyalty.points >').diagnostics[0];
    assert.match(d?.message ?? '', /but found end of query at line 1, column 17$/);
  });

  it('reports unterminated strings and unknown characters', () => {
    assert.match(syntaxError('a = "abc').message, /unterminated string at line 1, column 5/);
    assert.match(syntaxError('a = 1 & b = 2').message, /unexpected character "&" at line 1, column 7/);
  });

  it('rejects an unknown string function and a missing unit', () => {
    assert.match(syntaxError('a.startWith("x")').message, /unknown function 'startWith'; expected one of startsWith/);
    assert.match(syntaxError('a occurs < 3 before now').message, /expected a time unit .* but found 'before'/);
  });

  it('rejects fractional months and too-deep nesting', () => {
    assert.match(syntaxError('a occurs < 1.5 months before now').message, /whole numbers/);
    assert.match(syntaxError(`${'('.repeat(200)}a = 1${')'.repeat(200)}`).message, /nests deeper/);
  });
});
