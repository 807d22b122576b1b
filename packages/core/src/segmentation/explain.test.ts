import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAudience } from './check.js';
import { compileQuery } from './compile.js';
import { explain, evaluateAudience } from './explain.js';
import { parseAudience } from './parser.js';
import { DAY, SCHEMAS, ago, ctx, ev } from './test-fixtures.js';

describe('explain', () => {
  it('mirrors the clauses with their text, result and values', () => {
    const q = compileQuery('homeAddress.city = "Paris"\n  and (loyalty.points > 1000 or tags = "vip")', SCHEMAS);
    const node = explain(q, ctx({ homeAddress: { city: 'Paris' }, loyalty: { points: 500 }, tags: ['new', 'vip'] }));
    assert.equal(node.kind, 'and');
    assert.equal(node.result, true);
    const [city, or] = node.children;
    assert.deepEqual(city, { kind: 'compare', clause: 'homeAddress.city = "Paris"', line: 1, column: 1, result: true, values: { value: 'Paris' }, children: [] });
    assert.equal(or?.kind, 'or');
    assert.equal(or?.line, 2);
    assert.equal(or?.clause, '(loyalty.points > 1000 or tags = "vip")');
    assert.deepEqual(or?.children.map((c) => [c.clause, c.result, c.values]), [
      ['loyalty.points > 1000', false, { value: 500 }],
      ['tags = "vip"', true, { values: ['new', 'vip'] }],
    ]);
  });

  it('reports counts, sums and matching event ids for event clauses', () => {
    const q = compileQuery('xEvent[eventType = "commerce.purchases" and timestamp occurs < 7 days before now].sum(commerce.order.priceTotal) > 100', SCHEMAS);
    const events = [
      ev('commerce.purchases', ago(DAY), { commerce: { order: { priceTotal: 80 } } }),
      ev('commerce.purchases', ago(10 * DAY), { commerce: { order: { priceTotal: 500 } } }),
      ev('web', ago(DAY)),
    ];
    const node = explain(q, ctx({}, events));
    assert.equal(node.result, false);
    assert.deepEqual(node.values, { sum: 80, matchingEvents: 1, matchingEventIds: [events[0]?.['_id']] });
    const filter = node.children[0];
    assert.equal(filter?.kind, 'and');
    assert.deepEqual(filter?.children.map((c) => [c.clause, c.values['matchingEvents']]), [
      ['eventType = "commerce.purchases"', 2],
      ['timestamp occurs < 7 days before now', 2],
    ]);
  });

  it('shows the window during which an occurs clause holds', () => {
    const q = compileQuery('person.birthDate occurs > 18 years before now', SCHEMAS);
    const node = explain(q, ctx({ person: { birthDate: '2010-03-01' } }));
    assert.equal(node.result, false);
    assert.deepEqual(node.values, { value: '2010-03-01', holds: { from: '2028-03-01T00:00:00.001Z', until: null } });
  });

  it('works from a checked AST and agrees with evaluate', () => {
    const checked = checkAudience(parseAudience('inSegment("a") or loyalty.points >= 3'), SCHEMAS);
    const c = ctx({ loyalty: { points: 3 } });
    assert.equal(explain(checked, c).result, evaluateAudience(checked, c));
    assert.deepEqual(explain(checked, ctx({}, [], undefined, ['a'])).children[0]?.values, { audienceId: 'a' });
  });
});
