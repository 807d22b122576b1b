/**
 * Text no store keeps, on every store alike: PostgreSQL keeps the NUL character (U+0000) in
 * neither text nor JSONB and refuses unpaired surrogates (SQLite would store U+FFFD instead), so a
 * record holding either is refused by itself (the valid ones beside it are stored), the edge
 * answers with the event's rejection, and the API refuses bodies, paths and queries holding them
 * with where they are — never an internal error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, type Harness } from '../testing/harness.js';

const ECID = (n: number): string => String(n).padStart(38, '4');
const T = '2025-06-01T09:00:00Z';

interface Detail {
  path: string;
  reason: string;
}

await describeBackends((backend) => {
  describe('text no store keeps', () => {
    let h: Harness;
    let datastreamId = '';
    before(async () => {
      h = await createHarness(await backend.open());
      const post = async (url: string, body: unknown): Promise<Record<string, unknown>> => {
        const r = await h.call('POST', url, body);
        assert.ok(r.statusCode < 300, `${url}: ${r.body}`);
        return r.json();
      };
      await post('/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details'], fields: {} });
      await post('/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details'], fields: {} });
      await post('/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
      await post('/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
      datastreamId = String((await post('/v1/datastreams', { name: 'Site', allowedOrigins: ['*'], eventDatasetId: 'web' }))['id']);
    });
    after(() => h.close());

    const view = (n: number, name: string) => ({
      _id: `e${n}`,
      timestamp: T,
      eventType: 'web.webpagedetails.pageViews',
      web: { webPageDetails: { name } },
      identityMap: { ECID: [{ id: ECID(n) }] },
    });
    const profileOf = async (n: number) => h.call('GET', `/v1/profiles?ns=ecid&id=${ECID(n)}`);

    it('refuses the one record holding it and stores the valid one beside it', async () => {
      const r = await h.call('POST', '/v1/datasets/web/records', [view(1, 'home\u0000page'), view(2, 'home')]);
      assert.equal(r.statusCode, 207, r.body);
      const body = r.json() as { accepted: number; results: Array<{ status: string; code?: string; details?: Detail[]; failedRecordId?: string }> };
      assert.equal(body.accepted, 1);
      assert.equal(body.results[0]?.code, 'VALIDATION_FAILED');
      assert.deepEqual(body.results[0]?.details?.map((d) => [d.path, d.reason]), [['web.webPageDetails.name', 'nul']]);
      assert.equal((await profileOf(1)).statusCode, 404);
      assert.equal((await profileOf(2)).statusCode, 200);
      // Kept as a failed record, to be fixed and replayed.
      const failed = await h.call('GET', `/v1/failed-records?datasetId=web`);
      assert.ok((failed.json() as { items: Array<{ id: string }> }).items.some((f) => f.id === body.results[0]?.failedRecordId), failed.body);
    });

    it('refuses a profile record with it in a value or a key, saying where; an unpaired surrogate too', async () => {
      const r = await h.call('POST', '/v1/datasets/crm/records', { identityMap: { ECID: [{ id: ECID(3) }] }, loyalty: { tier: 'g\u0000old', ['p\u0000']: 1 } });
      assert.equal(r.statusCode, 400, r.body);
      const details = (r.json() as { error: { details: Detail[] } }).error.details;
      assert.deepEqual(details.map((d) => d.path), ['loyalty.tier', 'loyalty.p\\u0000']);
      const s = await h.call('POST', '/v1/datasets/crm/records', { identityMap: { ECID: [{ id: ECID(3) }] }, loyalty: { tier: 'gold\ud800' } });
      assert.equal(s.statusCode, 400, s.body);
      assert.deepEqual((s.json() as { error: { details: Detail[] } }).error.details.map((d) => [d.path, d.reason]), [['loyalty.tier', 'surrogate']]);
      // Paired surrogates are ordinary text.
      const ok = await h.call('POST', '/v1/datasets/crm/records', { identityMap: { ECID: [{ id: ECID(3) }] }, loyalty: { tier: 'gold \ud83d\ude00' } });
      assert.equal(ok.statusCode, 200, ok.body);
    });

    it('edge interact: the event is rejected with its path, the visitor is still answered', async () => {
      const event = view(4, 'x\u0000');
      const r = await h.app.inject({
        method: 'POST',
        url: `/ee/v1/interact?configId=${datastreamId}`,
        headers: { 'content-type': 'text/plain' },
        payload: JSON.stringify({ events: [{ xdm: event }] }),
      });
      assert.equal(r.statusCode, 200, r.body);
      const warnings = (r.json() as { warnings?: Array<{ code: string; report: { details?: Array<{ path: string }> } }> }).warnings ?? [];
      assert.deepEqual(warnings.map((w) => [w.code, w.report.details?.map((d) => d.path)]), [['EVENT_REJECTED', ['web.webPageDetails.name']]]);
    });

    it('bodies nested thousands deep are refused, never a 500: the API by its schema, a record by itself, an edge event with a warning', async () => {
      const depth = 5_000;
      const deepArray = '['.repeat(depth) + ']'.repeat(depth);
      const deepObject = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
      const post = (url: string, payload: string, type = 'application/json') =>
        h.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${h.apiKey}`, 'content-type': type }, payload });
      const api = await post('/v1/audiences', `{"id":"deep","name":"n","query":"loyalty.tier = \\"gold\\"","description":${deepArray}}`);
      assert.equal(api.statusCode, 400, api.body);
      const batch = await post('/v1/datasets/web/records', `[${JSON.stringify(view(6, 'fine'))}, ${deepArray}]`);
      assert.equal(batch.statusCode, 207, batch.body);
      const results = (batch.json() as { results: Array<{ status: string; details?: Detail[]; failedRecordId?: string }> }).results;
      assert.deepEqual(results.map((r) => r.status), ['accepted', 'rejected']);
      assert.deepEqual(results[1]?.details?.map((d) => d.reason), ['depth']);
      assert.equal((await profileOf(6)).statusCode, 200);
      // Kept as a failed record that says why its body is not there.
      const kept = (await h.call('GET', '/v1/failed-records?datasetId=web')).json() as { items: Array<{ id: string; payload: string }> };
      assert.match(kept.items.find((f) => f.id === results[1]?.failedRecordId)?.payload ?? '', /nests too deeply/);
      const edge = await post(`/ee/v1/interact?configId=${datastreamId}`, `{"events":[{"xdm":{"eventType":"x","web":${deepObject}}}]}`, 'text/plain');
      assert.equal(edge.statusCode, 200, edge.body);
      const warnings = (edge.json() as { warnings?: Array<{ code: string; report: { details?: Array<{ path: string }> } }> }).warnings ?? [];
      assert.deepEqual(warnings.map((w) => w.code), ['EVENT_REJECTED']);
    });

    it('the API refuses it in a body, a path parameter or a query, and the ID-sync pixel in its query', async () => {
      const cases: Array<[string, string, unknown, string, string?]> = [
        ['POST', '/v1/audiences', { id: 'a2', name: 'x\udc00', query: 'loyalty.tier = "gold"' }, 'body.name', 'surrogate'],
        ['POST', '/v1/audiences', { id: 'a1', name: 'a\u0000b', query: 'loyalty.tier = "gold"' }, 'body.name'],
        ['POST', '/v1/datastreams', { name: 'Site', urlSyncs: [{ type: 'url', url: 'https://p.example/\u0000' }] }, 'body.urlSyncs[0].url'],
        ['GET', '/v1/audiences/a%00b', undefined, 'params.id'],
        ['GET', `/v1/profiles?ns=ecid&id=1%002`, undefined, 'query.id'],
        ['GET', `/ee/v1/id-sync?configId=${datastreamId}&partner=p&puid=u%00&ecid=${ECID(5)}`, undefined, 'query.puid'],
      ];
      for (const [method, url, body, path, reason = 'nul'] of cases) {
        const r = await h.call(method as 'POST', url, body);
        assert.equal(r.statusCode, 400, `${method} ${url}: ${r.body}`);
        const e = (r.json() as { error: { code: string; details: Detail[] } }).error;
        assert.equal(e.code, 'VALIDATION_FAILED');
        assert.deepEqual(e.details.map((d) => [d.path, d.reason]), [[path, reason]], url);
      }
    });
  });
});
