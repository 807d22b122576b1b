import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { describeBackends } from '@audient/storage/testing';
import { IngestionService } from '../services/ingestion.js';
import { createHarness, recordProfileReads, type Harness } from '../testing/harness.js';
import { decodeIdentityCookie } from './ecid.js';

const ORIGIN = 'https://shop.example';
const T0 = Date.parse('2025-06-01T10:00:00Z');
const ecidOf = (n: number): string => String(n).padStart(38, '1');

interface Answer {
  requestId: string;
  handle: Array<{ type: string; payload: Array<Record<string, unknown>> }>;
  warnings?: unknown[];
}
interface Lookup {
  type: string;
  destinationId: string;
  alias: string;
  segments: Array<{ id: string }>;
}

async function ok(h: Harness, method: 'POST' | 'PUT', url: string, body: unknown, key?: string): Promise<Record<string, unknown>> {
  const r = await h.call(method, url, body, key);
  assert.ok(r.statusCode < 300, `${method} ${url}: ${r.statusCode} ${r.body}`);
  return r.json();
}

/** Schemas, datasets and audiences of one sandbox (audience ids prefixed). */
async function setupSandbox(h: Harness, prefix: string, key?: string): Promise<void> {
  await ok(h, 'POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details', 'profile-consents'], fields: {} }, key);
  await ok(h, 'POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details', 'event-commerce-details'], fields: {} }, key);
  await ok(h, 'POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true }, key);
  await ok(h, 'POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true }, key);
  const audiences = {
    buyers: 'select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 1 hour before now',
    viewers: 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.timestamp occurs < 1 hour before now',
    'unmapped-viewers': 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews"',
    gold: 'loyalty.tier = "gold"',
  };
  for (const [id, query] of Object.entries(audiences)) {
    const a = await ok(h, 'POST', '/v1/audiences', { id: `${prefix}${id}`, name: id, query }, key);
    assert.equal(a['method'], 'edge', `${id} is an edge audience`);
  }
}

/** A datastream with two custom personalization connections, each with its own dataflow. */
async function setupDatastream(h: Harness, prefix: string, key?: string) {
  const ds = await ok(
    h,
    'POST',
    '/v1/datastreams',
    {
      name: 'Web site',
      allowedOrigins: [ORIGIN],
      eventDatasetId: 'web',
      orgId: 'ACME@AdobeOrg',
      urlSyncs: [
        { id: 'partner-pixel', type: 'url', url: 'https://partner.example/sync?uid={ECID}' },
        { id: 'partner-cookie', type: 'cookie', name: 'partner_uid', value: 'e-{ECID}', ttlDays: 7 },
      ],
    },
    key,
  );
  const datastreamId = String(ds['id']);
  const conn = async (alias: string) =>
    String((await ok(h, 'POST', '/v1/connections', { name: alias, destinationId: 'custom-personalization', settings: { integrationAlias: alias, datastreamId } }, key))['id']);
  const personalization = await conn('personalizationAlias');
  const adServer = await conn('adServerAlias');
  const home = await ok(h, 'POST', '/v1/dataflows', { name: 'home', connectionId: personalization, audienceIds: [`${prefix}buyers`, `${prefix}gold`], mapping: [] }, key);
  await ok(h, 'POST', '/v1/dataflows', { name: 'ads', connectionId: adServer, audienceIds: [`${prefix}viewers`, `${prefix}gold`], mapping: [] }, key);
  return { datastreamId, personalization, adServer, homeFlow: String(home['id']) };
}

function edge(h: Harness, path: string, body: unknown, opts: { origin?: string; raw?: string; contentType?: string; method?: 'POST' | 'OPTIONS' } = {}): Promise<LightMyRequestResponse> {
  return h.app.inject({
    method: opts.method ?? 'POST',
    url: path,
    headers: {
      ...(opts.method === 'OPTIONS' ? { 'access-control-request-method': 'POST' } : { 'content-type': opts.contentType ?? 'text/plain; charset=UTF-8' }),
      ...(opts.origin ? { origin: opts.origin } : {}),
    },
    ...(opts.method === 'OPTIONS' ? {} : { payload: opts.raw ?? JSON.stringify(body) }),
  });
}

const pageView = (extra: Record<string, unknown> = {}) => ({ eventType: 'web.webpagedetails.pageViews', web: { webPageDetails: { URL: `${ORIGIN}/` } }, ...extra });
const purchase = (extra: Record<string, unknown> = {}) => ({ eventType: 'commerce.purchases', commerce: { order: { priceTotal: 999.98, currencyCode: 'USD' } }, ...extra });
const withEcid = (ecid: string) => ({ identityMap: { ECID: [{ id: ecid, primary: true }] } });

function handle(a: Answer, type: string): Array<Record<string, unknown>> {
  return a.handle.filter((x) => x.type === type).flatMap((x) => x.payload);
}
/** Alias → segment ids of an answer's activation:pull. */
function segmentsByAlias(a: Answer): Record<string, string[]> {
  return Object.fromEntries((handle(a, 'activation:pull') as unknown as Lookup[]).map((l) => [l.alias, l.segments.map((s) => s.id)]));
}

function assertEdgeError(r: LightMyRequestResponse, status: number, title: RegExp): void {
  assert.equal(r.statusCode, status, r.body);
  const body = r.json() as Record<string, unknown>;
  assert.match(String(body['type']), /^https:\/\/ns\.audient\.dev\/edge\/errors\/EDGE-\d{4}-\d{3}$/);
  assert.equal(body['status'], status);
  assert.match(String(body['title']), title);
  assert.ok(typeof body['detail'] === 'string' && body['detail'].length > 0);
}

await describeBackends((backend) => {
  describe('edge interact', () => {
    let h: Harness;
    let clock = T0;
    let prod: Awaited<ReturnType<typeof setupDatastream>>;
    let other: Awaited<ReturnType<typeof setupDatastream>>;
    let otherKey = '';
    const interact = async (datastreamId: string, body: unknown): Promise<Answer> => {
      const r = await edge(h, `/ee/v1/interact?configId=${datastreamId}&requestId=req-1`, body, { origin: ORIGIN });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
      return r.json();
    };
    const settle = async () => {
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
    };

    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock, delivery: { pollMs: 3_600_000 } });
      await setupSandbox(h, '');
      prod = await setupDatastream(h, '');
      otherKey = (await h.ctx.tenancy.createSandbox({ id: 'other' })).apiKey;
      await setupSandbox(h, 'other-', otherKey);
      other = await setupDatastream(h, 'other-', otherKey);
    });
    after(() => h.close());

    it('mints a 38-digit ECID when the visitor has none, stores it in the identity cookie and reads it back', async () => {
      const a = await interact(prod.datastreamId, { events: [{ xdm: pageView() }], query: { identity: { fetch: ['ECID'] } } });
      assert.equal(a.requestId, 'req-1');
      const [identity] = handle(a, 'identity:result');
      const ecid = String(identity?.['id']);
      assert.match(ecid, /^\d{38}$/);
      assert.deepEqual(identity?.['namespace'], { code: 'ECID' });
      const [cookie] = handle(a, 'state:store');
      assert.equal(cookie?.['key'], 'kndctr_ACME_AdobeOrg_identity');
      assert.equal(decodeIdentityCookie(String(cookie?.['value'])), ecid);
      assert.ok(Number(cookie?.['maxAge']) > 0);
      // Same page: the page view qualifies the ad server's viewers audience at once.
      assert.deepEqual(segmentsByAlias(a), { personalizationAlias: [], adServerAlias: ['viewers'] });

      const again = await interact(prod.datastreamId, { events: [{ xdm: pageView() }], meta: { state: { entries: [{ key: String(cookie?.['key']), value: String(cookie?.['value']) }] } } });
      assert.equal(handle(again, 'identity:result')[0]?.['id'], ecid, 'the cookie carries the ECID to the next page');
    });

    it('a new visitor: the minted ECID creates its profile without a graph lookup or a read back; a known identity beside it is looked up', async () => {
      const store = h.ctx.store;
      const asked: string[] = [];
      const ingest = store.ingest.bind(store);
      store.ingest = (sandboxId, fn) =>
        ingest(sandboxId, (tx) =>
          fn({ ...tx, graphMembersOf: (ids) => (asked.push(...ids.map((i) => `${i.ns}:${i.id}`)), tx.graphMembersOf(ids)) }),
        );
      try {
        const reads = await recordProfileReads(store, async (reads) => {
          const first = await interact(prod.datastreamId, { events: [{ xdm: pageView() }] });
          const cookie = handle(first, 'state:store').find((c) => String(c['key']).endsWith('_identity'))!;
          assert.equal(reads.join(', '), '', 'the new profile is evaluated from what was just written');
          assert.equal(asked.join(', '), '', 'no graph lookup for an identity minted in this request');
          // The next page, with the identity cookie: its ECID resolves from memory too.
          const next = await interact(prod.datastreamId, { events: [{ xdm: purchase() }], meta: { state: { entries: [{ key: String(cookie['key']), value: String(cookie['value']) }] } } });
          assert.equal(handle(next, 'identity:result')[0]?.['id'], handle(first, 'identity:result')[0]?.['id']);
          assert.deepEqual(segmentsByAlias(next), { personalizationAlias: ['buyers'], adServerAlias: ['viewers'] }, 'both pages count');
          return [...reads];
        });
        assert.equal(reads.join(', '), '', 'nor is its next page read back');
        asked.length = 0;
        const a = await interact(prod.datastreamId, { events: [{ xdm: pageView() }] });
        const ecid = String(handle(a, 'identity:result')[0]?.['id']);
        assert.deepEqual(segmentsByAlias(a), { personalizationAlias: [], adServerAlias: ['viewers'] });
        assert.equal(asked.join(', '), '', 'nor for another new visitor');
        const profile = (await h.call('GET', `/v1/profiles?ns=ecid&id=${ecid}`)).json();
        assert.equal(profile.events.items.length, 1, 'the event is on the new profile');

        await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'known@shop.example' }] }, loyalty: { tier: 'gold' } });
        await settle();
        asked.length = 0;
        const b = await interact(prod.datastreamId, { events: [{ xdm: pageView({ identityMap: { email: [{ id: 'known@shop.example' }] } }) }] });
        assert.ok(asked.includes('email:known@shop.example'), `the email is looked up (asked: ${asked.join(', ')})`);
        assert.deepEqual(segmentsByAlias(b), { personalizationAlias: ['gold'], adServerAlias: ['gold', 'viewers'] }, 'the visit joined the known profile');
      } finally {
        delete (store as Partial<typeof store>).ingest;
      }
    });

    it('same page: a purchase in the very request returns the purchase audience for the right alias only', async () => {
      const ecid = ecidOf(1);
      const a = await interact(prod.datastreamId, { events: [{ xdm: { ...purchase(), ...withEcid(ecid) }, data: { note: 'not ingested' } }] });
      assert.equal(handle(a, 'identity:result')[0]?.['id'], ecid);
      const pull = handle(a, 'activation:pull') as unknown as Lookup[];
      assert.deepEqual(
        pull.map((l) => l.type),
        ['profileLookup', 'profileLookup'],
      );
      const home = pull.find((l) => l.alias === 'personalizationAlias');
      assert.deepEqual(home, { type: 'profileLookup', destinationId: prod.personalization, alias: 'personalizationAlias', segments: [{ id: 'buyers' }] });
      assert.deepEqual(segmentsByAlias(a)['adServerAlias'], []);
      // The event joined the normal pipeline: it is on the profile, with defaults filled in.
      const profile = (await h.call('GET', `/v1/profiles?ns=ecid&id=${ecid}`)).json();
      const stored = profile.events.items as Array<Record<string, unknown>>;
      assert.equal(stored.length, 1);
      assert.equal(stored[0]?.['eventType'], 'commerce.purchases');
      assert.equal(stored[0]?.['timestamp'], new Date(T0).toISOString());
      assert.ok(typeof stored[0]?.['_id'] === 'string');
      assert.equal(stored[0]?.['data'], undefined);
    });

    it('gives events sent without _id time-ordered ids (UUIDv7, later ones sort later) and keeps an _id the page sent', async () => {
      const ecid = ecidOf(9);
      const at = (path: string) => ({ ...pageView({ web: { webPageDetails: { URL: `${ORIGIN}/${path}` } } }), ...withEcid(ecid) });
      await interact(prod.datastreamId, { events: [{ xdm: at('first') }, { xdm: { ...at('own'), _id: 'page-sent-id' } }] });
      await interact(prod.datastreamId, { events: [{ xdm: at('second') }] });
      const profile = (await h.call('GET', `/v1/profiles?ns=ecid&id=${ecid}`)).json();
      const idOf = (path: string): string => {
        const e = (profile.events.items as Array<{ _id: string; web: { webPageDetails: { URL: string } } }>).find((x) => x.web.webPageDetails.URL === `${ORIGIN}/${path}`);
        assert.ok(e, `event ${path} stored`);
        return e._id;
      };
      assert.equal(idOf('own'), 'page-sent-id');
      const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
      assert.match(idOf('first'), uuidV7);
      assert.match(idOf('second'), uuidV7);
      // Minted later sorts later: new events' keys append to the end of the events' index.
      assert.ok(idOf('first') < idOf('second'), `${idOf('first')} < ${idOf('second')}`);
    });

    it('next page: an attribute audience qualified through API ingestion shows on the next interact; unmapped audiences never do', async () => {
      const ecid = ecidOf(2);
      await ok(h, 'POST', '/v1/datasets/crm/records', { ...withEcid(ecid), loyalty: { tier: 'gold' } });
      await settle();
      const a = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      assert.deepEqual(segmentsByAlias(a), { personalizationAlias: ['gold'], adServerAlias: ['gold', 'viewers'] });
      const ups = (await h.call('GET', `/v1/profiles?ns=ecid&id=${ecid}`)).json().segmentMembership.ups;
      assert.match(String(ups['unmapped-viewers']?.status), /^(realized|existing)$/, 'the profile is in the unmapped audience');
      assert.doesNotMatch(JSON.stringify(a), /unmapped-viewers/);
    });

    it('returns the datastream URL and cookie syncs with the ECID substituted', async () => {
      const ecid = ecidOf(3);
      const a = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      assert.deepEqual(handle(a, 'activation:push'), [
        { type: 'url', id: 'partner-pixel', spec: { url: `https://partner.example/sync?uid=${ecid}`, hideReferrer: true, ttlMinutes: 10_080 } },
        { type: 'cookie', id: 'partner-cookie', spec: { name: 'partner_uid', value: `e-${ecid}`, ttlDays: 7 } },
      ]);
    });

    it('honours consent: personalize.content = n returns no segments', async () => {
      const ecid = ecidOf(4);
      await ok(h, 'POST', '/v1/datasets/crm/records', { ...withEcid(ecid), loyalty: { tier: 'gold' }, consents: { personalize: { content: { val: 'n' } } } });
      await settle();
      const a = await interact(prod.datastreamId, { events: [{ xdm: { ...purchase(), ...withEcid(ecid) } }] });
      assert.deepEqual(segmentsByAlias(a), { personalizationAlias: [], adServerAlias: [] });
    });

    it('keeps sandboxes apart: another sandbox datastream answers only its own connections and audiences', async () => {
      const ecid = ecidOf(2); // gold in prod
      const a = await interact(other.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      const pull = handle(a, 'activation:pull') as unknown as Lookup[];
      assert.deepEqual(pull.map((l) => l.destinationId).sort(), [other.adServer, other.personalization].sort());
      assert.deepEqual(segmentsByAlias(a), { personalizationAlias: [], adServerAlias: ['other-viewers'] });
      const mine = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      assert.doesNotMatch(JSON.stringify(mine), /other-/);
      assert.ok(!JSON.stringify(mine).includes(other.personalization));
      // The other sandbox's own profile got the event, the prod profile did not get a second one.
      const otherProfile = await h.call('GET', `/v1/profiles?ns=ecid&id=${ecid}`, undefined, otherKey);
      assert.equal(otherProfile.statusCode, 200);
      assert.equal(otherProfile.json().segmentMembership.ups['gold'], undefined);
    });


    it("a returning visitor's answer follows its memberships and the datastream's mapping, page after page", async () => {
      const ds = await setupDatastream(h, '');
      const ecid = ecidOf(45);
      const visit = async (xdm: Record<string, unknown>): Promise<Answer> => {
        const r = await edge(h, `/ee/v1/interact?configId=${ds.datastreamId}`, { events: [{ xdm: { ...xdm, ...withEcid(ecid) } }] }, { origin: ORIGIN });
        assert.equal(r.statusCode, 200, r.body);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        return r.json();
      };
      assert.deepEqual(segmentsByAlias(await visit(pageView())), { personalizationAlias: [], adServerAlias: ['viewers'] });
      assert.deepEqual(segmentsByAlias(await visit(pageView())), { personalizationAlias: [], adServerAlias: ['viewers'] });
      assert.deepEqual(segmentsByAlias(await visit(purchase())), { personalizationAlias: ['buyers'], adServerAlias: ['viewers'] });
      await settle();
      assert.deepEqual(segmentsByAlias(await visit(pageView())), { personalizationAlias: ['buyers'], adServerAlias: ['viewers'] });
      await ok(h, 'PUT', `/v1/dataflows/${ds.homeFlow}`, { name: 'home', connectionId: ds.personalization, audienceIds: ['gold'], mapping: [] });
      assert.deepEqual(segmentsByAlias(await visit(pageView())), { personalizationAlias: [], adServerAlias: ['viewers'] });
      // Personalization refused afterwards empties every lookup, memberships unchanged.
      await ok(h, 'POST', '/v1/datasets/crm/records', { ...withEcid(ecid), consents: { personalize: { content: { val: 'n' } } } });
      await settle();
      assert.deepEqual(segmentsByAlias(await visit(pageView())), { personalizationAlias: [], adServerAlias: [] });
    });

    it('evaluates a visit once: one realized event per entry, not rewritten when the visit reaches the streaming engine', async () => {
      const ecid = ecidOf(40);
      const realizedOf = async (profileId: string) => {
        const events = await h.ctx.store.readMembershipEvents('prod', 0, 100_000);
        const count: Record<string, number> = {};
        for (const e of events) if (e.profileId === profileId && e.status === 'realized') count[e.audienceId] = (count[e.audienceId] ?? 0) + 1;
        return count;
      };
      const statusOf = async (profileId: string) => {
        await h.ctx.segmentation.flushConfirmations();
        return Object.fromEntries(((await h.ctx.store.memberships('prod', [profileId])).get(profileId) ?? []).map((m) => [m.audienceId, m.status]));
      };

      const evaluations = async (): Promise<number> => (await h.ctx.metrics.audienceEvaluations.get()).values[0]?.value ?? 0;
      await settle();
      const before = await evaluations();
      const a = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      assert.deepEqual(segmentsByAlias(a)['adServerAlias'], ['viewers'], 'same page');
      await settle();
      const profileId = await h.ctx.store.findProfileId('prod', { ns: 'ecid', id: ecid });
      assert.ok(profileId);
      // The visit's change reached the streaming engine too. Whichever evaluated first, the other
      // reused its state: each of the sandbox's 4 audiences was evaluated once, the entry is still
      // `realized` and was announced once.
      assert.equal((await evaluations()) - before, 4, 'each audience evaluated once for the visit');
      assert.deepEqual(await realizedOf(profileId), { viewers: 1, 'unmapped-viewers': 1 });
      assert.deepEqual(await statusOf(profileId), { viewers: 'realized', 'unmapped-viewers': 'realized' });

      // The next visit is a later qualification: `existing`, still one `realized` event each.
      clock += 60_000;
      await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      await settle();
      assert.deepEqual(await statusOf(profileId), { viewers: 'existing', 'unmapped-viewers': 'existing' });
      assert.deepEqual(await realizedOf(profileId), { viewers: 1, 'unmapped-viewers': 1 });

      // Something else changing the profile is evaluated by the streaming engine as before.
      await ok(h, 'POST', '/v1/datasets/crm/records', { ...withEcid(ecid), loyalty: { tier: 'gold' } });
      await settle();
      assert.equal((await statusOf(profileId))['gold'], 'realized');
      assert.deepEqual(await realizedOf(profileId), { viewers: 1, 'unmapped-viewers': 1, gold: 1 });
    });
    // The edge answers from the segmentation engine's view of hot profiles (fragments and
    // memberships in memory): whatever changes a visited profile must show in the next answer.
    it('after a visit, a CRM write is seen by the next answer (attributes and consent)', async () => {
      const ecid = ecidOf(50);
      const first = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      assert.deepEqual(segmentsByAlias(first), { personalizationAlias: [], adServerAlias: ['viewers'] });
      await settle();
      await ok(h, 'POST', '/v1/datasets/crm/records', { ...withEcid(ecid), loyalty: { tier: 'gold' } });
      await settle();
      const second = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      assert.deepEqual(segmentsByAlias(second), { personalizationAlias: ['gold'], adServerAlias: ['gold', 'viewers'] });
      await ok(h, 'POST', '/v1/datasets/crm/records', { ...withEcid(ecid), consents: { personalize: { content: { val: 'n' } } } });
      await settle();
      const third = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      assert.deepEqual(segmentsByAlias(third), { personalizationAlias: [], adServerAlias: [] }, 'personalization refused');
    });

    // The edge also evaluates from the events the engine's view of the profile holds (events
    // committed in this process are added as they commit): an event that reaches the profile
    // another way must not be missed.
    it('after a visit, an event ingested through the API counts in the next evaluation', async () => {
      const ecid = ecidOf(60);
      const created = await ok(h, 'POST', '/v1/audiences', {
        id: 'views-2',
        name: 'Exactly two page views today',
        query: 'xEvent[eventType = "web.webpagedetails.pageViews" and timestamp occurs < 1 day before now].count() = 2',
      });
      assert.ok(created['method'] === 'streaming' || created['method'] === 'edge', String(created['method']));
      try {
        const statusOf = async () => {
          const profileId = await h.ctx.store.findProfileId('prod', { ns: 'ecid', id: ecid });
          return profileId ? ((await h.ctx.store.memberships('prod', [profileId])).get(profileId) ?? []).find((m) => m.audienceId === 'views-2')?.status : undefined;
        };
        await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
        await settle();
        assert.equal(await statusOf(), undefined, 'one page view');
        clock += 1_000;
        await ok(h, 'POST', '/v1/datasets/web/records', { ...pageView(), _id: 'api-view-60', timestamp: new Date(clock).toISOString(), ...withEcid(ecid) });
        await settle();
        assert.equal(await statusOf(), 'realized', 'two page views, the second through the API');
        clock += 1_000;
        await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
        await settle();
        assert.equal(await statusOf(), 'exited', 'three page views');
        // An event another process stored (its own ingestion, the same store) is known here only
        // through the change feed: the view's events must give way to the store's.
        clock += 1_000;
        const elsewhere = new IngestionService({ store: h.ctx.store, catalog: h.ctx.catalog, feed: h.ctx.feed, limits: h.ctx.config.limits, metrics: h.ctx.metrics, now: () => clock });
        const [r] = await elsewhere.ingest('prod', 'web', [{ ...purchase(), _id: 'elsewhere-60', timestamp: new Date(clock).toISOString(), ...withEcid(ecid) }]);
        assert.equal(r?.status, 'accepted');
        await settle();
        const next = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
        assert.deepEqual(segmentsByAlias(next)['personalizationAlias'], ['buyers'], 'the purchase stored elsewhere counts');
      } finally {
        assert.equal((await h.call('DELETE', '/v1/audiences/views-2')).statusCode < 300, true);
      }
    });

    it('after a visit, a merge is seen by the next answer', async () => {
      const a = ecidOf(51);
      const b = ecidOf(52);
      // A's graph is the larger one, so A's profile survives the merge and takes B's refusal of personalization.
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ECID: [{ id: a, primary: true }], Email: [{ id: 'merge-a1@example.com' }, { id: 'merge-a2@example.com' }] } });
      await ok(h, 'POST', '/v1/datasets/crm/records', { identityMap: { ECID: [{ id: b, primary: true }], Email: [{ id: 'merge-b@example.com' }] }, consents: { personalize: { content: { val: 'n' } } } });
      await settle();
      const pa = await h.ctx.store.findProfileId('prod', { ns: 'ecid', id: a });
      const before = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(a) } }] });
      assert.deepEqual(segmentsByAlias(before), { personalizationAlias: [], adServerAlias: ['viewers'] });
      await settle();
      // An event that carries both identities joins the two profiles (a merge and an event change).
      const joining = { ...pageView(), _id: 'merge-evt-1', timestamp: new Date(clock).toISOString(), identityMap: { ECID: [{ id: a, primary: true }], Email: [{ id: 'merge-b@example.com' }] } };
      await ok(h, 'POST', '/v1/datasets/web/records', joining);
      await settle();
      assert.equal(await h.ctx.store.findProfileId('prod', { ns: 'ecid', id: b }), pa, "A's profile absorbed B's");
      const after = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(a) } }] });
      assert.deepEqual(segmentsByAlias(after), { personalizationAlias: [], adServerAlias: [] }, 'personalization refused');
    });

    it('after a visit, a privacy delete is seen by the next answer and leaves no membership behind', async () => {
      const ecid = ecidOf(53);
      await ok(h, 'POST', '/v1/datasets/crm/records', { ...withEcid(ecid), loyalty: { tier: 'gold' } });
      await settle();
      const first = await interact(prod.datastreamId, { events: [{ xdm: { ...purchase(), ...withEcid(ecid) } }] });
      assert.deepEqual(segmentsByAlias(first), { personalizationAlias: ['buyers', 'gold'], adServerAlias: ['gold'] });
      const gone = await h.ctx.store.findProfileId('prod', { ns: 'ecid', id: ecid });
      assert.ok(gone);
      // The visit's change may still be on its way to the streaming engine when the delete runs.
      const del = await h.call('POST', '/v1/privacy/deletes', { ns: 'ecid', id: ecid });
      assert.equal(del.statusCode, 202, del.body);
      await h.ctx.jobs.idle();
      await settle();
      assert.deepEqual((await h.ctx.store.memberships('prod', [gone])).get(gone), []);
      const next = await interact(prod.datastreamId, { events: [{ xdm: { ...pageView(), ...withEcid(ecid) } }] });
      assert.deepEqual(segmentsByAlias(next), { personalizationAlias: [], adServerAlias: ['viewers'] }, 'a new profile: only this visit');
      await settle();
      assert.deepEqual((await h.ctx.store.memberships('prod', [gone])).get(gone), []);
    });

    it('collect stores the event and answers 204', async () => {
      const ecid = ecidOf(5);
      const r = await edge(h, `/ee/v1/collect?configId=${prod.datastreamId}`, { events: [{ xdm: { ...purchase(), ...withEcid(ecid) } }] }, { origin: ORIGIN });
      assert.equal(r.statusCode, 204, r.body);
      const profile = (await h.call('GET', `/v1/profiles?ns=ecid&id=${ecid}`)).json();
      assert.equal(profile.events.items.length, 1);
    });

    it('answers CORS preflights for allowed origins only', async () => {
      const yes = await edge(h, `/ee/v1/interact?configId=${prod.datastreamId}`, undefined, { method: 'OPTIONS', origin: ORIGIN });
      assert.equal(yes.statusCode, 204);
      assert.equal(yes.headers['access-control-allow-origin'], ORIGIN);
      assert.match(String(yes.headers['access-control-allow-methods']), /POST/);
      const no = await edge(h, `/ee/v1/interact?configId=${prod.datastreamId}`, undefined, { method: 'OPTIONS', origin: 'https://evil.example' });
      assertEdgeError(no, 403, /Origin not allowed/);
      assert.equal(no.headers['access-control-allow-origin'], undefined);
    });

    it('refuses bad requests with a clear 4xx in the edge error format', async () => {
      const url = `/ee/v1/interact?configId=${prod.datastreamId}`;
      const body = { events: [{ xdm: pageView() }] };
      assertEdgeError(await edge(h, '/ee/v1/interact', body), 400, /configId/);
      assertEdgeError(await edge(h, '/ee/v1/interact?configId=6b2a9e5c-0000-4000-8000-000000000000', body), 404, /Unknown datastream/);
      assertEdgeError(await edge(h, '/ee/v1/interact?configId=bad%20id', body), 400, /configId/);
      assertEdgeError(await edge(h, url, undefined, { raw: '{"events": [' }), 400, /Malformed/);
      assertEdgeError(await edge(h, url, undefined, { raw: '{"events": [', contentType: 'application/json' }), 400, /Malformed/);
      assertEdgeError(await edge(h, url, {}), 400, /Malformed/);
      assertEdgeError(await edge(h, url, { events: [] }), 400, /Malformed/);
      assertEdgeError(await edge(h, url, { events: [{ xdm: 'nope' }] }), 400, /Malformed/);
      assertEdgeError(await edge(h, url, { events: [{ xdm: { identityMap: [] } }] }), 400, /Malformed/);
      assertEdgeError(await edge(h, url, { events: [{ xdm: { ...pageView(), ...withEcid('123') } }] }), 400, /Invalid ECID/);
      assertEdgeError(await edge(h, url, { events: [{ xdm: { ...pageView(), identityMap: { ECID: [{}] } } }] }), 400, /Invalid ECID/);
      // The report names where: the second event's ECID, the request-level identity map.
      const second = await edge(h, url, { events: [{ xdm: pageView() }, { xdm: { ...pageView(), identityMap: { ecid: [{ id: '42' }] } } }] });
      assert.deepEqual(second.json().report.details, [{ path: 'events.1.xdm.identityMap.ecid.0.id', message: 'not 38 digits' }]);
      const top = await edge(h, url, { events: [{ xdm: pageView() }], xdm: { identityMap: 'ECID' } });
      assert.deepEqual(top.json().report.details, [{ path: 'xdm.identityMap', message: 'not an object' }]);
      assertEdgeError(await edge(h, url, { events: [{ xdm: { pad: 'x'.repeat(300_000) } }] }), 413, /too large/);
      assertEdgeError(await edge(h, url, body, { origin: 'https://evil.example' }), 403, /Origin not allowed/);
      assertEdgeError(await edge(h, url, body, { contentType: 'application/xml' }), 415, /media type/);
      assertEdgeError(await edge(h, '/ee/v2/nothing?configId=x', body), 404, /Not found/);
      const err = (await edge(h, `${url}&requestId=abc-1`, { events: [] })).json();
      assert.equal(err.report.requestId, 'abc-1');
      // An event that does not match the schema is a warning: the lookup still answers.
      const warned = await edge(h, url, { events: [{ xdm: { ...pageView(), unknownField: 1, ...withEcid(ecidOf(6)) } }] });
      assert.equal(warned.statusCode, 200, warned.body);
      assert.equal(warned.json().warnings[0].code, 'EVENT_REJECTED');
    });

    it('manages datastreams: validation, replace, disable, delete', async () => {
      const bad = await h.call('POST', '/v1/datastreams', { name: 'x', allowedOrigins: ['https://shop.example/path'], eventDatasetId: 'crm', urlSyncs: [{ type: 'url', url: 'ftp://x/{ECID}' }] });
      assert.equal(bad.statusCode, 400, bad.body);
      assert.deepEqual(
        bad.json().error.details.map((d: { path: string }) => d.path).sort(),
        ['allowedOrigins.0', 'eventDatasetId', 'urlSyncs.0.url'],
      );
      const created = await ok(h, 'POST', '/v1/datastreams', { name: 'Lookups only', allowedOrigins: ['*'] });
      const id = String(created['id']);
      assert.match(id, /^[0-9a-f-]{36}$/);
      assert.equal(created['enabled'], true);
      assert.ok(((await h.call('GET', '/v1/datastreams')).json().items as Array<{ id: string }>).some((d) => d.id === id));
      assert.equal((await h.call('GET', `/v1/datastreams/${id}`, undefined, otherKey)).statusCode, 404, 'not visible from another sandbox');
      const any = await edge(h, `/ee/v1/interact?configId=${id}`, { events: [{ xdm: pageView() }] }, { origin: 'https://anywhere.example' });
      assert.equal(any.statusCode, 200, any.body);
      assert.equal(any.headers['access-control-allow-origin'], 'https://anywhere.example');
      assert.equal(handle(any.json(), 'activation:pull').length, 0, 'no destination on this datastream');
      await ok(h, 'PUT', `/v1/datastreams/${id}`, { name: 'Lookups only', enabled: false });
      assertEdgeError(await edge(h, `/ee/v1/interact?configId=${id}`, { events: [{ xdm: pageView() }] }), 403, /disabled/);
      assert.equal((await h.call('DELETE', `/v1/datastreams/${id}`)).statusCode, 204);
      assertEdgeError(await edge(h, `/ee/v1/interact?configId=${id}`, { events: [{ xdm: pageView() }] }), 404, /Unknown datastream/);
    });
  });

  // Under load the edge evaluates a returning visitor before its own event is published on the
  // change feed: the event must be in the events the view of the profile holds from its commit.
  // Here the feed publishes nothing after the first visit, so that order is certain.
  describe('edge interact before its change is published', () => {
    let h: Harness;
    after(() => h.close());

    it("a returning visitor's purchase qualifies the very page, from the events the view holds", async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0, delivery: { pollMs: 3_600_000 } });
      await setupSandbox(h, '');
      const { datastreamId } = await setupDatastream(h, '');
      const ecid = ecidOf(70);
      const visit = async (xdm: Record<string, unknown>): Promise<Answer> => {
        const r = await edge(h, `/ee/v1/interact?configId=${datastreamId}`, { events: [{ xdm: { ...xdm, ...withEcid(ecid) } }] }, { origin: ORIGIN });
        assert.equal(r.statusCode, 200, r.body);
        return r.json();
      };
      assert.deepEqual(segmentsByAlias(await visit(pageView())), { personalizationAlias: [], adServerAlias: ['viewers'] });
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      await h.ctx.feed.stop();
      assert.deepEqual(segmentsByAlias(await visit(purchase())), { personalizationAlias: ['buyers'], adServerAlias: ['viewers'] });
    });
  });
});
