import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateSettings } from '@audient/core';
import { makeRecord } from '../testing/records.js';
import { customPersonalization, exampleSettings, profileLookupEntry } from './index.js';

describe('custom-personalization destination', () => {
  it('is a profile-lookup (edge) destination with no attributes and any identity', () => {
    assert.equal(customPersonalization.category, 'edge');
    assert.equal(customPersonalization.allowsAttributes, false);
    assert.deepEqual(customPersonalization.identities, { targets: [] });
    assert.deepEqual(customPersonalization.delivery, { kind: 'per-profile' });
  });

  it('requires the integration alias and the datastream id; name and description are optional', () => {
    assert.deepEqual(validateSettings(customPersonalization, exampleSettings).errors, []);
    assert.deepEqual(validateSettings(customPersonalization, { integrationAlias: 'adServerAlias', datastreamId: 'ds-1' }).errors, []);
    const missing = validateSettings(customPersonalization, { name: 'x' }).errors.map((e) => `${e.path}:${e.reason}`).sort();
    assert.deepEqual(missing, ['settings.datastreamId:required', 'settings.integrationAlias:required']);
    const bad = validateSettings(customPersonalization, { integrationAlias: 'has space', datastreamId: 'ds-1' }).errors;
    assert.equal(bad[0]?.path, 'settings.integrationAlias');
  });

  it('pushes nothing: the edge pulls', () => {
    const record = makeRecord({ audiences: [{ id: 'aud-1', status: 'realized' }] });
    assert.deepEqual(customPersonalization.toRequests([record], { settings: exampleSettings, timeoutMs: 1000 }), []);
  });

  it('builds seed 000 entries with unique, sorted segment ids', () => {
    assert.deepEqual(profileLookupEntry({ connectionId: '7bb4cb8d', alias: 'personalizationAlias', audienceIds: ['b', 'a', 'b'] }), {
      type: 'profileLookup',
      destinationId: '7bb4cb8d',
      alias: 'personalizationAlias',
      segments: [{ id: 'a' }, { id: 'b' }],
    });
  });
});
