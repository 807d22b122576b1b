import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { namespaceKey } from '@audient/core';
import { startMoEngageServer, type MoEngageServer } from '@audient/destinations/testing';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, okJson, settle as settleStages, type Harness } from '../testing/harness.js';

/**
 * Activation decides from the bus messages while they continue its cursors, reads the durable logs
 * after a restart or a gap, and keeps the sandbox's dataflows in memory (dropped on a change).
 */
await describeBackends((backend) => {
  describe('activation fed by the bus', () => {
    let h: Harness;
    let moe: MoEngageServer;

    const ok = (method: 'POST', url: string, body: unknown): Promise<Record<string, unknown>> => okJson(h, method, url, body);
    const ingest = (crmId: string, tier: string): Promise<Record<string, unknown>> =>
      ok('POST', '/v1/datasets/crm/records', { identification: { core: { crmId } }, loyalty: { tier } });
    const settle = (): Promise<void> => settleStages(h, { jobs: true });
    const exported = (): string[] => Object.keys(moe.customers('WS1')).sort();

    before(async () => {
      moe = await startMoEngageServer({ workspaces: [{ id: 'WS1', dataApiKey: 'moe-key-123' }] });
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { delivery: { pollMs: 3_600_000 } });
      await ok('POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details', 'profile-identifiers'], fields: {} });
      await ok('POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
      await ok('POST', '/v1/audiences', { id: 'gold', name: 'Gold', query: 'loyalty.tier = "gold"' });
    });
    after(async () => {
      await h.close();
      await moe.close();
    });

    it('moves the cursors past a sandbox without a dataflow, and sees a dataflow created afterwards at once', async () => {
      await ingest('crm-1', 'gold');
      await settle();
      const { store } = h.ctx;
      const head = await store.membershipEventHead('prod');
      assert.ok(head > 0);
      assert.equal(await store.getCursor('activation-memberships'), head, 'the durable cursor follows the decided events');
      assert.ok((await store.getCursor('activation-changes')) > 0);

      const conn = await ok('POST', '/v1/connections', {
        name: 'MoEngage', destinationId: 'moengage', settings: { appId: 'WS1', dataApiKey: 'moe-key-123', region: '01', baseUrl: moe.url },
      });
      await ok('POST', '/v1/dataflows', {
        name: 'To MoEngage', connectionId: conn['id'], audienceIds: ['gold'],
        mapping: [
          { source: 'identity:crmId', target: { kind: 'identity', name: 'user_id' } },
          { source: 'loyalty.tier', target: { kind: 'attribute', name: 'tier' } },
        ],
      });
      await settle();
      assert.deepEqual(exported(), ['crm-1'], 'the backfill exported the member from before the dataflow');
      await ingest('crm-2', 'gold');
      await settle();
      assert.deepEqual(exported(), ['crm-1', 'crm-2'], 'the remembered "no dataflow" was dropped when the dataflow was saved');
    });

    it('catches up from the durable logs after a restart and after a gap in the messages', async () => {
      await h.ctx.activation.stop();
      await ingest('crm-3', 'gold'); // logged and published while activation is not listening
      await settle();
      assert.ok(!exported().includes('crm-3'));
      h.ctx.activation.start();
      await settle();
      assert.ok(exported().includes('crm-3'), 'the restart read the logs past the durable cursors');

      // An event logged without a message (another process's segmentation), then one with a message.
      await ingest('crm-4', 'silver');
      await settle();
      const { store } = h.ctx;
      const pid = await store.findProfileId('prod', { ns: namespaceKey('crmId'), id: 'crm-4' });
      assert.ok(pid);
      await store.writeMemberships('prod', [{ profileId: pid, audienceId: 'gold', membership: { audienceId: 'gold', status: 'realized', lastQualificationTime: Date.now() }, event: 'realized' }], Date.now());
      assert.ok(!exported().includes('crm-4'));
      await ingest('crm-5', 'gold');
      await settle();
      assert.ok(exported().includes('crm-5'));
      assert.ok(exported().includes('crm-4'), 'the seq jump made activation read the unpublished event from the log');
      assert.equal(await store.getCursor('activation-memberships'), await store.membershipEventHead('prod'));
    });

    it('loads no profile for a sandbox whose only dataflows are edge (pull) ones', async () => {
      const key = (await h.ctx.tenancy.createSandbox({ id: 'edge-only' })).apiKey;
      const call = (url: string, body: unknown): Promise<Record<string, unknown>> => okJson(h, 'POST', url, body, key);
      await call('/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details', 'profile-identifiers'], fields: {} });
      await call('/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
      await call('/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details'], fields: {} });
      await call('/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
      await call('/v1/audiences', { id: 'platinum', name: 'Platinum', query: 'loyalty.tier = "platinum"' });
      const datastreamId = String((await call('/v1/datastreams', { name: 'Site', eventDatasetId: 'web' }))['id']);
      const conn = await call('/v1/connections', { name: 'home', destinationId: 'custom-personalization', settings: { integrationAlias: 'home', datastreamId } });
      await call('/v1/dataflows', { name: 'home', connectionId: conn['id'], audienceIds: ['platinum'], mapping: [] });
      await settle();
      // The store's profile reads from here on (the real store, its method wrapped); activation's
      // are the ones without events (exports carry none).
      const { store } = h.ctx;
      const activationLoads: string[][] = [];
      const loadProfiles = store.loadProfiles.bind(store);
      store.loadProfiles = async (sandboxId, ids, since) => {
        if (since === Number.MAX_SAFE_INTEGER) activationLoads.push([sandboxId, ...ids]);
        return loadProfiles(sandboxId, ids, since);
      };
      try {
        const head = await store.membershipEventHead('edge-only');
        await call('/v1/datasets/crm/records', { identification: { core: { crmId: 'crm-9' } }, loyalty: { tier: 'platinum' } });
        await settle();
        assert.ok((await store.membershipEventHead('edge-only')) > head, 'the record realized platinum');
        assert.deepEqual(activationLoads, [], 'the profile change and the membership event concern no push dataflow');
      } finally {
        store.loadProfiles = loadProfiles;
      }
    });
  });
});
