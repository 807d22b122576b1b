import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sortableId, timeOrderedUuid } from './ids.js';

describe('ids', () => {
  it('makes RFC 9562 version-7 UUIDs that sort in the order they were made, even within one millisecond', () => {
    const before = Date.now();
    const ids = Array.from({ length: 20_000 }, () => timeOrderedUuid());
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual([...ids].sort(), ids, 'lexicographic order is creation order');
    assert.equal(new Set(ids).size, ids.length);
    const ms = parseInt(ids[0]!.replace('-', '').slice(0, 12), 16);
    assert.ok(ms >= before && ms <= Date.now() + 1, 'the first 48 bits are the creation time in ms');
  });

  it('makes sortable prefixed ids', () => {
    const ids = Array.from({ length: 5_000 }, () => sortableId('fr'));
    assert.ok(ids.every((id) => id.startsWith('fr_')));
    assert.deepEqual([...ids].sort(), ids);
  });
});
