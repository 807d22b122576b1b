import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AudientError } from '@audient/core';
import { detectFormat, formatPath, parsePath, setPath } from './index.js';

describe('setPath', () => {
  it('builds nested objects and arrays', () => {
    const target: Record<string, unknown> = {};
    setPath(target, 'identityMap.email[0].id', 'a@x.com');
    setPath(target, 'identityMap.email[0].primary', true);
    setPath(target, 'productListItems[1].SKU', 'S-1');
    setPath(target, 'loyalty.loyaltyID[0]', 'L1');
    assert.deepEqual(target, {
      identityMap: { email: [{ id: 'a@x.com', primary: true }] },
      productListItems: [, { SKU: 'S-1' }],
      loyalty: { loyaltyID: ['L1'] },
    });
  });

  it('refuses prototype segments and huge indexes', () => {
    for (const path of ['__proto__.x', 'a.constructor', 'a.prototype.b', 'a[1001]', 'a[01]', 'a..b', 'a.', '[0]', '', 'a[x]', 'a b']) {
      assert.throws(() => setPath({}, path, 1), (err: unknown) => err instanceof AudientError && err.code === 'BAD_REQUEST', path);
    }
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'x'), false);
  });

  it('refuses to cross a value of another kind, and never follows inherited members', () => {
    const target: Record<string, unknown> = { a: 'text', list: [] };
    assert.throws(() => setPath(target, 'a.b', 1), /"a" already holds a value of another kind/);
    assert.throws(() => setPath(target, 'list.b', 1), /already holds/);
    setPath(target, 'toString.x', 1);
    assert.deepEqual(target['toString'], { x: 1 });
  });

  it('parses and formats paths', () => {
    assert.deepEqual(parsePath('a.b[2].c'), [{ key: 'a' }, { key: 'b' }, { index: 2 }, { key: 'c' }]);
    assert.equal(formatPath(parsePath('x[0][1].y')), 'x[0][1].y');
  });
});

describe('detectFormat', () => {
  it('prefers a specific content type, else the extension', () => {
    assert.equal(detectFormat('data.bin', 'text/csv; charset=utf-8'), 'csv');
    assert.equal(detectFormat('data.csv', 'application/x-ndjson'), 'jsonl');
    assert.equal(detectFormat('uploads/Profiles.CSV', 'application/octet-stream'), 'csv');
    assert.equal(detectFormat('events.jsonl'), 'jsonl');
    assert.equal(detectFormat('events.ndjson'), 'jsonl');
    assert.equal(detectFormat('events.json'), undefined);
    assert.equal(detectFormat('events.csv.gz'), undefined);
    assert.equal(detectFormat('.csv'), undefined);
  });
});
