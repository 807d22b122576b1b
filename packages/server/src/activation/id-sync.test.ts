/**
 * Partner push addressed by the ID-sync table (seed 002), on every storage backend: syncs arrive
 * by the pixel (ECID in the URL or in the identity cookie) and by the API; qualified profiles are
 * delivered to the real test receiver under the partner's uid; profiles without a synced id are
 * excluded and counted with that reason; a privacy delete removes the profile's syncs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeBackends } from '@audient/storage/testing';
import { encodeIdentityCookie } from '../edge/ecid.js';
import { createHarness, okJson as ok, settle, type Harness } from '../testing/harness.js';
import { startReceiver, type Receiver } from '../testing/receiver.js';
import { NO_SYNCED_ID } from './activation.js';

const ALICE = '11111111111111111111111111111111111111';
const BOB = '22222222222222222222222222222222222222';
const CAROL = '33333333333333333333333333333333333333';

interface Message {
  type: string;
  dataSourceId: string;
  users: Array<{ uid: string; added: string[]; removed: string[]; eventId: string }>;
}

await describeBackends((backend) => {
  describe('partner push addressed by ID syncs', () => {
    let h: Harness;
    let receiver: Receiver;
    let connectionId = '';
    let dataflowId = '';
    let configId = '';

    const users = (): Message['users'] => receiver.accepted.flatMap((r) => (r.json as Message).users);
    const pixel = (query: string, cookie?: string) =>
      h.app.inject({ method: 'GET', url: `/ee/v1/id-sync?${query}`, ...(cookie ? { headers: { cookie } } : {}) });

    before(async () => {
      receiver = await startReceiver({
        respond: (req) => ({ body: { results: ((req.json as Message).users ?? []).map((u) => ({ uid: u.uid, status: 'accepted' })) } }),
      });
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { delivery: { pollMs: 3_600_000, baseBackoffMs: 10 } });
      await ok(h, 'POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-person-details'], fields: {} });
      await ok(h, 'POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
      await ok(h, 'POST', '/v1/audiences', { id: 'johns', name: 'Johns', query: 'person.name.firstName = "John"' });
      configId = (await ok(h, 'POST', '/v1/datastreams', { name: 'Web', orgId: 'ACME@AdobeOrg', allowedOrigins: ['*'] }))['id'] as string;
      const conn = await ok(h, 'POST', '/v1/connections', {
        name: 'Partner', destinationId: 'partner-push', settings: { endpoint: `${receiver.url}/partner`, dataSourceId: 'audient-test', authToken: 'pt-secret' },
      });
      connectionId = conn['id'] as string;
    });
    after(async () => {
      await h.close();
      await receiver.close();
    });

    it('refuses a dataflow mapping the partner id: it comes from the ID syncs', async () => {
      const bad = await h.call('POST', '/v1/dataflows', {
        name: 'x', connectionId, audienceIds: ['johns'], mapping: [{ source: 'identity:ecid', target: { kind: 'identity', name: 'partner_uid' } }],
      });
      assert.equal(bad.statusCode, 400, bad.body);
      assert.match(bad.body, /ID syncs/);
      dataflowId = (await ok(h, 'POST', '/v1/dataflows', { name: 'To partner', connectionId, audienceIds: ['johns'], mapping: [] }))['id'] as string;
      await h.ctx.jobs.idle();
    });

    it('stores syncs from the pixel (URL or cookie ECID) and the API, and refuses bad ones', async () => {
      const r = await pixel(`configId=${configId}&partner=${connectionId}&puid=P-ALICE&ecid=${ALICE}`);
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.headers['content-type'], 'image/gif');
      assert.match(String(r.headers['cache-control']), /no-store/);
      const c = await pixel(`configId=${configId}&partner=${connectionId}&puid=P-CAROL`, `other=1; kndctr_ACME_AdobeOrg_identity=${encodeURIComponent(encodeIdentityCookie(CAROL))}`);
      assert.equal(c.statusCode, 200, c.body);
      assert.equal((await pixel(`configId=${configId}&partner=${connectionId}&puid=P-X`)).statusCode, 400, 'no ECID at all');
      assert.equal((await pixel(`configId=${configId}&partner=${connectionId}&puid=P-X&ecid=123`)).statusCode, 400, 'not an ECID');
      assert.equal((await pixel(`configId=nope&partner=${connectionId}&puid=P-X&ecid=${ALICE}`)).statusCode, 404);
      assert.equal((await pixel(`configId=${configId}&partner=nope&puid=P-X&ecid=${ALICE}`)).statusCode, 404);

      const api = await h.call('POST', `/v1/connections/${connectionId}/id-syncs`, { syncs: [{ ecid: BOB, partnerUid: 'P-BOB-OLD' }, { ecid: BOB, partnerUid: 'P-BOB' }] });
      assert.equal(api.statusCode, 200, api.body);
      assert.deepEqual(api.json(), { synced: 2 });
      const bad = await h.call('POST', `/v1/connections/${connectionId}/id-syncs`, { syncs: [{ ecid: BOB, partnerUid: 'has space' }] });
      assert.equal(bad.statusCode, 400);
      assert.match(bad.body, /syncs\.0\.partnerUid/);
      assert.equal((await h.call('GET', `/v1/connections/${connectionId}/id-syncs?ecid=${BOB}`)).json().partnerUid, 'P-BOB', 'the later sync wins');
      assert.equal((await h.call('GET', `/v1/connections/${connectionId}/id-syncs?ecid=${CAROL}`)).json().partnerUid, 'P-CAROL');

      const other = await ok(h, 'POST', '/v1/connections', {
        name: 'Collector', destinationId: 'http-api', settings: { httpEndpoint: `${receiver.url}/x`, authEndpoint: `${receiver.url}/t`, clientId: 'a', clientSecret: 'b' },
      });
      assert.equal((await h.call('POST', `/v1/connections/${other['id']}/id-syncs`, { syncs: [{ ecid: BOB, partnerUid: 'P' }] })).statusCode, 400, 'not a partner destination');
    });

    it('pushes qualified profiles under their synced partner ids and excludes the unsynced with the reason', async () => {
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: ALICE }] }, person: { name: { firstName: 'John' } } });
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: BOB }] }, person: { name: { firstName: 'John' } } });
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'dave@example.com' }] }, person: { name: { firstName: 'John' } } });
      await settle(h);
      // A profile may be sent more than once (its entry, then e.g. realized → existing): the same state.
      const got = new Set(users().map((u) => `${u.uid}:+${u.added.join(',')}:-${u.removed.join(',')}`));
      assert.deepEqual([...got].sort(), ['P-ALICE:+johns:-', 'P-BOB:+johns:-']);
      const last = receiver.accepted.at(-1)!;
      assert.equal(last.url, '/partner');
      assert.equal(last.bearer, 'pt-secret');
      assert.equal((last.json as Message).dataSourceId, 'audient-test');
      const runs = (await h.call('GET', `/v1/dataflows/${dataflowId}/runs`)).json().items as Array<Record<string, any>>;
      assert.deepEqual(Object.keys(runs[0]!['excluded']), [NO_SYNCED_ID], 'dave has no ECID synced');
      assert.ok(runs[0]!['excluded'][NO_SYNCED_ID] >= 1);
      assert.equal(runs[0]!['activated'], receiver.accepted.reduce((n, r) => n + (r.json as Message).users.length, 0));

      const dry = (await h.call('POST', `/v1/dataflows/${dataflowId}/dry-run`, { ns: 'email', id: 'dave@example.com' })).json();
      assert.deepEqual({ decision: dry.decision, reason: dry.reason }, { decision: 'exclude', reason: NO_SYNCED_ID });
      const dryBob = (await h.call('POST', `/v1/dataflows/${dataflowId}/dry-run`, { ns: 'ecid', id: BOB })).json();
      assert.equal(JSON.parse(dryBob.requests[0].body).users[0].uid, 'P-BOB');
    });

    it('a profile leaving the audience is pushed as removed under its partner id', async () => {
      const before = receiver.accepted.length;
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: BOB }] }, person: { name: { firstName: 'Robert' } } });
      await settle(h);
      const sent = receiver.accepted.slice(before).flatMap((r) => (r.json as Message).users);
      assert.deepEqual(sent.map((u) => `${u.uid}:+${u.added.join(',')}:-${u.removed.join(',')}`), ['P-BOB:+:-johns']);
    });

    it("a privacy delete removes the person's ID syncs", async () => {
      const del = await h.call('POST', '/v1/privacy/deletes', { ns: 'ecid', id: ALICE });
      assert.equal(del.statusCode, 202, del.body);
      await h.ctx.jobs.idle();
      assert.equal((await h.call('GET', `/v1/connections/${connectionId}/id-syncs?ecid=${ALICE}`)).statusCode, 404);
      assert.equal((await h.call('GET', `/v1/connections/${connectionId}/id-syncs?ecid=${BOB}`)).statusCode, 200, 'others keep theirs');
      assert.equal((await h.call('DELETE', `/v1/connections/${connectionId}/id-syncs?ecid=${BOB}`)).statusCode, 204);
      assert.equal((await h.call('GET', `/v1/connections/${connectionId}/id-syncs?ecid=${BOB}`)).statusCode, 404);
    });
  });
});
