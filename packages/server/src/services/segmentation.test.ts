import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { approxJsonBytes, compileQuery } from '@audient/core';
import { REEVALUATION_LEASE_MS, SqliteStore } from '@audient/storage';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, recordProfileReads, settle, type Harness } from '../testing/harness.js';
import { ALL_METHODS, STREAMING_METHODS, eventChangeKey } from './segmentation.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const T0 = Date.parse('2025-03-01T12:00:00Z');

/** A step: move the clock, send records, then check who is in which audience. */
interface Step {
  /** Clock offset from T0, ms. */
  at: number;
  send?: Array<{ dataset: 'crm' | 'web'; record: Record<string, unknown> }>;
  /** email → audience id → in (true) or out (false). */
  expect?: Record<string, Record<string, boolean>>;
}

const AUDIENCES = [
  { id: 'gold', query: 'loyalty.tier = "gold"' },
  { id: 'buyers-7d', query: 'select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 7 days before now' },
  { id: 'viewers-3', query: 'xEvent[eventType = "web.webpagedetails.pageViews" and timestamp occurs < 1 day before now].count() >= 3' },
  { id: 'big-spenders', query: 'xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal) > 500' },
  {
    id: 'view-then-buy',
    query: 'chain(xEvent, timestamp, [A: WHAT(eventType = "web.webpagedetails.pageViews"), B: WHAT(eventType = "commerce.purchases") WHEN(< 1 hour after A)])',
  },
  { id: 'gold-buyers', query: 'inSegment("gold") and inSegment("buyers-7d")' },
  { id: 'adults', query: 'person.birthDate occurs > 18 years before now' },
];

let n = 0;
const person = (email: string, extra: Record<string, unknown> = {}) => ({
  dataset: 'crm' as const,
  record: { identityMap: { email: [{ id: email }] }, ...extra },
});
const event = (email: string, eventType: string, at: number, extra: Record<string, unknown> = {}) => ({
  dataset: 'web' as const,
  record: { _id: `e${++n}`, timestamp: new Date(T0 + at).toISOString(), eventType, identityMap: { email: [{ id: email }] }, ...extra },
});
const purchase = (email: string, at: number, total: number) => event(email, 'commerce.purchases', at, { commerce: { order: { priceTotal: total } } });
const view = (email: string, at: number) => event(email, 'web.webpagedetails.pageViews', at);

const TABLE: Step[] = [
  {
    at: 0,
    send: [
      person('ann@x.io', { loyalty: { tier: 'gold' }, person: { birthDate: '2007-03-02' } }),
      person('bob@x.io', { loyalty: { tier: 'silver' } }),
      view('ann@x.io', -30 * 60_000),
      purchase('ann@x.io', -10 * 60_000, 300),
    ],
    expect: {
      'ann@x.io': { gold: true, 'buyers-7d': true, 'gold-buyers': true, 'view-then-buy': true, 'big-spenders': false, adults: false, 'viewers-3': false },
      'bob@x.io': { gold: false, 'buyers-7d': false, 'gold-buyers': false },
    },
  },
  {
    at: 1 * DAY,
    send: [view('bob@x.io', DAY - 3 * HOUR), view('bob@x.io', DAY - 2 * HOUR), view('bob@x.io', DAY - HOUR), purchase('bob@x.io', DAY - 30 * 60_000, 600)],
    expect: {
      'bob@x.io': { 'viewers-3': true, 'big-spenders': true, 'buyers-7d': true, 'view-then-buy': true, 'gold-buyers': false },
      'ann@x.io': { adults: true },
    },
  },
  // No new data: the page-view window closes for Bob after a day.
  { at: 2 * DAY, expect: { 'bob@x.io': { 'viewers-3': false, 'buyers-7d': true } } },
  { at: 3 * DAY, send: [person('bob@x.io', { loyalty: { tier: 'gold' } })], expect: { 'bob@x.io': { gold: true, 'gold-buyers': true } } },
  // Ann's purchase is 7 days old: she exits buyers-7d and gold-buyers with nothing happening to her.
  { at: 7 * DAY, expect: { 'ann@x.io': { 'buyers-7d': false, 'gold-buyers': false, gold: true, 'view-then-buy': true } } },
  { at: 8 * DAY, expect: { 'bob@x.io': { 'buyers-7d': false, 'gold-buyers': false, 'big-spenders': true } } },
];

async function membersOf(h: Harness, email: string): Promise<Record<string, { status: string }>> {
  const r = await h.call('GET', `/v1/profiles?ns=email&id=${email}`);
  assert.equal(r.statusCode, 200, r.body);
  return r.json().segmentMembership.ups;
}

async function runTable(h: Harness, setClock: (t: number) => void, mode: 'streaming' | 'batch'): Promise<void> {
  for (const step of TABLE) {
    setClock(T0 + step.at);
    for (const s of step.send ?? []) {
      const r = await h.call('POST', `/v1/datasets/${s.dataset}/records`, s.record);
      assert.equal(r.statusCode, 200, r.body);
    }
    await h.ctx.feed.flush();
    await h.ctx.bus.drain();
    if (mode === 'streaming') {
      // Streaming evaluation happened on each change; windows expire on the clock; batch
      // audiences are evaluated by their scheduled job, as in production.
      await h.ctx.segmentation.tick();
      await h.ctx.batchSegmentation.run('prod');
      await h.ctx.jobs.idle();
    } else {
      const job = await h.call('POST', '/v1/audiences/batch-jobs', { all: true });
      assert.equal(job.statusCode, 202, job.body);
      await h.ctx.jobs.idle();
      assert.equal((await h.call('GET', `/v1/jobs/${job.json().id}`)).json().status, 'succeeded');
    }
    for (const [email, want] of Object.entries(step.expect ?? {})) {
      const ups = await membersOf(h, email);
      for (const [audience, inside] of Object.entries(want)) {
        const status = ups[audience]?.status;
        const actual = status === 'realized' || status === 'existing';
        assert.equal(actual, inside, `${mode} at day ${step.at / DAY}: ${email} in ${audience} should be ${inside} (status ${status})`);
      }
    }
  }
}

async function setup(h: Harness): Promise<void> {
  for (const [url, body] of [
    ['/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-person-details', 'profile-loyalty-details'], fields: {} }],
    ['/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details', 'event-commerce-details'], fields: {} }],
    ['/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true }],
    ['/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true }],
  ] as const) {
    const r = await h.call('POST', url, body);
    assert.equal(r.statusCode, 201, r.body);
  }
  for (const a of AUDIENCES) {
    const r = await h.call('POST', '/v1/audiences', { ...a, name: a.id });
    assert.equal(r.statusCode, 201, r.body);
  }
}

await describeBackends((backend) => {
  for (const mode of ['streaming', 'batch'] as const) {
    describe(`step table, ${mode}`, () => {
      let h: Harness;
      let clock = T0;
      before(async () => {
        h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
        await setup(h);
      });
      after(() => h.close());
      it('enters, stays and exits on time', async () => {
        await runTable(h, (t) => (clock = t), mode);
      });
    });
  }

  describe('audiences API', () => {
    let h: Harness;
    let clock = T0;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '', maxEdgeAudiences: 3 } }, { now: () => clock });
      await setup(h);
    });
    after(() => h.close());

    it('classifies audiences and says why', async () => {
      const list = (await h.call('GET', '/v1/audiences')).json().items as Array<{ id: string; method: string; methodReason: string }>;
      const method = Object.fromEntries(list.map((a) => [a.id, a.method]));
      assert.equal(method['gold'], 'edge');
      assert.equal(method['viewers-3'], 'streaming');
      assert.ok(list.every((a) => a.methodReason.length > 10));
    });

    it('refuses bad queries, unknown fields, cycles and audiences past the limits', async () => {
      const syntax = await h.call('POST', '/v1/audiences', { name: 'x', query: 'loyalty.tier = ' });
      assert.equal(syntax.statusCode, 400);
      assert.match(syntax.body, /line 1, column/);
      const unknown = await h.call('POST', '/v1/audiences/validate', { query: 'loyalty.teir = "gold"' });
      assert.equal(unknown.json().valid, false);
      assert.match(JSON.stringify(unknown.json().diagnostics), /loyalty\.tier/);
      const cyc = await h.call('PUT', '/v1/audiences/gold', { name: 'gold', query: 'inSegment("gold-buyers")' });
      assert.equal(cyc.statusCode, 400);
      assert.match(cyc.body, /cycle/);
      await h.call('POST', '/v1/audiences', { id: 'edge-2', name: 'e', query: 'loyalty.tier = "silver"' });
      await h.call('POST', '/v1/audiences', { id: 'edge-3', name: 'e', query: 'loyalty.tier = "bronze"' });
      const over = await h.call('POST', '/v1/audiences', { id: 'edge-4', name: 'e', query: 'loyalty.tier = "iron"' });
      assert.equal(over.statusCode, 409, over.body);
      assert.match(over.body, /at most 3 edge audiences/);
      const inUse = await h.call('DELETE', '/v1/audiences/gold');
      assert.equal(inUse.statusCode, 409);
    });

    it('previews, explains, lists members and streams membership events', async () => {
      await h.call('POST', '/v1/datasets/crm/records', person('cat@x.io', { loyalty: { tier: 'gold' } }).record);
      await h.call('POST', '/v1/datasets/crm/records', person('dan@x.io', { loyalty: { tier: 'silver' } }).record);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      const preview = (await h.call('POST', '/v1/audiences/preview', { query: 'loyalty.tier = "gold"' })).json();
      assert.deepEqual([preview.sampled, preview.matched, preview.estimatedSize], [2, 1, 1]);
      const ex = (await h.call('POST', '/v1/audiences/gold/explain', { ns: 'email', id: 'dan@x.io' })).json();
      assert.equal(ex.qualifies, false);
      assert.match(JSON.stringify(ex.tree), /silver/);
      const members = (await h.call('GET', '/v1/audiences/gold/members')).json();
      assert.equal(members.items.length, 1);
      const events = (await h.call('GET', '/v1/membership-events?after=0')).json();
      assert.deepEqual(events.items.map((e: { audienceId: string; status: string }) => [e.audienceId, e.status]), [['gold', 'realized'], ['edge-2', 'realized']]);
      const jsonl = await h.call('GET', '/v1/audiences/gold/members?format=jsonl');
      assert.equal(jsonl.body.trim().split('\n').length, 1);
      await h.ctx.segmentation.tick();
      await h.ctx.segmentation.tick();
      const sizes = (await h.call('GET', '/v1/audiences/gold/sizes')).json().items as Array<{ size: number; source: string }>;
      assert.deepEqual(sizes.map((p) => [p.source, p.size]), [['streaming', 1]], 'one streaming point per day');
    });
  });

  describe('concurrent evaluations of one profile', () => {
    let h: Harness;
    const clock = T0;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
      await setup(h);
    });
    after(() => h.close());

    it('run one at a time: an entry is realized once, with one membership event', async () => {
      const eve = person('eve@x.io', { loyalty: { tier: 'gold' } });
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', eve.record)).statusCode, 200);
      const profileId = await h.ctx.store.findProfileId('prod', { ns: 'email', id: 'eve@x.io' });
      assert.ok(profileId);
      // The streaming engine (the record's change), the edge and a re-evaluation on time, at once.
      await Promise.all([
        h.ctx.segmentation.evaluate('prod', [profileId], { methods: ALL_METHODS }),
        h.ctx.segmentation.evaluate('prod', [profileId], { methods: STREAMING_METHODS, reuse: true }),
        h.ctx.segmentation.evaluate('prod', [profileId], { methods: ALL_METHODS }),
        (async () => {
          await h.ctx.feed.flush();
          await h.ctx.bus.drain();
        })(),
      ]);
      const events = (await h.ctx.store.readMembershipEvents('prod', 0, 1_000)).filter((e) => e.profileId === profileId);
      assert.deepEqual(events.map((e) => [e.audienceId, e.status]), [['gold', 'realized']]);
      await h.ctx.segmentation.flushConfirmations();
      const gold = (await h.ctx.store.memberships('prod', [profileId])).get(profileId)?.find((m) => m.audienceId === 'gold');
      assert.equal(gold?.status, 'existing', 'the later evaluations confirmed it');
    });
  });

  describe('identities the engine holds in memory', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0 });
      await setup(h);
    });
    after(() => h.close());

    it('follow a merge: the absorbed profile\'s identities resolve to the survivor', async () => {
      const email = (id: string) => ({ ns: 'email', id });
      for (const who of ['kim@x.io', 'lee@x.io']) assert.equal((await h.call('POST', '/v1/datasets/crm/records', person(who).record)).statusCode, 200);
      await settle(h);
      const kim = await h.ctx.segmentation.profileIdOf('prod', email('kim@x.io'));
      const lee = await h.ctx.segmentation.profileIdOf('prod', email('lee@x.io'));
      assert.ok(kim && lee && kim !== lee);
      // One record carrying both emails joins the two profiles.
      const both = { identityMap: { email: [{ id: 'kim@x.io', primary: true }, { id: 'lee@x.io' }] } };
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', both)).statusCode, 200);
      await settle(h);
      const survivor = await h.ctx.store.findProfileId('prod', email('kim@x.io'));
      assert.equal(await h.ctx.store.findProfileId('prod', email('lee@x.io')), survivor);
      assert.equal(await h.ctx.segmentation.profileIdOf('prod', email('kim@x.io')), survivor);
      assert.equal(await h.ctx.segmentation.profileIdOf('prod', email('lee@x.io')), survivor);
    });
  });

  describe('events added to an evaluated profile', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0 });
      await setup(h);
    });
    after(() => h.close());

    const statuses = async (profileId: string): Promise<Record<string, string>> => {
      await h.ctx.segmentation.flushConfirmations();
      return Object.fromEntries(((await h.ctx.store.memberships('prod', [profileId])).get(profileId) ?? []).map((m) => [m.audienceId, m.status]));
    };

    // Only the audiences an added event can touch are evaluated again (see relevance.ts in the
    // core); the others keep what the last evaluation of the profile found.
    it('re-evaluate only the audiences those events can touch', async () => {
      const ann = person('ann@x.io', { loyalty: { tier: 'gold' }, person: { birthDate: '1990-01-01' } });
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', ann.record)).statusCode, 200);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      const profileId = await h.ctx.store.findProfileId('prod', { ns: 'email', id: 'ann@x.io' });
      assert.ok(profileId);
      assert.deepEqual(await statuses(profileId), { gold: 'realized', adults: 'realized' });
      // From here the test hands the changes to the engine itself, with every method (some of
      // these audiences are batch ones), starting from an evaluation of everything.
      await h.ctx.segmentation.stop();
      assert.equal((await h.ctx.segmentation.evaluate('prod', [profileId], { methods: ALL_METHODS, reuse: true })).evaluations, AUDIENCES.length);

      const views = [view('ann@x.io', -3 * HOUR), view('ann@x.io', -2 * HOUR), view('ann@x.io', -HOUR)];
      for (const v of views) assert.equal((await h.call('POST', '/v1/datasets/web/records', v.record)).statusCode, 200);
      const viewKeys = views.map((v) => eventChangeKey('web', v.record._id));
      const seen = await h.ctx.segmentation.evaluate('prod', [profileId], { methods: ALL_METHODS, reuse: true, arrived: new Map([[profileId, viewKeys]]) });
      // Page views touch viewers-3 and view-then-buy's first step; not gold, buyers-7d, big-spenders, gold-buyers nor adults.
      assert.equal(seen.evaluations, 2);
      assert.equal(seen.realized, 1);
      assert.deepEqual(await statuses(profileId), { gold: 'existing', adults: 'existing', 'viewers-3': 'realized' });

      // The edge's way: its own committed event, named in `includes`. A purchase realizes buyers-7d
      // and view-then-buy, and gold-buyers after them (it depends on buyers-7d).
      const buy = purchase('ann@x.io', -30 * 60_000, 100);
      assert.equal((await h.call('POST', '/v1/datasets/web/records', buy.record)).statusCode, 200);
      const bought = await h.ctx.segmentation.evaluate('prod', [profileId], {
        methods: ALL_METHODS, reuse: true, includes: new Map([[profileId, [eventChangeKey('web', buy.record._id)]]]),
      });
      assert.equal(bought.realized, 3);
      assert.deepEqual(await statuses(profileId), {
        gold: 'existing', adults: 'existing', 'viewers-3': 'existing', 'buyers-7d': 'realized', 'view-then-buy': 'realized', 'gold-buyers': 'realized',
      });

      // A confirmation (realized → existing) changes nothing a later audience reads. A second
      // purchase touches buyers-7d, big-spenders and view-then-buy (in that order, with others
      // between): it confirms buyers-7d and view-then-buy, and neither gold-buyers (which reads
      // buyers-7d) nor viewers-3 (page views only) is evaluated again.
      const again7d = purchase('ann@x.io', -5 * 60_000, 100);
      assert.equal((await h.call('POST', '/v1/datasets/web/records', again7d.record)).statusCode, 200);
      const confirmed = await h.ctx.segmentation.evaluate('prod', [profileId], {
        methods: ALL_METHODS, reuse: true, includes: new Map([[profileId, [eventChangeKey('web', again7d.record._id)]]]),
      });
      assert.deepEqual([confirmed.evaluations, confirmed.realized, confirmed.exited], [3, 0, 0]);
      assert.deepEqual(await statuses(profileId), {
        gold: 'existing', adults: 'existing', 'viewers-3': 'existing', 'buyers-7d': 'existing', 'view-then-buy': 'existing', 'gold-buyers': 'realized',
      });

      // An event whose key is not among the profile's events (outside the retention window
      // here) is not guessed at: everything is evaluated.
      const again = await h.ctx.segmentation.evaluate('prod', [profileId], { methods: ALL_METHODS, reuse: true, arrived: new Map([[profileId, [eventChangeKey('web', 'nowhere')]]]) });
      assert.equal(again.evaluations, AUDIENCES.length);
    });
    // An event the edge evaluates (its key in `includes`) also reaches the streaming engine
    // through the feed (`arrived`), in either order: the second end costs nothing, and once both
    // ends met the key is forgotten (a change is delivered once), so a redelivery is evaluated.
    it('counts an event once, whichever end comes first: the edge naming it or the feed delivering it', async () => {
      await h.ctx.segmentation.stop();
      const cy = person('cy@x.io', { loyalty: { tier: 'gold' } });
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', cy.record)).statusCode, 200);
      const profileId = await h.ctx.store.findProfileId('prod', { ns: 'email', id: 'cy@x.io' });
      assert.ok(profileId);
      const evaluate = (opts: { arrived?: string[]; includes?: string[] }) =>
        h.ctx.segmentation.evaluate('prod', [profileId], {
          methods: ALL_METHODS,
          reuse: true,
          ...(opts.arrived ? { arrived: new Map([[profileId, opts.arrived]]) } : {}),
          ...(opts.includes ? { includes: new Map([[profileId, opts.includes]]) } : {}),
        });
      assert.equal((await evaluate({})).evaluations, AUDIENCES.length);
      const stored = async (at: number) => {
        const v = view('cy@x.io', at);
        assert.equal((await h.call('POST', '/v1/datasets/web/records', v.record)).statusCode, 200);
        return eventChangeKey('web', v.record._id);
      };
      // The edge first, then the feed. A page view touches viewers-3 and view-then-buy.
      const first = await stored(-2 * HOUR);
      assert.equal((await evaluate({ includes: [first] })).evaluations, 2);
      assert.equal((await evaluate({ arrived: [first] })).evaluations, 0);
      // The feed first, then the edge.
      const second = await stored(-HOUR);
      assert.equal((await evaluate({ arrived: [second] })).evaluations, 2);
      assert.equal((await evaluate({ includes: [second] })).evaluations, 0);
      // Both ends met: the same key delivered again is an event added, evaluated like one.
      assert.equal((await evaluate({ arrived: [second] })).evaluations, 2);
      assert.equal((await evaluate({ arrived: [first] })).evaluations, 2);
    });
    // A reusing evaluation of fewer methods (the edge's, the streaming engine's) leaves the
    // other audiences unevaluated in the state it remembers: an evaluation of every method on
    // that same state evaluates them, even though nothing it reads changed.
    it('evaluates what a narrower evaluation of the same state left out', async () => {
      await h.ctx.segmentation.stop();
      const bob = person('bob@x.io', { loyalty: { tier: 'gold' }, person: { birthDate: '1990-01-01' } });
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', bob.record)).statusCode, 200);
      const v = view('bob@x.io', -HOUR);
      assert.equal((await h.call('POST', '/v1/datasets/web/records', v.record)).statusCode, 200);
      const profileId = await h.ctx.store.findProfileId('prod', { ns: 'email', id: 'bob@x.io' });
      assert.ok(profileId);
      const key = eventChangeKey('web', v.record._id);
      const narrow = await h.ctx.segmentation.evaluate('prod', [profileId], { methods: STREAMING_METHODS, reuse: true, includes: new Map([[profileId, [key]]]) });
      assert.ok(narrow.evaluations > 0 && narrow.evaluations < AUDIENCES.length, `${narrow.evaluations} streaming audiences`);
      const all = await h.ctx.segmentation.evaluate('prod', [profileId], { methods: ALL_METHODS, reuse: true, arrived: new Map([[profileId, [key]]]) });
      assert.ok(all.evaluations >= AUDIENCES.length - narrow.evaluations, `${all.evaluations} evaluated`);
    });
  });

  // The hot view of a profile holds its events: an event committed in this process joins it at
  // once, and when that event's change comes back through the feed the view knows it already
  // (found by its time among the newest), so no evaluation reads the profile's events again.
  describe('a hot profile view', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0 });
      await setup(h);
    });
    after(() => h.close());

    it('keeps the events it holds when their changes come back through the feed', async () => {
      const cy = person('cy@x.io', { loyalty: { tier: 'gold' } });
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', cy.record)).statusCode, 200);
      const first = view('cy@x.io', -2 * HOUR);
      assert.equal((await h.call('POST', '/v1/datasets/web/records', first.record)).statusCode, 200);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      const profileId = await h.ctx.store.findProfileId('prod', { ns: 'email', id: 'cy@x.io' });
      assert.ok(profileId);
      // A hot evaluation (the edge's kind) fills the view with the profile's events.
      await h.ctx.segmentation.evaluate('prod', [profileId], { methods: STREAMING_METHODS, reuse: true, hot: true });
      const store = h.ctx.store;
      const loadEvents = store.loadEvents?.bind(store);
      assert.ok(loadEvents, 'the store reads events alone');
      let reads = 0;
      store.loadEvents = async (...args) => {
        reads++;
        return loadEvents(...args);
      };
      try {
        for (const at of [-HOUR, -30 * 60_000, -HOUR]) {
          assert.equal((await h.call('POST', '/v1/datasets/web/records', view('cy@x.io', at).record)).statusCode, 200);
          await h.ctx.feed.flush();
          await h.ctx.bus.drain();
        }
        const seen = await h.ctx.segmentation.evaluate('prod', [profileId], { methods: STREAMING_METHODS, reuse: true, hot: true, withMemberships: true });
        assert.equal(reads, 0, 'the streaming evaluations and this one read no events from the store');
        const status = seen.memberships?.get(profileId)?.get('viewers-3')?.status;
        assert.ok(status === 'realized' || status === 'existing', `four page views within a day: in viewers-3 (status ${status})`);
      } finally {
        store.loadEvents = loadEvents;
      }
    });
  });

  describe('a profile created by events', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0 });
      await setup(h);
      // An evaluation in the sandbox first: it fixes what views keep of events.
      assert.equal((await h.call('POST', '/v1/datasets/web/records', view('eve@x.io', -HOUR).record)).statusCode, 200);
      await settle(h);
    });
    after(() => h.close());

    it('is evaluated without being read back: nothing but its events, no membership', async () => {
      await recordProfileReads(h.ctx.store, async (reads) => {
        // Three page views of a visitor never seen before, in one request (one commit), then a
        // purchase in another: the streaming engine evaluates the new profile after each.
        const visits = [view('dee@x.io', -3 * HOUR), view('dee@x.io', -2 * HOUR), view('dee@x.io', -HOUR)].map((v) => v.record);
        assert.equal((await h.call('POST', '/v1/datasets/web/records', visits)).statusCode, 200);
        await settle(h);
        assert.equal((await h.call('POST', '/v1/datasets/web/records', purchase('dee@x.io', -30 * 60_000, 700).record)).statusCode, 200);
        await settle(h);
        assert.equal(reads.join(', '), '', 'no read of the new profile');
      });
      // What was evaluated from memory is what the store holds, and what a batch run finds.
      // (The streaming audiences: the others wait for a batch run.)
      const streaming = ['viewers-3', 'buyers-7d', 'gold'];
      const statuses = async () => {
        const ups = await membersOf(h, 'dee@x.io');
        return streaming.map((a) => [a, ups[a]?.status === 'realized' || ups[a]?.status === 'existing']);
      };
      const streamed = await statuses();
      assert.deepEqual(streamed, [['viewers-3', true], ['buyers-7d', true], ['gold', false]]);
      const job = await h.call('POST', '/v1/audiences/batch-jobs', { all: true });
      assert.equal(job.statusCode, 202, job.body);
      await h.ctx.jobs.idle();
      assert.deepEqual(await statuses(), streamed, 'a batch run over the store finds the same');
    });

    it('a profile created with attributes is read as before', async () => {
      const reads = await recordProfileReads(h.ctx.store, async (reads) => {
        assert.equal((await h.call('POST', '/v1/datasets/crm/records', person('fay@x.io', { loyalty: { tier: 'gold' } }).record)).statusCode, 200);
        await settle(h);
        return reads;
      });
      assert.ok(reads.includes('loadProfiles'), `its fragment is read from the store (reads: ${reads.join(', ')})`);
      assert.ok(['realized', 'existing'].includes((await membersOf(h, 'fay@x.io'))['gold']?.status ?? ''), 'in gold');
    });
  });

  describe("the views' event bound", () => {
    let h: Harness;
    let clock = T0;
    before(async () => {
      // The bound is set below, from the size of the events; a view unused for a minute gives its events up.
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '', viewIdleMs: 60_000 } }, { now: () => clock });
      await setup(h);
    });
    after(() => h.close());

    /** How many times the store read `profileId`'s events (alone or with its profile) while `fn` ran. */
    async function readsOf(profileId: string, fn: () => Promise<unknown>): Promise<number> {
      const store = h.ctx.store;
      const loadEvents = store.loadEvents?.bind(store);
      const loadProfiles = store.loadProfiles.bind(store);
      assert.ok(loadEvents, 'the store reads events alone');
      let reads = 0;
      store.loadEvents = async (sandboxId, ids, since) => {
        if (ids.includes(profileId)) reads++;
        return loadEvents(sandboxId, ids, since);
      };
      store.loadProfiles = async (sandboxId, ids, since) => {
        if (ids.includes(profileId)) reads++;
        return loadProfiles(sandboxId, ids, since);
      };
      try {
        await fn();
      } finally {
        store.loadEvents = loadEvents;
        store.loadProfiles = loadProfiles;
      }
      return reads;
    }

    it('keeps the events of views in use, and hands those of idle views to the views that need room', async () => {
      const ids: Record<string, string> = {};
      const { metrics } = h.ctx;
      const held = async () => ({ events: (await metrics.viewEvents.get()).values[0]?.value, bytes: (await metrics.viewBytes.get()).values[0]?.value ?? 0 });
      for (const who of ['vx', 'vi', 'vo', 'vu']) {
        const email = `${who}@x.io`;
        assert.equal((await h.call('POST', '/v1/datasets/crm/records', person(email, { loyalty: { tier: 'gold' } }).record)).statusCode, 200);
        for (const at of [-3 * HOUR, -2 * HOUR, -HOUR]) assert.equal((await h.call('POST', '/v1/datasets/web/records', view(email, at).record)).statusCode, 200);
        await settle(h);
        const id = await h.ctx.store.findProfileId('prod', { ns: 'email', id: email });
        assert.ok(id);
        ids[who] = id;
        if (who !== 'vx') continue;
        // vx's events have one projected body: counted once, with the event that made it.
        const first = await held();
        assert.equal(first.events, 3, "vx's view holds its events");
        h.ctx.segmentation.forget('prod', id);
        await h.ctx.segmentation.evaluate('prod', [id], { methods: STREAMING_METHODS, hot: true });
        const sized = await held();
        assert.equal(sized.events, 3, 'read back into its view');
        assert.ok(sized.bytes < first.bytes, `the body already shared counts with none of them now (${sized.bytes} bytes against ${first.bytes})`);
        // The bound: room for two profiles of three events, sized by vx's (rows of one size), then forgotten.
        h.ctx.segmentation.forget('prod', id);
        assert.deepEqual(await held(), { events: 0, bytes: 0 });
        h.ctx.config.segmentation.viewBytes = Math.floor((sized.bytes / 3) * 6.5);
      }
      const perEvent = h.ctx.config.segmentation.viewBytes / 6.5;
      const evaluate = (who: string) => h.ctx.segmentation.evaluate('prod', [ids[who]!], { methods: STREAMING_METHODS, hot: true });
      // vi and vo fill the bound; vu, ten seconds later, finds no idle view to take room from.
      await evaluate('vi');
      await evaluate('vo');
      clock = T0 + 10_000;
      await evaluate('vu');
      assert.equal(await readsOf(ids['vu']!, () => evaluate('vu')), 1, 'vu holds no events: read from the store');
      assert.equal(await readsOf(ids['vi']!, () => evaluate('vi')), 0, 'vi keeps its events');
      // A minute and a half later vi is in use again, vo has been idle since the start.
      clock = T0 + 90_000;
      assert.equal(await readsOf(ids['vi']!, () => evaluate('vi')), 0, 'vi keeps its events');
      await evaluate('vu');
      assert.equal(await readsOf(ids['vu']!, () => evaluate('vu')), 0, "vu now holds events: vo's went to it");
      assert.equal(await readsOf(ids['vi']!, () => evaluate('vi')), 0, 'vi, in use, kept its events');
      assert.equal(await readsOf(ids['vo']!, () => evaluate('vo')), 1, 'vo, idle, gave its events up');

      // Ten seconds later vi and vu are both in use and fill the bound; a new event of vi takes
      // the room from vu (the least recently used other), instead of costing vi all it holds.
      clock = T0 + 100_000;
      await evaluate('vi');
      await evaluate('vu');
      assert.equal(await readsOf(ids['vu']!, () => evaluate('vu')), 0, 'vu holds its events');
      await evaluate('vi');
      assert.equal((await h.call('POST', '/v1/datasets/web/records', view('vi@x.io', -HOUR / 2).record)).statusCode, 200);
      await settle(h);
      assert.equal(await readsOf(ids['vi']!, () => evaluate('vi')), 0, 'vi kept its events and holds the new one');
      assert.equal(await readsOf(ids['vu']!, () => evaluate('vu')), 1, 'vu gave its events up to the growing view');

      // What an operator sizes the bound with: the events held and their size, and where hot
      // evaluations took a profile's events from (its view, or the store).
      const now = await held();
      assert.equal(now.events, 4, "the views hold vi's four events");
      assert.ok(Math.abs(now.bytes - 4 * perEvent) < 4, `and their size (${now.bytes} bytes, ${perEvent} per event)`);
      const reads = async () => Object.fromEntries((await metrics.hotEventReads.get()).values.map((v) => [v.labels['source'], v.value]));
      const before = await reads();
      await evaluate('vi');
      await evaluate('vu');
      const after = await reads();
      assert.deepEqual({ view: (after['view'] ?? 0) - (before['view'] ?? 0), store: (after['store'] ?? 0) - (before['store'] ?? 0) }, { view: 1, store: 1 });

      // With room to spare, vi's next event (the newest) joins its view where it is, counted the same.
      h.ctx.config.segmentation.viewBytes = Math.floor(perEvent * 100);
      assert.equal((await h.call('POST', '/v1/datasets/web/records', view('vi@x.io', -HOUR / 4).record)).statusCode, 200);
      await settle(h);
      const grown = await held();
      assert.equal(grown.events, 5, "vi's five events");
      assert.ok(Math.abs(grown.bytes - 5 * perEvent) < 5, `and their size (${grown.bytes} bytes)`);
      assert.equal(await readsOf(ids['vi']!, () => evaluate('vi')), 0, 'vi holds the new one');
    });

    it("holds only the parts of events the audiences read, and reads them again for an audience that reads more", async () => {
      h.ctx.config.segmentation.viewBytes = 1 << 30;
      const email = 'pj@x.io';
      const page = { web: { webPageDetails: { name: 'home', URL: 'https://shop.example/home' }, webReferrer: { URL: 'https://search.example/?q=shoes' } } };
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', person(email).record)).statusCode, 200);
      for (const at of [-2 * HOUR, -HOUR]) assert.equal((await h.call('POST', '/v1/datasets/web/records', event(email, 'web.webpagedetails.pageViews', at, page).record)).statusCode, 200);
      await settle(h);
      const id = await h.ctx.store.findProfileId('prod', { ns: 'email', id: email });
      assert.ok(id);
      const evaluate = () => h.ctx.segmentation.evaluate('prod', [id], { methods: STREAMING_METHODS, hot: true, withMemberships: true });
      const bytes = async () => (await h.ctx.metrics.viewBytes.get()).values[0]?.value ?? 0;
      h.ctx.segmentation.forget('prod', id);
      const before = await bytes();
      assert.equal(await readsOf(id, evaluate), 1);
      const stored = (await h.ctx.store.loadEvents!('prod', [id], 0)).get(id) ?? [];
      assert.equal(stored.length, 2);
      const full = stored.reduce((n, e) => n + approxJsonBytes(e.eventId) + approxJsonBytes(e.body), 0);
      const kept = (await bytes()) - before;
      assert.ok(kept > 0 && kept < full * 0.75, `the view holds ${kept} bytes of events, the events take ${full}: their page names, URLs, referrers and identities are not read`);
      assert.equal(await readsOf(id, evaluate), 0, 'served from the view');

      // An audience reading the page name: the views held no page names, so the events are read again.
      assert.equal((await h.call('POST', '/v1/audiences', { id: 'home-viewers', name: 'home-viewers', query: 'select X from xEvent where X.web.webPageDetails.name = "home" and X.timestamp occurs < 1 day before now' })).statusCode, 201);
      let report: Awaited<ReturnType<typeof evaluate>> | undefined;
      assert.equal(await readsOf(id, async () => (report = await evaluate())), 1);
      assert.ok(['realized', 'existing'].includes(report?.memberships?.get(id)?.get('home-viewers')?.status ?? ''), 'in home-viewers');
      assert.equal(await readsOf(id, async () => (report = await evaluate())), 0, 'served from the view again, page names included');
      assert.ok(['realized', 'existing'].includes(report?.memberships?.get(id)?.get('home-viewers')?.status ?? ''), 'still in home-viewers');

      // Audiences the sandbox's set does not hold (a set compiled before a change, as a cache may
      // still hand out): the views keep what they read too, so page URLs are read.
      const query = 'select X from xEvent where X.web.webPageDetails.URL = "https://shop.example/home" and X.timestamp occurs < 1 day before now';
      const [first] = await h.ctx.audiences.compiledAll('prod');
      assert.ok(first);
      const stale = { row: { ...first.row, id: 'url-viewers', query, dependsOn: [] }, compiled: compileQuery(query, await h.ctx.audiences.schemas('prod')) };
      const urls = () => h.ctx.segmentation.evaluate('prod', [id], { methods: ALL_METHODS, audiences: [stale], hot: true, withMemberships: true });
      assert.equal(await readsOf(id, async () => (report = await urls())), 1);
      assert.ok(['realized', 'existing'].includes(report?.memberships?.get(id)?.get('url-viewers')?.status ?? ''), 'in url-viewers');
    });
  });

  // An evaluation reads a profile's events only as far back as its audiences reach, and reads
  // again, further, for audiences that reach further.
  describe('events read as far back as the audiences reach', () => {
    let h: Harness;
    let clock = T0;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
      await setup(h);
    });
    after(() => h.close());

    it('reads the reach of the evaluated audiences, and the retention for one without a window', async () => {
      const email = 'reach@x.io';
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', person(email, { loyalty: { tier: 'gold' } }).record)).statusCode, 200);
      for (const [at, total] of [[-20 * DAY, 400], [-3 * DAY, 200]] as const) assert.equal((await h.call('POST', '/v1/datasets/web/records', purchase(email, at, total).record)).statusCode, 200);
      for (const at of [-3 * HOUR, -2 * HOUR, -HOUR]) assert.equal((await h.call('POST', '/v1/datasets/web/records', view(email, at).record)).statusCode, 200);
      await settle(h);
      const id = await h.ctx.store.findProfileId('prod', { ns: 'email', id: email });
      assert.ok(id);
      const all = await h.ctx.audiences.compiledAll('prod');
      const only = (...ids: string[]) => all.filter((e) => ids.includes(e.row.id));
      const store = h.ctx.store;
      const sinces: number[] = [];
      const loadEvents = store.loadEvents!.bind(store);
      const loadProfiles = store.loadProfiles.bind(store);
      store.loadEvents = async (sandboxId, ids, since) => (sinces.push(since), loadEvents(sandboxId, ids, since));
      store.loadProfiles = async (sandboxId, ids, since) => (sinces.push(since), loadProfiles(sandboxId, ids, since));
      const evaluate = async (audiences: typeof all) => {
        sinces.length = 0;
        const r = await h.ctx.segmentation.evaluate('prod', [id], { methods: ALL_METHODS, audiences, hot: true, withMemberships: true });
        return { sinces: [...sinces], members: [...(r.memberships?.get(id)?.entries() ?? [])].filter(([, m]) => m.status !== 'exited').map(([a]) => a).sort() };
      };
      try {
        clock = T0 + 1_000;
        // What the streaming evaluation of these records left in memory goes: the reads are the test.
        h.ctx.segmentation.forget('prod', id);
        // Seven days at most (and a minute): the purchase of 20 days ago is not read.
        const week = await evaluate(only('buyers-7d', 'viewers-3', 'gold'));
        assert.equal(week.sinces.length, 1);
        assert.ok(week.sinces[0]! > clock - 7 * DAY - HOUR && week.sinces[0]! <= clock - 7 * DAY, `read since ${(clock - week.sinces[0]!) / DAY} days`);
        assert.deepEqual(week.members.filter((a) => ['buyers-7d', 'viewers-3', 'gold'].includes(a)), ['buyers-7d', 'gold', 'viewers-3']);
        // A sum over every purchase has no window: read again, back to the retention, and both purchases count.
        const ever = await evaluate(only('big-spenders'));
        assert.deepEqual(ever.sinces, [clock - 30 * DAY]);
        assert.ok(ever.members.includes('big-spenders'), 'the purchase of 20 days ago counts (400 + 200 > 500)');
        // The view now holds the month: the week's audiences are served from it.
        assert.deepEqual((await evaluate(only('buyers-7d', 'viewers-3'))).sinces, []);
        const again = await evaluate(only('big-spenders'));
        assert.deepEqual(again.sinces, [], 'still the month: the narrower evaluation did not cut it');
        assert.ok(again.members.includes('big-spenders'));
      } finally {
        store.loadEvents = loadEvents;
        store.loadProfiles = loadProfiles;
      }
    });

    it('ends the memberships of a profile with nothing left within reach', async () => {
      const email = 'gone@x.io';
      assert.equal((await h.call('POST', '/v1/datasets/web/records', purchase(email, -HOUR, 50).record)).statusCode, 200);
      await settle(h);
      const id = await h.ctx.store.findProfileId('prod', { ns: 'email', id: email });
      assert.ok(id);
      const buyers = (await h.ctx.audiences.compiledAll('prod')).filter((e) => e.row.id === 'buyers-7d');
      const status = async () => (await h.ctx.store.memberships('prod', [id])).get(id)?.find((m) => m.audienceId === 'buyers-7d')?.status;
      await h.ctx.segmentation.evaluate('prod', [id], { methods: ALL_METHODS, audiences: buyers });
      assert.ok(['realized', 'existing'].includes((await status())!), 'in the audience');
      // Nine days later (a re-evaluation that ran late): the purchase is out of reach, and out of the audience.
      clock = T0 + 9 * DAY;
      await h.ctx.segmentation.evaluate('prod', [id], { methods: ALL_METHODS, audiences: buyers });
      assert.equal(await status(), 'exited');
    });
  });

  // A dataset taken out of the profile keeps its events in the store; evaluations leave them out,
  // wherever they fall among the events of the datasets still in it.
  describe('events of a dataset no longer enabled for profile', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0 });
      await setup(h);
      const r = await h.call('POST', '/v1/datasets', { id: 'app', name: 'App', schemaId: 'web', profileEnabled: true });
      assert.equal(r.statusCode, 201, r.body);
    });
    after(() => h.close());

    it('are left out of evaluations', async () => {
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', person('di@x.io', {}).record)).statusCode, 200);
      // Page views alternating between the two datasets: web, app, web, app.
      for (const [dataset, at] of [['web', -4 * HOUR], ['app', -3 * HOUR], ['web', -2 * HOUR], ['app', -HOUR]] as const) {
        assert.equal((await h.call('POST', `/v1/datasets/${dataset}/records`, view('di@x.io', at).record)).statusCode, 200);
      }
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      const profileId = await h.ctx.store.findProfileId('prod', { ns: 'email', id: 'di@x.io' });
      assert.ok(profileId);
      const viewers = async (): Promise<string | undefined> =>
        (await h.ctx.segmentation.evaluate('prod', [profileId], { methods: ALL_METHODS, withMemberships: true })).memberships?.get(profileId)?.get('viewers-3')?.status;
      assert.ok(['realized', 'existing'].includes((await viewers()) ?? ''), 'four page views: in viewers-3');
      const off = await h.call('PATCH', '/v1/datasets/app', { profileEnabled: false });
      assert.equal(off.statusCode, 200, off.body);
      assert.equal(await viewers(), 'exited', 'two page views left in the profile');
    });
  });

  describe('membership events of one evaluation', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0 });
      await setup(h);
    });
    after(() => h.close());

    // Batch subscribers (activation, webhooks) do their work per call: an evaluation's events are
    // handed to the bus together, so they get them in one call, not the first alone then the rest.
    it('reach a batch subscriber in one call, in seq order', async () => {
      const calls: number[][] = [];
      const stop = h.ctx.bus.subscribeBatch<{ seq: number }>('memberships.*', 'test-batch', 1_000, async (msgs) => void calls.push(msgs.map((m) => m.payload.seq)));
      try {
        const ann = person('ann@x.io', { loyalty: { tier: 'gold' }, person: { birthDate: '1990-01-01' } });
        assert.equal((await h.call('POST', '/v1/datasets/crm/records', ann.record)).statusCode, 200);
        await h.ctx.feed.flush();
        await h.ctx.bus.drain();
      } finally {
        stop();
      }
      assert.equal(calls.length, 1, `one call (got ${JSON.stringify(calls)})`);
      assert.ok(calls[0]!.length >= 2, 'gold and adults');
      assert.deepEqual(calls[0], [...calls[0]!].sort((x, y) => x - y));
    });
  });

  describe('membership writes of concurrent evaluations', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => T0 });
    });
    after(() => h.close());

    // Calls of one turn may share a transaction (SQLite): each must still get exactly its own
    // events, in its order, and a failing call must cost no other.
    it('each call gets its own events; a failing call costs no other', async () => {
      const m = (audienceId: string) => ({ audienceId, status: 'realized' as const, lastQualificationTime: T0 });
      const write = (profileId: string, audiences: string[]) =>
        h.ctx.store.writeMemberships('prod', audiences.map((a) => ({ profileId, audienceId: a, membership: m(a), event: 'realized' as const })), T0);
      const bad = h.ctx.store.writeMemberships('prod', [
        { profileId: 'p-bad', audienceId: 'x', membership: m('x'), event: 'realized' },
        { profileId: 'p-bad', audienceId: 'y', membership: { audienceId: 'y', status: null as unknown as 'realized', lastQualificationTime: T0 }, event: 'realized' },
      ], T0);
      const [a, b, failed, c] = await Promise.allSettled([write('p-a', ['x', 'y']), write('p-b', ['x']), bad, write('p-c', ['z'])]);
      assert.equal(failed?.status, 'rejected');
      const events = [a, b, c].map((r) => (r?.status === 'fulfilled' ? r.value : []));
      assert.deepEqual(events.map((list) => list.map((e) => `${e.profileId}/${e.audienceId}`)), [['p-a/x', 'p-a/y'], ['p-b/x'], ['p-c/z']]);
      for (const list of events) assert.deepEqual(list.map((e) => e.seq), list.map((e) => e.seq).sort((x, y) => x - y), "seqs follow each call's order");
      const logged = await h.ctx.store.readMembershipEvents('prod', 0, 100);
      const bySeq = events.flat().sort((x, y) => x.seq - y.seq);
      assert.deepEqual(logged.map((e) => [e.seq, e.profileId, e.audienceId]), bySeq.map((e) => [e.seq, e.profileId, e.audienceId]), 'the log holds exactly those');
      const stored = await h.ctx.store.memberships('prod', ['p-a', 'p-b', 'p-bad', 'p-c']);
      assert.deepEqual([...stored].map(([p, list]) => [p, list.length]), [['p-a', 2], ['p-b', 1], ['p-bad', 0], ['p-c', 1]]);
    });
  });

  describe('re-evaluations on time', () => {
    let h: Harness;
    let clock = T0;
    before(async () => {
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
      await setup(h);
      const r = await h.call('POST', '/v1/audiences', { id: 'viewed-1h', name: 'viewed-1h', query: 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.timestamp occurs < 1 hour before now' });
      assert.equal(r.statusCode, 201, r.body);
      const old = await h.call('POST', '/v1/audiences', { id: 'viewed-1h-ago', name: 'viewed-1h-ago', query: 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.timestamp occurs > 1 hour before now' });
      assert.equal(old.statusCode, 201, old.body);
    });
    after(() => h.close());

    // A later view moves the exit later; the re-evaluation already scheduled (earlier) stands and,
    // when it runs, schedules the next one: the exit comes when the last view leaves the window.
    it('an audience window closes after the last event, however many events came in between', async () => {
      const inside = async (): Promise<boolean> => {
        await h.ctx.feed.flush();
        await h.ctx.bus.drain();
        await h.ctx.segmentation.tick();
        const status = (await membersOf(h, 'win@x.io'))['viewed-1h']?.status;
        return status === 'realized' || status === 'existing';
      };
      const send = async (at: number) => {
        clock = T0 + at;
        assert.equal((await h.call('POST', '/v1/datasets/web/records', view('win@x.io', at).record)).statusCode, 200);
      };
      await send(0);
      assert.equal(await inside(), true);
      await send(30 * 60_000);
      await send(40 * 60_000);
      assert.equal(await inside(), true);
      clock = T0 + HOUR;
      assert.equal(await inside(), true, 'the first view left the window, not the others');
      clock = T0 + HOUR + 35 * 60_000;
      assert.equal(await inside(), true, 'the second view left the window, not the third');
      clock = T0 + HOUR + 40 * 60_000;
      assert.equal(await inside(), false, 'the last view left the window');
    });

    it('a change that brings a flip earlier reschedules it earlier', async () => {
      const adult = async (): Promise<boolean> => {
        await h.ctx.feed.flush();
        await h.ctx.bus.drain();
        await h.ctx.segmentation.tick();
        const status = (await membersOf(h, 'teen@x.io'))['adults']?.status;
        return status === 'realized' || status === 'existing';
      };
      clock = T0;
      // 18 on 2025-03-11, then corrected: 18 on 2025-03-05 (T0 is 2025-03-01).
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', person('teen@x.io', { person: { birthDate: '2007-03-11' } }).record)).statusCode, 200);
      assert.equal(await adult(), false);
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', person('teen@x.io', { person: { birthDate: '2007-03-05' } }).record)).statusCode, 200);
      assert.equal(await adult(), false);
      clock = Date.parse('2025-03-06T00:00:00Z');
      assert.equal(await adult(), true, 'on time for the corrected birth date');
    });

    it('an event that brings a flip earlier reschedules it earlier', async () => {
      const inside = async (): Promise<boolean> => {
        await h.ctx.feed.flush();
        await h.ctx.bus.drain();
        await h.ctx.segmentation.tick();
        const status = (await membersOf(h, 'late@x.io'))['viewed-1h-ago']?.status;
        return status === 'realized' || status === 'existing';
      };
      const base = 30 * DAY;
      clock = T0 + base;
      assert.equal((await h.call('POST', '/v1/datasets/web/records', view('late@x.io', base).record)).statusCode, 200);
      assert.equal(await inside(), false, 'enters in an hour');
      // A view sent late, from 50 minutes ago: the profile enters 10 minutes from now.
      assert.equal((await h.call('POST', '/v1/datasets/web/records', view('late@x.io', base - 50 * 60_000).record)).statusCode, 200);
      assert.equal(await inside(), false);
      clock = T0 + base + 11 * 60_000;
      assert.equal(await inside(), true, 'entered on time for the late view');
    });
  });

  describe('re-evaluations that fail', () => {
    let h: Harness;
    let clock = T0;
    let failWrites = 0;
    before(async () => {
      // The real store, whose membership writes can be made to fail (as a crash or a lost
      // connection would) for the next calls.
      const store = await backend.open();
      const flaky = new Proxy(store, {
        get(target, key) {
          if (key === 'writeMemberships' && failWrites > 0) {
            return async () => {
              failWrites--;
              throw new Error('write failed');
            };
          }
          const v = Reflect.get(target, key, target) as unknown;
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
      h = await createHarness(flaky, { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
      await setup(h);
      const r = await h.call('POST', '/v1/audiences', { id: 'viewed-1h', name: 'viewed-1h', query: 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.timestamp occurs < 1 hour before now' });
      assert.equal(r.statusCode, 201, r.body);
    });
    after(() => h.close());

    it('a window expiry whose write failed still happens, once its lease ends', async () => {
      const inside = async (): Promise<boolean> => {
        await h.ctx.feed.flush();
        await h.ctx.bus.drain();
        await h.ctx.segmentation.tick();
        const status = (await membersOf(h, 'crash@x.io'))['viewed-1h']?.status;
        return status === 'realized' || status === 'existing';
      };
      assert.equal((await h.call('POST', '/v1/datasets/web/records', view('crash@x.io', 0).record)).statusCode, 200);
      assert.equal(await inside(), true);
      clock = T0 + HOUR;
      failWrites = 1;
      assert.equal(await inside(), true, 'the exit was not written');
      assert.equal(failWrites, 0, 'the tick tried to write the exit');
      clock = T0 + HOUR + REEVALUATION_LEASE_MS - 1;
      assert.equal(await inside(), true, 'not retried while leased');
      clock = T0 + HOUR + REEVALUATION_LEASE_MS;
      assert.equal(await inside(), false, 'retried when the lease ended');
    });
  });

  describe('streaming and batch agree', () => {
    let clock = T0;
    const emails = ['p0@x.io', 'p1@x.io', 'p2@x.io', 'p3@x.io'];
    const arbStep = fc.record({
      advance: fc.integer({ min: 0, max: 3 * DAY }),
      records: fc.array(
        fc.oneof(
          fc.record({ kind: fc.constant('tier' as const), who: fc.nat(3), tier: fc.constantFrom('gold', 'silver') }),
          fc.record({ kind: fc.constant('buy' as const), who: fc.nat(3), back: fc.integer({ min: 0, max: 2 * DAY }), total: fc.integer({ min: 1, max: 400 }) }),
          fc.record({ kind: fc.constant('view' as const), who: fc.nat(3), back: fc.integer({ min: 0, max: DAY }) }),
        ),
        { maxLength: 4 },
      ),
    });

    it('streaming membership equals batch membership for the same data and clock', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(arbStep, { minLength: 1, maxLength: 4 }), async (steps) => {
          clock = T0;
          const stream = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
          const batch = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { now: () => clock });
          try {
            await setup(stream);
            await setup(batch);
            for (const step of steps) {
              clock += step.advance;
              for (const r of step.records) {
                const email = emails[r.who]!;
                const rec =
                  r.kind === 'tier' ? person(email, { loyalty: { tier: r.tier } }) : r.kind === 'buy' ? purchase(email, clock - T0 - r.back, r.total) : view(email, clock - T0 - r.back);
                for (const h of [stream, batch]) assert.equal((await h.call('POST', `/v1/datasets/${rec.dataset}/records`, rec.record)).statusCode, 200);
              }
              await stream.ctx.feed.flush();
              await stream.ctx.bus.drain();
              await stream.ctx.segmentation.tick();
              await stream.ctx.batchSegmentation.run('prod');
              await stream.ctx.jobs.idle();
            }
            await batch.ctx.feed.flush();
            await batch.ctx.bus.drain();
            await batch.ctx.batchSegmentation.run('prod', { all: true });
            await batch.ctx.jobs.idle();
            for (const email of emails) {
              const s = await stream.call('GET', `/v1/profiles?ns=email&id=${email}`);
              if (s.statusCode === 404) continue;
              const inside = (ups: Record<string, { status: string }>) =>
                Object.entries(ups).filter(([, m]) => m.status !== 'exited').map(([id]) => id).sort();
              assert.deepEqual(inside(s.json().segmentMembership.ups), inside((await batch.call('GET', `/v1/profiles?ns=email&id=${email}`)).json().segmentMembership.ups), email);
            }
          } finally {
            await stream.close();
            await batch.close();
          }
        }),
        { numRuns: 15 },
      );
    });
  });
});

describe('confirmations written behind the evaluations', () => {
  it('are written before the store closes at shutdown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audient-confirm-'));
    try {
      const path = join(dir, 'audient.db');
      const store = new SqliteStore(path);
      await store.migrate();
      const h = await createHarness(store, { segmentation: { tickMs: 0, batchTime: '' } });
      await setup(h);
      const eve = person('eve@x.io', { loyalty: { tier: 'gold' } });
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', eve.record)).statusCode, 200);
      await settle(h);
      const profileId = await store.findProfileId('prod', { ns: 'email', id: 'eve@x.io' });
      assert.ok(profileId);
      assert.equal((await store.memberships('prod', [profileId])).get(profileId)?.find((m) => m.audienceId === 'gold')?.status, 'realized');
      // A later evaluation confirms the entry: queued, then written by the shutdown.
      await h.ctx.segmentation.evaluate('prod', [profileId], { methods: ALL_METHODS });
      await h.close();
      const reopened = new SqliteStore(path);
      try {
        assert.equal((await reopened.memberships('prod', [profileId])).get(profileId)?.find((m) => m.audienceId === 'gold')?.status, 'existing');
      } finally {
        await reopened.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
