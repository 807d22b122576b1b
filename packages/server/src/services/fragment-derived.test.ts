import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoredFragment } from '@audient/core';
import { derivedOf } from './fragment-derived.js';

const fragment = (tier: string): StoredFragment => ({ datasetId: 'crm', ns: 'email', id: 'a@example.com', graphId: 'g1', attributes: { loyalty: { tier } }, timestamp: 1 });

describe('values derived from a fragment list', () => {
  it('are one holder per list, kept on the list and not seen by anything reading it', () => {
    const list = [fragment('gold')];
    const other = [fragment('gold')];
    const held = derivedOf(list);
    held.consent = { enabled: new Set(['crm']), consent: { collect: true, personalize: false } };
    assert.equal(derivedOf(list), held, 'the same list gives the same holder');
    assert.notEqual(derivedOf(other), held, 'an equal list of its own has its own');
    assert.equal(derivedOf(other).consent, undefined);
    // Invisible to what reads the list: its elements, keys, JSON and copies.
    assert.deepEqual(Object.keys(list), ['0']);
    assert.equal(JSON.stringify(list), JSON.stringify(other));
    assert.equal(derivedOf([...list]).consent, undefined, 'a copy is a new list');
  });
});
