import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { unstorableText } from './validate.js';

describe('text no store keeps: U+0000 and unpaired surrogates', () => {
  it('names every string and key holding one, keys shown escaped', () => {
    const record = { a: 'fine', b: { c: 'x\u0000y', 'd\u0000e': 1 }, list: ['ok', 'z\u0000'] };
    const found = unstorableText(record);
    assert.deepEqual(
      found.map((d) => [d.path, d.reason]),
      [
        ['b.c', 'nul'],
        ['b.d\\u0000e', 'nul'],
        ['list[1]', 'nul'],
      ],
    );
    // What is reported can itself be stored anywhere: no raw NUL in a path or a value shown.
    for (const d of found) assert.ok(!Object.values(d).some((v) => String(v).includes('\u0000')), JSON.stringify(d));
    assert.deepEqual(unstorableText({ a: 'fine', n: 1, t: true, z: null, deep: [{ x: ['y'] }] }), []);
  });

  it('names unpaired surrogates, high or low, and keeps paired ones (emoji) and combining marks', () => {
    const record = { high: 'a\ud800b', low: '\udc00', end: 'x\ud83d', emoji: '\ud83d\ude00', accent: 'e\u0301', ['k\udfff']: 'v' };
    assert.deepEqual(
      unstorableText(record, JSON.stringify(record)).map((d) => [d.path, d.reason]),
      [
        ['high', 'surrogate'],
        ['low', 'surrogate'],
        ['end', 'surrogate'],
        ['k\\udfff', 'surrogate'],
      ],
    );
    const fine = { emoji: '\ud83d\ude00 \u00e9 \u4e2d', control: 'tab\there \u0001' };
    assert.deepEqual(unstorableText(fine, JSON.stringify(fine)), []);
  });

  it('takes the JSON text as a shortcut, and a backslash followed by u0000 is not one', () => {
    const text = { a: 'a \\u0000 written out' };
    const json = JSON.stringify(text);
    assert.ok(json.includes('\\u0000'), 'the JSON text holds the escape sequence');
    assert.deepEqual(unstorableText(text, json), []);
    const real = { a: 'b\u0000' };
    assert.equal(unstorableText(real, JSON.stringify(real)).length, 1);
    // The text is trusted: without the escape in it, nothing is looked at.
    assert.deepEqual(unstorableText(real, '{}'), []);
  });

  it('stops at 20 places and does not look into objects that are not JSON (a stream body)', () => {
    assert.equal(unstorableText(Array.from({ length: 50 }, () => '\u0000')).length, 20);
    const stream = Readable.from(['\u0000']);
    assert.deepEqual(unstorableText(stream), []);
    assert.deepEqual(unstorableText(Object.assign(Object.create(null) as object, { q: 'a\u0000' })).length, 1);
  });

  it('walks a value nested 100,000 deep without running out of stack', () => {
    let deep: unknown = ['x\u0000'];
    for (let i = 0; i < 100_000; i++) deep = i % 2 ? [deep] : { k: deep };
    const found = unstorableText(deep);
    assert.equal(found.length, 1);
    assert.match(found[0]!.path, /\[0\]$/);
  });
});
