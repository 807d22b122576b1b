import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from './config.js';

describe('configuration from the environment', () => {
  it('sizes the views in MB, and names the setting that replaced the event count', () => {
    assert.equal(loadConfig({}, {}).segmentation.viewBytes, 200 * 1024 * 1024);
    assert.equal(loadConfig({}, { AUDIENT_VIEW_MB: '50' }).segmentation.viewBytes, 50 * 1024 * 1024);
    assert.throws(() => loadConfig({}, { AUDIENT_VIEW_MB: '0.5' }), /AUDIENT_VIEW_MB must be a positive integer, got "0.5"/);
    assert.throws(() => loadConfig({}, { AUDIENT_VIEW_EVENTS: '200000' }), /AUDIENT_VIEW_EVENTS is no longer read: use AUDIENT_VIEW_MB/);
  });

  it('takes 0 where 0 means off, and refuses negatives', () => {
    assert.equal(loadConfig({}, { AUDIENT_GROUP_COMMIT_WAIT_MS: '0' }).groupCommitWaitMs, 0);
    assert.throws(() => loadConfig({}, { AUDIENT_GROUP_COMMIT_WAIT_MS: '-1' }), /AUDIENT_GROUP_COMMIT_WAIT_MS must be a whole number \(0 or more\), got "-1"/);
    assert.throws(() => loadConfig({}, { AUDIENT_PORT: '0' }), /AUDIENT_PORT must be a positive integer/);
  });
});
