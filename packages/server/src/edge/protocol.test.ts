/**
 * The parts of the Experience Edge protocol the Adobe Web SDK relies on beyond interact, on both
 * backends: region paths and `locationHint:result`, `identity/acquire`, `privacy/set-consent`
 * (Adobe 1.0 and 2.0) stored on the profile and honoured afterwards, and URL syncs fired once
 * per TTL through the sync-state cookie.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, okJson, type Harness } from '../testing/harness.js';
import { decodeIdentityCookie } from './ecid.js';
import { DEFAULT_LOCATION_HINT } from './edge-service.js';

const ORIGIN = 'https://shop.example';
const ORG = 'ACME@AdobeOrg';
const T0 = Date.parse('2025-06-01T10:00:00Z');
const ecidOf = (n: number): string => String(n).padStart(38, '2');

interface Answer {
  requestId: string;
  handle: Array<{ type: string; payload: Array<Record<string, unknown>> }>;
  warnings?: Array<{ code: string }>;
}
type Entry = { key: string; value: string; maxAge?: number };

function payloads(a: Answer, type: string): Array<Record<string, unknown>> {
  return a.handle.filter((x) => x.type === type).flatMap((x) => x.payload);
}
function stored(a: Answer, key: string): Entry | undefined {
  return (payloads(a, 'state:store') as unknown as Entry[]).find((e) => e.key === key);
}
function segments(a: Answer): string[] {
  return (payloads(a, 'activation:pull') as unknown as Array<{ segments: Array<{ id: string }> }>).flatMap((l) => l.segments.map((s) => s.id));
}

await describeBackends((backend) => {
  describe('edge protocol for the Adobe Web SDK', () => {
    let h: Harness;
    let clock = T0;
    let datastreamId = '';
    let noProfileDataset = '';

    const post = (path: string, body: unknown): Promise<LightMyRequestResponse> =>
      h.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'text/plain;charset=UTF-8', origin: ORIGIN }, payload: JSON.stringify(body) });
    const answer = async (path: string, body: unknown): Promise<Answer> => {
      const r = await post(path, body);
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
      return r.json();
    };
    const profile = async (ecid: string) => {
      const r = await h.call('GET', `/v1/profiles?ns=ecid&id=${ecid}`);
      return r.statusCode === 404 ? undefined : (r.json() as { attributes: Record<string, unknown>; events: { items: Array<Record<string, unknown>> } });
    };
    const settle = async () => {
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
    };
    const ok = (method: 'POST', url: string, body: unknown): Promise<Record<string, unknown>> => okJson(h, method, url, body);
    const view = (ecid: string) => ({ events: [{ xdm: { eventType: 'web.webpagedetails.pageViews', identityMap: { ECID: [{ id: ecid }] } } }] });

    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock, delivery: { pollMs: 3_600_000 } });
      await ok('POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details', 'profile-consents'], fields: {} });
      await ok('POST', '/v1/schemas', { id: 'loyalty', name: 'Loyalty', class: 'profile', fieldGroups: ['profile-loyalty-details'], fields: {} });
      await ok('POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details'], fields: {} });
      await ok('POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
      await ok('POST', '/v1/datasets', { id: 'loyalty', name: 'Loyalty', schemaId: 'loyalty', profileEnabled: true });
      await ok('POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
      await ok('POST', '/v1/audiences', { id: 'viewers', name: 'viewers', query: 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.timestamp occurs < 1 hour before now' });
      const input = {
        name: 'Shop',
        allowedOrigins: [ORIGIN],
        eventDatasetId: 'web',
        profileDatasetId: 'crm',
        orgId: ORG,
        urlSyncs: [{ id: 'pixel', type: 'url', url: 'https://partner.example/sync?uid={ECID}', ttlMinutes: 60 }],
      };
      datastreamId = String((await ok('POST', '/v1/datastreams', input))['id']);
      const { profileDatasetId: _, ...withoutProfile } = input;
      noProfileDataset = String((await ok('POST', '/v1/datastreams', { ...withoutProfile, name: 'No consent storage' }))['id']);
      const connectionId = String(
        (await ok('POST', '/v1/connections', { name: 'p', destinationId: 'custom-personalization', settings: { integrationAlias: 'personalizationAlias', datastreamId } }))['id'],
      );
      await ok('POST', '/v1/dataflows', { name: 'p', connectionId, audienceIds: ['viewers'], mapping: [] });
    });
    after(() => h.close());

    it('rejects a profile dataset without consents for a datastream', async () => {
      const r = await h.call('POST', '/v1/datastreams', { name: 'x', profileDatasetId: 'loyalty' });
      assert.equal(r.statusCode, 400, r.body);
      assert.match(r.body, /profileDatasetId/);
      const events = await h.call('POST', '/v1/datastreams', { name: 'x', profileDatasetId: 'web' });
      assert.equal(events.statusCode, 400, events.body);
    });

    it('answers every path with a region too, and the location hint the SDK keeps', async () => {
      const plain = await answer(`/ee/v1/interact?configId=${datastreamId}`, view(ecidOf(1)));
      assert.deepEqual(payloads(plain, 'locationHint:result'), [{ scope: 'EdgeNetwork', hint: DEFAULT_LOCATION_HINT, ttlSeconds: 1800 }]);
      assert.equal(stored(plain, 'kndctr_ACME_AdobeOrg_cluster')?.value, DEFAULT_LOCATION_HINT);

      const regional = await answer(`/ee/irl1/v1/interact?configId=${datastreamId}&requestId=r-1`, view(ecidOf(1)));
      assert.equal(regional.requestId, 'r-1');
      assert.deepEqual(payloads(regional, 'locationHint:result'), [{ scope: 'EdgeNetwork', hint: 'irl1', ttlSeconds: 1800 }]);
      assert.equal(stored(regional, 'kndctr_ACME_AdobeOrg_cluster')?.value, 'irl1');

      const collect = await post(`/ee/irl1/v1/collect?configId=${datastreamId}`, view(ecidOf(1)));
      assert.equal(collect.statusCode, 204, collect.body);
      const consent = await post(`/ee/va6/v1/privacy/set-consent?configId=${datastreamId}`, { consent: [{ standard: 'Adobe', version: '1.0', value: { general: 'in' } }] });
      assert.equal(consent.statusCode, 200, consent.body);
      const acquire = await post(`/ee/t35/v1/identity/acquire?configId=${datastreamId}`, { query: { identity: { fetch: ['ECID'] } } });
      assert.equal(acquire.statusCode, 200, acquire.body);
      const preflight = await h.app.inject({ method: 'OPTIONS', url: `/ee/irl1/v1/interact?configId=${datastreamId}`, headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
      assert.equal(preflight.statusCode, 204);

      for (const path of [`/ee/bad-region!/v1/interact?configId=${datastreamId}`, `/ee/irl1/v2/interact?configId=${datastreamId}`, `/ee/a/b/v1/interact?configId=${datastreamId}`]) {
        const r = await post(path, view(ecidOf(1)));
        assert.equal(r.statusCode, 404, `${path}: ${r.body}`);
        assert.equal(r.json().title, 'Not found');
      }
      const unknown = await post('/ee/irl1/v1/interact?configId=nope', view(ecidOf(1)));
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json().title, 'Unknown datastream');
    });

    it("identity/acquire (getIdentity) mints an ECID without events and keeps the cookie's one", async () => {
      const first = await answer(`/ee/v1/identity/acquire?configId=${datastreamId}`, { query: { identity: { fetch: ['ECID'] } }, meta: { state: { entries: [] } } });
      const [result] = payloads(first, 'identity:result') as Array<{ id: string; namespace: { code: string } }>;
      assert.match(result?.id ?? '', /^\d{38}$/);
      assert.equal(result?.namespace.code, 'ECID');
      const cookie = stored(first, 'kndctr_ACME_AdobeOrg_identity');
      assert.equal(decodeIdentityCookie(cookie?.value ?? ''), result?.id);
      assert.equal(payloads(first, 'activation:pull').length, 0);
      assert.equal(await profile(result?.id ?? ''), undefined, 'acquire stores nothing');

      const again = await answer(`/ee/v1/identity/acquire?configId=${datastreamId}`, { meta: { state: { entries: [{ key: 'kndctr_ACME_AdobeOrg_identity', value: cookie?.value ?? '' }] } } });
      assert.equal((payloads(again, 'identity:result')[0] as { id: string }).id, result?.id);
    });

    it('reads the state cookies from the Cookie header when the edge domain is first-party (no meta.state.entries)', async () => {
      const first = await answer(`/ee/v1/interact?configId=${datastreamId}`, { events: [{ xdm: { eventType: 'web.webpagedetails.pageViews' } }] });
      const ecid = (payloads(first, 'identity:result')[0] as { id: string }).id;
      const cookie = stored(first, 'kndctr_ACME_AdobeOrg_identity')?.value ?? '';
      const viaHeader = await h.app.inject({
        method: 'POST',
        url: `/ee/v1/interact?configId=${datastreamId}`,
        headers: { 'content-type': 'text/plain;charset=UTF-8', origin: ORIGIN, cookie: `theme=dark; kndctr_ACME_AdobeOrg_identity=${cookie}; kndctr_ACME_AdobeOrg_consent=general%3Dout` },
        payload: JSON.stringify({ events: [{ xdm: { eventType: 'web.webpagedetails.pageViews' } }] }),
      });
      assert.equal(viaHeader.statusCode, 200, viaHeader.body);
      const body = viaHeader.json() as Answer;
      assert.equal((payloads(body, 'identity:result')[0] as { id: string }).id, ecid, 'the same visitor, not a new ECID');
      assert.deepEqual(body.warnings?.map((w) => w.code), ['COLLECT_CONSENT_REFUSED'], 'the consent cookie is honoured too');
    });

    it('fires a URL sync once per TTL per browser: the edge remembers it in the sync-state cookie', async () => {
      clock = T0;
      const first = await answer(`/ee/v1/interact?configId=${datastreamId}`, view(ecidOf(2)));
      assert.deepEqual(payloads(first, 'activation:push').map((s) => s['id']), ['pixel']);
      const state = stored(first, 'kndctr_ACME_AdobeOrg_syncs');
      assert.ok(state, 'sync state stored');
      assert.equal(state.maxAge, 3600);
      const entries = [{ key: 'kndctr_ACME_AdobeOrg_syncs', value: state.value }];

      clock = T0 + 59 * 60_000;
      const within = await answer(`/ee/v1/interact?configId=${datastreamId}`, { ...view(ecidOf(2)), meta: { state: { entries } } });
      assert.equal(payloads(within, 'activation:push').length, 0, 'not again within the TTL');
      clock = T0 + 61 * 60_000;
      const afterTtl = await answer(`/ee/v1/interact?configId=${datastreamId}`, { ...view(ecidOf(2)), meta: { state: { entries } } });
      assert.deepEqual(payloads(afterTtl, 'activation:push').map((s) => s['id']), ['pixel']);
      // A garbled state cookie is ignored, never an error.
      const garbled = await answer(`/ee/v1/interact?configId=${datastreamId}`, { ...view(ecidOf(2)), meta: { state: { entries: [{ key: 'kndctr_ACME_AdobeOrg_syncs', value: '%%%' }] } } });
      assert.equal(payloads(garbled, 'activation:push').length, 1);
      clock = T0;
    });

    it('set-consent Adobe 2.0: stored as XDM consents on the profile; personalize=n empties the lookups, collection goes on', async () => {
      const ecid = ecidOf(3);
      const before = await answer(`/ee/v1/interact?configId=${datastreamId}`, view(ecid));
      assert.deepEqual(segments(before), ['viewers']);

      const time = '2025-06-01T09:00:00Z';
      const r = await answer(`/ee/v1/privacy/set-consent?configId=${datastreamId}`, {
        consent: [{ standard: 'Adobe', version: '2.0', value: { collect: { val: 'y' }, personalize: { content: { val: 'n' } }, metadata: { time } } }],
        identityMap: { ECID: [{ id: ecid }], CRMID: [{ id: 'crm-3' }] },
      });
      assert.deepEqual(payloads(r, 'consent:preferences'), [{ collect: { val: 'y', time }, personalize: { content: { val: 'n', time } }, metadata: { time: new Date(T0).toISOString() } }]);
      assert.equal(stored(r, 'kndctr_ACME_AdobeOrg_consent')?.value, 'general=in');
      assert.equal((payloads(r, 'identity:result')[0] as { id: string }).id, ecid);
      await settle();
      const p = await profile(ecid);
      assert.deepEqual(p?.attributes['consents'], { collect: { val: 'y', time }, personalize: { content: { val: 'n', time } } });
      // The page's other identity joined the same profile.
      const byCrm = await h.call('GET', '/v1/profiles?ns=crmid&id=crm-3');
      assert.equal(byCrm.statusCode, 200, byCrm.body);

      const afterwards = await answer(`/ee/v1/interact?configId=${datastreamId}`, view(ecid));
      assert.deepEqual(segments(afterwards), [], 'no personalization');
      assert.equal(afterwards.warnings, undefined);
      assert.equal((await profile(ecid))?.events.items.length, 2, 'still collected');
    });

    it('set-consent Adobe 1.0 general=out: no collection and no syncs for that visitor, by profile or by cookie', async () => {
      const ecid = ecidOf(4);
      await answer(`/ee/v1/interact?configId=${datastreamId}`, view(ecid));
      const out = await answer(`/ee/v1/privacy/set-consent?configId=${datastreamId}`, { consent: [{ standard: 'Adobe', version: '1.0', value: { general: 'out' } }], identityMap: { ECID: [{ id: ecid }] } });
      assert.equal(stored(out, 'kndctr_ACME_AdobeOrg_consent')?.value, 'general=out');
      await settle();
      assert.equal(((await profile(ecid))?.attributes['consents'] as { collect: { val: string } }).collect.val, 'n');

      const refused = await answer(`/ee/v1/interact?configId=${datastreamId}`, view(ecid));
      assert.deepEqual(refused.warnings?.map((w) => w.code), ['COLLECT_CONSENT_REFUSED']);
      assert.equal(payloads(refused, 'activation:push').length, 0);
      assert.deepEqual(segments(refused), [], 'general=out refuses personalization too');
      assert.equal((await profile(ecid))?.events.items.length, 1, 'the refused event was not stored');

      // Opting back in (the same ECID) lets events in again.
      await answer(`/ee/v1/privacy/set-consent?configId=${datastreamId}`, { consent: [{ standard: 'Adobe', version: '1.0', value: { general: 'in' } }], identityMap: { ECID: [{ id: ecid }] } });
      await settle();
      const back = await answer(`/ee/v1/interact?configId=${datastreamId}`, view(ecid));
      assert.equal(back.warnings, undefined);
      assert.equal((await profile(ecid))?.events.items.length, 2);

      // A consent cookie saying out is honoured even for a visitor with no stored consent.
      const other = ecidOf(5);
      const byCookie = await answer(`/ee/v1/interact?configId=${datastreamId}`, { ...view(other), meta: { state: { entries: [{ key: 'kndctr_ACME_AdobeOrg_consent', value: 'general=out' }] } } });
      assert.deepEqual(byCookie.warnings?.map((w) => w.code), ['COLLECT_CONSENT_REFUSED']);
      assert.equal(await profile(other), undefined);
    });

    it('set-consent: malformed or unsupported preferences are clear 400s; IAB TCF is accepted with a warning; no profile dataset warns', async () => {
      const url = `/ee/v1/privacy/set-consent?configId=${datastreamId}`;
      const cases: Array<[unknown, RegExp]> = [
        [{}, /Malformed/],
        [{ consent: [] }, /Malformed/],
        [{ consent: [{ standard: 'Adobe', version: '1.0', value: { general: 'maybe' } }] }, /general/],
        [{ consent: [{ standard: 'Adobe', version: '2.0', value: { collect: { val: 'yes' } } }] }, /collect\.val/],
        [{ consent: [{ standard: 'Adobe', version: '2.0', value: { colect: { val: 'y' } } }] }, /unknown consent purpose colect/],
        [{ consent: [{ standard: 'Acme', version: '9', value: {} }] }, /unsupported consent standard/],
        [{ consent: [{ standard: 'Adobe', version: '1.0', value: { general: 'in' } }], identityMap: { ECID: [{ id: '12' }] } }, /ECID/],
      ];
      for (const [body, detail] of cases) {
        const r = await post(url, body);
        assert.equal(r.statusCode, 400, `${JSON.stringify(body)}: ${r.body}`);
        assert.match(`${r.json().title} ${r.json().detail}`, detail);
      }
      const tcf = await answer(url, { consent: [{ standard: 'IAB TCF', version: '2.0', value: 'CO052l-O052l-DGAMBFRACBgAIBAAAAAAIYgEawAQEagAAAA', gdprApplies: true }] });
      assert.deepEqual(tcf.warnings?.map((w) => w.code), ['CONSENT_NOT_INTERPRETED']);
      assert.equal(payloads(tcf, 'consent:preferences').length, 0);

      const unstored = await answer(`/ee/v1/privacy/set-consent?configId=${noProfileDataset}`, { consent: [{ standard: 'Adobe', version: '1.0', value: { general: 'out' } }] });
      assert.deepEqual(unstored.warnings?.map((w) => w.code), ['CONSENT_NOT_STORED']);
      assert.equal(stored(unstored, 'kndctr_ACME_AdobeOrg_consent')?.value, 'general=out', 'the browser still keeps the choice');
    });
  });
});
