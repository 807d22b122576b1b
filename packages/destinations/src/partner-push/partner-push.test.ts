import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateSettings, type RequestDescriptor } from '@audient/core';
import { makeRecord } from '../testing/records.js';
import { exampleSettings, partnerPush } from './index.js';

const ctx = { settings: exampleSettings, timeoutMs: 3000 };
const response = (status: number, body = '') => ({ status, headers: {}, body });

const alice = makeRecord({
  profileId: 'p-alice',
  identities: { partner_uid: ['P-1'] },
  audiences: [
    { id: 'aud-2', status: 'realized', at: '2024-05-25T23:37:33Z' },
    { id: 'aud-1', status: 'existing', at: '2024-05-20T10:00:00Z' },
    { id: 'aud-3', status: 'exited', at: '2024-05-25T21:24:39Z' },
  ],
  idempotencyKey: 'df-9:p-alice:17',
});
const bob = makeRecord({
  profileId: 'p-bob',
  identities: { partner_uid: ['P-2', 'P-3', 'P-2'] },
  audiences: [{ id: 'aud-1', status: 'exited', at: '2024-05-26T08:00:00Z' }],
  idempotencyKey: 'df-9:p-bob:4',
});

describe('partner-push destination', () => {
  it('sends added and removed audience ids per partner user in one message', () => {
    const [req, ...rest] = partnerPush.toRequests([alice, bob], ctx);
    assert.equal(rest.length, 0);
    assert.ok(req);
    assert.equal(req.method, 'POST');
    assert.equal(req.url, 'https://partner.example.net/v1/audiences');
    assert.deepEqual(req.headers, { 'content-type': 'application/json' });
    assert.deepEqual(req.items, [0, 1]);
    assert.equal(
      req.body,
      JSON.stringify({
        type: 'audience-membership',
        version: 1,
        dataSourceId: 'acme-dmp',
        users: [
          { uid: 'P-1', added: ['aud-1', 'aud-2'], removed: ['aud-3'], updatedAt: '2024-05-25T23:37:33Z', eventId: 'df-9:p-alice:17' },
          { uid: 'P-2', added: [], removed: ['aud-1'], updatedAt: '2024-05-26T08:00:00Z', eventId: 'df-9:p-bob:4' },
          { uid: 'P-3', added: [], removed: ['aud-1'], updatedAt: '2024-05-26T08:00:00Z', eventId: 'df-9:p-bob:4' },
        ],
      }),
    );
  });

  it('splits messages at maxUsersPerMessage without splitting a profile', () => {
    const reqs = partnerPush.toRequests([alice, bob, alice], { settings: { ...exampleSettings, maxUsersPerMessage: 2 }, timeoutMs: 3000 });
    assert.deepEqual(
      reqs.map((r) => r.items),
      [[0], [1], [2]],
    );
    const three = partnerPush.toRequests([alice, alice, alice], { settings: { ...exampleSettings, maxUsersPerMessage: 2 }, timeoutMs: 3000 });
    assert.deepEqual(
      three.map((r) => r.items),
      [[0, 1], [2]],
    );
  });

  it('names users by the ids of the ID-sync table, which every record must carry', () => {
    assert.deepEqual(partnerPush.idSync, { target: 'partner_uid' });
    assert.ok(partnerPush.identities.targets.includes('partner_uid'));
    assert.deepEqual(partnerPush.identities.required, ['partner_uid']);
    assert.throws(() => partnerPush.toRequests([{ ...alice, identities: {} }], ctx), /no partner_uid/);
  });

  it('validates settings', () => {
    const { authToken: _t, maxUsersPerMessage: _m, ...minimal } = exampleSettings;
    const v = validateSettings(partnerPush, minimal);
    assert.deepEqual(v.errors, []);
    assert.equal(v.values['maxUsersPerMessage'], 100);
    assert.deepEqual(
      validateSettings(partnerPush, { ...exampleSettings, maxUsersPerMessage: 500 }).errors.map((e) => e.message),
      ['Users per message must be a whole number from 1 to 100'],
    );
    assert.deepEqual(
      validateSettings(partnerPush, { ...exampleSettings, dataSourceId: 'has space' }).errors.map((e) => e.path),
      ['settings.dataSourceId'],
    );
  });

  it('classifies by status when the partner gives no per-user results', () => {
    const req: RequestDescriptor = { method: 'POST', url: 'u', headers: {}, items: [0, 1] };
    const c = partnerPush.classify;
    assert.ok(c);
    assert.deepEqual(c(response(200), req, [alice, bob]), [{ ok: true }, { ok: true }]);
    assert.deepEqual(c(response(202, '{"accepted":true}'), req, [alice, bob]), [{ ok: true }, { ok: true }]);
    const m400 = { ok: false, retry: false, message: 'partner HTTP 400: bad message' };
    assert.deepEqual(c(response(400, 'bad message'), req, [alice, bob]), [m400, m400]);
    assert.deepEqual(
      c(response(429), req, [alice, bob]).map((o) => !o.ok && o.retry),
      [true, true],
    );
    assert.deepEqual(
      c(response(500, '{"results":[{"uid":"P-1","status":"accepted"}]}'), req, [alice, bob]).map((o) => !o.ok && o.retry),
      [true, true],
    );
  });

  it('classifies per user when the partner answers results', () => {
    const req: RequestDescriptor = { method: 'POST', url: 'u', headers: {}, items: [0, 1] };
    const c = partnerPush.classify;
    assert.ok(c);
    const body = (results: unknown[]) => JSON.stringify({ results });
    assert.deepEqual(
      c(response(200, body([{ uid: 'P-1', status: 'accepted' }, { uid: 'P-2', status: 'rejected', message: 'unknown uid' }, { uid: 'P-3', status: 'accepted' }])), req, [alice, bob]),
      [{ ok: true }, { ok: false, retry: false, message: 'partner rejected P-2 rejected: unknown uid' }],
    );
    assert.deepEqual(
      c(response(207, body([{ uid: 'P-1', status: 'deferred', message: 'busy' }, { uid: 'P-2', status: 'rejected' }, { uid: 'P-3', status: 'deferred' }])), req, [alice, bob]),
      [
        { ok: false, retry: true, message: 'partner deferred P-1 deferred: busy' },
        { ok: false, retry: true, message: 'partner deferred P-3 deferred' },
      ],
    );
    assert.deepEqual(c(response(200, body([{ uid: 'P-9', status: 'rejected' }])), req, [alice, bob]), [{ ok: true }, { ok: true }]);
  });
});
