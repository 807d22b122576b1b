import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, okJson as ok, settle, deliverNow as deliver, type Harness } from '../testing/harness.js';
import { startOAuthServer, type OAuthServer } from '../testing/oauth-server.js';
import { startReceiver, type Receiver } from '../testing/receiver.js';

// Seed 001's profile: two ECIDs, two hashed emails.
const seedProfile = {
  person: { birthDate: '1980-05-25', name: { firstName: 'John', lastName: 'Doe' } },
  personalEmail: { address: 'john.doe@acme.com' },
  identityMap: {
    ecid: [{ id: '14575006536349286404619648085736425115' }, { id: '66478888669296734530114754794777368480' }],
    email_lc_sha256: [{ id: '655332b5fa2aea4498bf7a290cff017cb4' }, { id: '66baf76ef9de8b42df8903f00e0e3dc0b7' }],
  },
};
const ECID = '14575006536349286404619648085736425115';

await describeBackends((backend) => {
  describe('activation to the HTTP API destination', () => {
    let h: Harness;
    let oauth: OAuthServer;
    let receiver: Receiver;
    let clock = Date.parse('2025-05-25T21:00:00Z');
    let dataflowId = '';

    before(async () => {
      oauth = await startOAuthServer({ clients: [{ clientId: 'audient', clientSecret: 's3cr3t-value', auth: 'client_secret_post' }] });
      receiver = await startReceiver({ verifyBearer: async (t) => (await oauth.introspect(t)).active });
      h = await createHarness(
        await backend.open(),
        { segmentation: { tickMs: 0, batchTime: '' } },
        { now: () => clock, delivery: { pollMs: 3_600_000, baseBackoffMs: 10 } },
      );
      await ok(h, 'POST', '/v1/schemas', {
        id: 'crm', name: 'CRM', class: 'profile',
        fieldGroups: ['profile-person-details', 'profile-personal-contact-details', 'profile-loyalty-details'], fields: {},
      });
      await ok(h, 'POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
      await ok(h, 'POST', '/v1/audiences', { id: 'johns', name: 'Johns', query: 'person.name.firstName = "John"' });
      await ok(h, 'POST', '/v1/audiences', { id: 'gold', name: 'Gold', query: 'loyalty.tier = "gold"' });
      const conn = await ok(h, 'POST', '/v1/connections', {
        name: 'Collector',
        destinationId: 'http-api',
        settings: {
          httpEndpoint: `${receiver.url}/profiles?source=audient`,
          authEndpoint: oauth.tokenUrl,
          clientId: 'audient',
          clientSecret: 's3cr3t-value',
          customHeaders: 'X-Tenant:acme,X-Env:test',
        },
      });
      assert.deepEqual(conn['settings'] && (conn['settings'] as Record<string, unknown>)['clientSecret'], { set: true });
      const flow = await ok(h, 'POST', '/v1/dataflows', {
        name: 'To collector',
        connectionId: conn['id'],
        audienceIds: ['johns', 'gold'],
        mapping: [
          { source: 'person.name.firstName', target: { kind: 'attribute', name: 'person.name.firstName' } },
          { source: 'person.name.lastName', target: { kind: 'attribute', name: 'person.name.lastName' } },
          { source: 'person.birthDate', target: { kind: 'attribute', name: 'person.birthDate' } },
          { source: 'personalEmail.address', target: { kind: 'attribute', name: 'personalEmail.address' } },
        ],
      });
      dataflowId = flow['id'] as string;
    });
    after(async () => {
      await h.close();
      await receiver.close();
      await oauth.close();
    });

    it('exports seed 001 profile shape with a valid bearer token and the custom headers', async () => {
      await ok(h, 'POST', '/v1/datasets/crm/records', { ...seedProfile, loyalty: { tier: 'gold' } });
      await settle(h);
      clock += 60_000;
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: ECID }] }, loyalty: { tier: 'silver' } });
      await settle(h);
      const got = receiver.accepted;
      assert.ok(got.length >= 2, `expected the entry and the exit, got ${got.length}`);
      const last = got.at(-1)!;
      assert.equal(last.url, '/profiles?source=audient');
      assert.equal(last.headers['x-tenant'], 'acme');
      assert.equal(last.headers['x-env'], 'test');
      assert.ok(last.bearer && (await oauth.introspect(last.bearer)).active, 'a live OAuth2 token');
      assert.ok(last.headers['idempotency-key']);
      const body = last.json as Record<string, any>;
      assert.deepEqual(body['person'], seedProfile.person);
      assert.deepEqual(body['personalEmail'], seedProfile.personalEmail);
      assert.equal(body['segmentMembership'].ups.gold.status, 'exited');
      assert.match(body['segmentMembership'].ups.gold.lastQualificationTime, /^2025-05-25T21:01:00Z$/);
      assert.ok(['realized', 'existing'].includes(body['segmentMembership'].ups.johns.status));
      assert.deepEqual(
        Object.fromEntries(Object.entries(body['identityMap'] as Record<string, Array<{ id: string }>>).map(([k, v]) => [k, v.map((x) => x.id).sort()])),
        { ecid: seedProfile.identityMap.ecid.map((x) => x.id).sort(), email_lc_sha256: seedProfile.identityMap.email_lc_sha256.map((x) => x.id).sort() },
      );
      assert.equal(oauth.issued, 1, 'the token is cached between requests');
    });

    it('retries 5xx and 429 (honouring Retry-After), refreshes an expired token, never retries a 400', async () => {
      const before = receiver.requests.length;
      receiver.failNext(1, { status: 503 });
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: ECID }] }, person: { name: { lastName: 'Doe-Smith' } } });
      await settle(h);
      clock += 60_000;
      await deliver(h);
      assert.equal((receiver.accepted.at(-1)!.json as any).person.name.lastName, 'Doe-Smith');
      assert.equal(receiver.requests.length - before, 2);

      receiver.failNext(1, { status: 429, retryAfter: 120 });
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: ECID }] }, person: { name: { lastName: 'Doe-2' } } });
      await settle(h);
      clock += 60_000;
      await deliver(h);
      assert.notEqual((receiver.accepted.at(-1)!.json as any).person.name.lastName, 'Doe-2', 'not before Retry-After');
      clock += 70_000;
      await deliver(h);
      assert.equal((receiver.accepted.at(-1)!.json as any).person.name.lastName, 'Doe-2');

      receiver.expireTokens();
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: ECID }] }, person: { name: { lastName: 'Doe-3' } } });
      await settle(h);
      assert.equal((receiver.accepted.at(-1)!.json as any).person.name.lastName, 'Doe-3');
      assert.equal(oauth.issued, 2, 'one refresh after the 401');

      const count = receiver.requests.length;
      receiver.failNext(1, { status: 400, body: { error: 'bad field' } });
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: ECID }] }, person: { name: { lastName: 'Doe-4' } } });
      await settle(h);
      clock += 3_600_000;
      await deliver(h);
      assert.equal(receiver.requests.length - count, 1, 'a 400 is not retried');
      const dead = (await h.call('GET', `/v1/dataflows/${dataflowId}/dead-letters`)).json().items;
      assert.equal(dead.length, 1);
      assert.match(dead[0].lastError, /HTTP 400/);
      const replay = await h.call('POST', `/v1/dataflows/${dataflowId}/dead-letters/replay`, {});
      assert.equal(replay.json().requeued, 1);
      await deliver(h);
      assert.equal((receiver.accepted.at(-1)!.json as any).person.name.lastName, 'Doe-4');
      assert.equal((await h.call('GET', `/v1/dataflows/${dataflowId}/dead-letters`)).json().items.length, 0);
    });

    it('reports runs per hour and metrics, and dry-runs with secrets masked', async () => {
      const runs = (await h.call('GET', `/v1/dataflows/${dataflowId}/runs?hours=24`)).json().items as Array<Record<string, any>>;
      const total = (k: string) => runs.reduce((n, r) => n + (r[k] as number), 0);
      assert.ok(total('activated') >= 6);
      assert.ok(total('retried') >= 1);
      assert.ok(total('failed') >= 1);
      const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(metrics, new RegExp(`audient_exports_total\\{outcome="activated",dataflow="${dataflowId}"\\}`));
      const dry = (await h.call('POST', `/v1/dataflows/${dataflowId}/dry-run`, { ns: 'ecid', id: ECID })).json();
      assert.equal(dry.decision, 'export');
      assert.equal(dry.requests.length, 1);
      assert.equal(dry.requests[0].headers.authorization, 'Bearer ••••••');
      assert.ok(!JSON.stringify(dry).includes('s3cr3t-value'));
      assert.equal(JSON.parse(dry.requests[0].body).person.name.firstName, 'John');
    });

    it('alerts on dead letters, failure rate and pauses, then on their resolution', async () => {
      const hooks = await startReceiver();
      try {
        const sub = await ok(h, 'POST', '/v1/alerts', { url: `${hooks.url}/alerts`, kinds: ['failure-rate', 'dead-letters', 'paused'], dataflowIds: [dataflowId], failureRate: 0.5, minFailures: 10 });
        receiver.failNext(1, { status: 400 });
        await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ecid: [{ id: ECID }] }, person: { name: { lastName: 'Doe-5' } } });
        await settle(h);
        await h.call('POST', `/v1/dataflows/${dataflowId}/pause`);
        await h.ctx.alerts.check('prod');
        const fired = (hooks.requests.at(-1)!.json as { alerts: Array<{ kind: string; state: string }> }).alerts;
        assert.deepEqual(fired.map((a) => `${a.kind}:${a.state}`).sort(), ['dead-letters:firing', 'paused:firing']);
        assert.match(String(hooks.requests.at(-1)!.headers['audient-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);
        await h.ctx.alerts.check('prod');
        assert.equal(hooks.requests.length, 1, 'a condition fires once');
        await h.call('POST', `/v1/dataflows/${dataflowId}/resume`);
        await h.call('POST', `/v1/dataflows/${dataflowId}/dead-letters/replay`, {});
        await deliver(h);
        await h.ctx.alerts.check('prod');
        const resolved = (hooks.requests.at(-1)!.json as { alerts: Array<{ kind: string; state: string }> }).alerts;
        assert.deepEqual(resolved.map((a) => `${a.kind}:${a.state}`).sort(), ['dead-letters:resolved', 'paused:resolved']);
        assert.ok(sub['secret']);
      } finally {
        await hooks.close();
      }
    });

    it('excludes profiles lacking a required identity, with the reason', async () => {
      const conn = await ok(h, 'POST', '/v1/connections', {
        name: 'MoEngage', destinationId: 'moengage', settings: { appId: 'APP1', dataApiKey: 'k-secret', region: '01', baseUrl: receiver.url },
      });
      const bad = await h.call('POST', '/v1/dataflows', { name: 'x', connectionId: conn['id'], audienceIds: ['johns'], mapping: [] });
      assert.equal(bad.statusCode, 400);
      assert.match(bad.body, /user_id/);
      const flow = await ok(h, 'POST', '/v1/dataflows', {
        name: 'Moe', connectionId: conn['id'], audienceIds: ['johns'],
        mapping: [{ source: 'identity:crmId', target: { kind: 'identity', name: 'user_id' } }],
      });
      await h.ctx.jobs.idle();
      await settle(h);
      const runs = (await h.call('GET', `/v1/dataflows/${flow['id']}/runs`)).json().items;
      assert.deepEqual(runs[0].excluded, { 'missing identity: needs one of user_id, anonymous_id': 1 });
    });
  });
});
