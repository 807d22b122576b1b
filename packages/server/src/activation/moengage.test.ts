import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMoEngageServer, type MoEngageServer } from '@audient/destinations/testing';
import { SqliteStore } from '@audient/storage';
import { createHarness, okJson, settle, type Harness } from '../testing/harness.js';

describe('activation to MoEngage through the runtime', () => {
  let h: Harness;
  let moe: MoEngageServer;
  before(async () => {
    moe = await startMoEngageServer({ workspaces: [{ id: 'WS1', dataApiKey: 'moe-key-123' }] });
    const store = new SqliteStore(':memory:');
    await store.migrate();
    h = await createHarness(store, { segmentation: { tickMs: 0, batchTime: '' } }, { delivery: { pollMs: 3_600_000 } });
  });
  after(async () => {
    await h.close();
    await moe.close();
  });

  it('sends renamed attributes and the names of the audiences the user is in', async () => {
    const ok = (method: 'POST', url: string, body: unknown): Promise<Record<string, unknown>> => okJson(h, method, url, body);
    await ok('POST', '/v1/schemas', {
      id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-person-details', 'profile-loyalty-details', 'profile-identifiers'], fields: {},
    });
    await ok('POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
    await ok('POST', '/v1/audiences', { id: 'gold', name: 'Gold members', query: 'loyalty.tier = "gold"' });
    await ok('POST', '/v1/audiences', { id: 'does', name: 'The Does', query: 'person.name.lastName = "Doe"' });
    await ok('POST', '/v1/audiences', { id: 'vip', name: 'VIP', query: 'loyalty.points > 1000' });
    const conn = await ok('POST', '/v1/connections', {
      name: 'MoEngage', destinationId: 'moengage', settings: { appId: 'WS1', dataApiKey: 'moe-key-123', region: '01', baseUrl: moe.url },
    });
    await ok('POST', '/v1/dataflows', {
      name: 'To MoEngage', connectionId: conn['id'], audienceIds: ['gold', 'does', 'vip'],
      mapping: [
        { source: 'identity:crmId', target: { kind: 'identity', name: 'user_id' } },
        { source: 'person.name.lastName', target: { kind: 'attribute', name: 'Last_Name' } },
        { source: 'loyalty.tier', target: { kind: 'attribute', name: 'tier' } },
      ],
    });
    await ok('POST', '/v1/datasets/crm/records', {
      identification: { core: { crmId: 'crm-42' } }, person: { name: { lastName: 'Doe' } }, loyalty: { tier: 'gold', points: 5000 },
    });
    await ok('POST', '/v1/datasets/crm/records', { identification: { core: { crmId: 'crm-42' } }, loyalty: { points: 10 } });
    await settle(h);
    const customer = moe.customers('WS1')['crm-42'];
    assert.ok(customer, `MoEngage got ${JSON.stringify(moe.requests.map((r) => [r.status, r.body]))}`);
    assert.equal(customer['Last_Name'], 'Doe');
    assert.equal(customer['tier'], 'gold');
    assert.deepEqual([...(customer['AEPSegments'] as string[])].sort(), ['Gold members', 'The Does']);
    assert.ok(moe.requests.every((r) => r.status === 200), 'every request met the documented contract');
  });
});
