import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, okJson as ok, type Harness } from '../testing/harness.js';
import { EdgeConfigCache } from './edge-cache.js';

const T0 = Date.parse('2025-06-01T10:00:00Z');
const ecidOf = (n: number): string => String(n).padStart(38, '2');
const pageView = { eventType: 'web.webpagedetails.pageViews', web: { webPageDetails: { URL: 'https://shop.example/' } } };
const VIEWERS = 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.timestamp occurs < 1 hour before now';

interface Lookup {
  destinationId: string;
  alias: string;
  segments: Array<{ id: string }>;
}

await describeBackends((backend) => {
  describe('edge configuration cache', () => {
    let h: Harness;
    let datastreamId = '';
    let connectionId = '';
    let dataflowId = '';

    /** alias → segment ids of one interact answer for visitor `n`. */
    const lookups = async (n: number): Promise<Record<string, string[]>> => {
      const r = await h.app.inject({
        method: 'POST',
        url: `/ee/v1/interact?configId=${datastreamId}`,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ events: [{ xdm: { ...pageView, identityMap: { ECID: [{ id: ecidOf(n), primary: true }] } } }] }),
      });
      assert.equal(r.statusCode, 200, r.body);
      const answer = r.json() as { handle: Array<{ type: string; payload: Lookup[] }> };
      const pulled = answer.handle.filter((x) => x.type === 'activation:pull').flatMap((x) => x.payload);
      return Object.fromEntries(pulled.map((l) => [l.alias, l.segments.map((s) => s.id)]));
    };

    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0, delivery: { pollMs: 3_600_000 } });
      await ok(h, 'POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details'], fields: {} });
      await ok(h, 'POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details'], fields: {} });
      await ok(h, 'POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
      await ok(h, 'POST', '/v1/audiences', { id: 'viewers', name: 'viewers', query: VIEWERS });
      datastreamId = String((await ok(h, 'POST', '/v1/datastreams', { name: 'Site', eventDatasetId: 'web' }))['id']);
      const conn = await ok(h, 'POST', '/v1/connections', { name: 'home', destinationId: 'custom-personalization', settings: { integrationAlias: 'home', datastreamId } });
      connectionId = String(conn['id']);
      dataflowId = String((await ok(h, 'POST', '/v1/dataflows', { name: 'home', connectionId, audienceIds: ['viewers'], mapping: [] }))['id']);
    });
    after(() => h.close());

    it('answers from the cached configuration, and shows a newly mapped audience on the next request', async () => {
      assert.deepEqual(await lookups(1), { home: ['viewers'] });
      await ok(h, 'POST', '/v1/audiences', { id: 'viewers-too', name: 'viewers too', query: VIEWERS });
      // Created but not mapped: not in the answer.
      assert.deepEqual(await lookups(1), { home: ['viewers'] });
      await ok(h, 'PUT', `/v1/dataflows/${dataflowId}`, { name: 'home', connectionId, audienceIds: ['viewers', 'viewers-too'], mapping: [] });
      // Mapped now, and realised by this very request (same page).
      assert.deepEqual(await lookups(2), { home: ['viewers', 'viewers-too'] });
    });

    it('drops a paused dataflow, a new connection shows up, a removed one is gone', async () => {
      await ok(h, 'POST', `/v1/dataflows/${dataflowId}/pause`);
      assert.deepEqual(await lookups(3), { home: [] });
      await ok(h, 'POST', `/v1/dataflows/${dataflowId}/resume`);
      assert.deepEqual(await lookups(3), { home: ['viewers', 'viewers-too'] });

      const ads = String((await ok(h, 'POST', '/v1/connections', { name: 'ads', destinationId: 'custom-personalization', settings: { integrationAlias: 'ads', datastreamId } }))['id']);
      assert.deepEqual(await lookups(4), { home: ['viewers', 'viewers-too'], ads: [] });
      const adsFlow = String((await ok(h, 'POST', '/v1/dataflows', { name: 'ads', connectionId: ads, audienceIds: ['viewers-too'], mapping: [] }))['id']);
      assert.deepEqual(await lookups(4), { home: ['viewers', 'viewers-too'], ads: ['viewers-too'] });

      await ok(h, 'DELETE', `/v1/dataflows/${adsFlow}`);
      await ok(h, 'DELETE', `/v1/connections/${ads}`);
      assert.deepEqual(await lookups(5), { home: ['viewers', 'viewers-too'] });
    });

    it('is rebuilt by the services’ change hooks, not by its time limit', async () => {
      // A frozen clock: the entry never expires, so only invalidation can show a change.
      const cache = new EdgeConfigCache({ connections: h.ctx.connections, dataflows: h.ctx.dataflows, audiences: h.ctx.audiences, clock: () => 0 });
      const invalidate = (sandboxId: string): void => cache.invalidate(sandboxId);
      h.ctx.connections.onChanged(invalidate);
      h.ctx.dataflows.onChanged(invalidate);
      h.ctx.audiences.onChanged(invalidate);
      const mapped = async (): Promise<string[]> => (await cache.get('prod')).lookups(datastreamId).flatMap((c) => [...c.audienceIds]);
      const edgeIds = async (): Promise<string[]> => (await cache.get('prod')).edgeAudiences.map((a) => a.row.id).sort();

      assert.deepEqual(await mapped(), ['viewers', 'viewers-too']);
      const first = await cache.get('prod');
      assert.equal(await cache.get('prod'), first, 'served from memory');
      // A write that bypasses the services is not seen: the configuration is really cached.
      const flow = await h.ctx.dataflows.get('prod', dataflowId);
      await h.ctx.store.putDoc('prod', 'dataflow', dataflowId, { ...flow, audienceIds: ['viewers'] });
      assert.deepEqual(await mapped(), ['viewers', 'viewers-too']);
      // Through the service: the hook drops the entry.
      await h.ctx.dataflows.update('prod', dataflowId, { name: 'home', connectionId, audienceIds: ['viewers'], mapping: [] });
      assert.deepEqual(await mapped(), ['viewers']);

      await h.ctx.audiences.create('prod', { id: 'gold', name: 'gold', query: 'loyalty.tier = "gold"' });
      assert.deepEqual(await edgeIds(), ['gold', 'viewers', 'viewers-too']);
      await h.ctx.audiences.delete('prod', 'gold');
      assert.deepEqual(await edgeIds(), ['viewers', 'viewers-too']);

      await h.ctx.dataflows.delete('prod', dataflowId);
      assert.deepEqual((await cache.get('prod')).lookups(datastreamId), [{ connectionId, alias: 'home', audienceIds: [], mapped: new Set() }]);
      await h.ctx.connections.delete('prod', connectionId);
      assert.deepEqual((await cache.get('prod')).lookups(datastreamId), []);
    });
  });
});
