/**
 * Audient's edge under test, in a process of its own: builds a SQLite store (WAL file), or a
 * PostgreSQL one in a scratch schema, of N CRM profiles (ECID + email; raw inserts of the rows the
 * store keeps, as the profile-read benchmark does) and recent page events on random profiles, then configures the sandbox through the real
 * services: 150 edge audiences, a datastream into the event dataset with a URL sync, and two
 * custom-personalization connections whose dataflows map every edge audience. Then the real HTTP
 * app listens on loopback. It answers one interact itself (in-process) to report the answer's
 * size, so the bare peer can return a body of the same size. On `stop` it drains the change feed
 * and reports what the edge ingested.
 */
import { createContext, buildApp, loadConfig } from '@audient/server';
import { withClient } from '@audient/storage/testing';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { RawSeeder } from '../lib/raw-seed.js';
import { RawPgSeeder } from '../lib/raw-seed-pg.js';
import { createBenchSandbox, ingestCounts } from '../lib/audient.js';
import type { AudientStopped } from '../processes/audient-server.js';
import { loopbackUrl } from '../lib/http.js';
import { peakRssMB, rssMB, sampleRss } from '../lib/rss.js';
import { experienceEvents, prng } from '../lib/workload.js';
import { interactBodies, newVisitorBodies } from './bodies.js';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** Parent → server: what to build. */
export interface StartEdge extends Message {
  type: 'start';
  dir: string;
  profiles: number;
  /** Page events seeded on random profiles (timestamps within the last hour). */
  events: number;
  audiences: number;
  seed: number;
  /** Distinct request bodies the load generator cycles (interactBodies): each visits once before the phases. */
  bodies: number;
  /** The store: the embedded SQLite file (default) or PostgreSQL at `databaseUrl` (a scratch schema). */
  store?: 'sqlite' | 'postgres';
  databaseUrl?: string;
}

/** Server → parent: listening. */
export interface EdgeReady extends Message {
  type: 'ready';
  url: string;
  /** `/ee/v1/interact?configId=…` */
  path: string;
  /** Mean bytes of interact answers for known profiles (20 probe requests). */
  answerBytes: number;
  /** The same for new visitors (no identity: 20 probes, each creating a profile). */
  newAnswerBytes: number;
  /** Mean segments the probe answers returned (sanity: the lookups are really computed). */
  probeSegments: number;
  /** How long the visitors' first visits took (untimed phase), ms. */
  primeMs: number;
  /** When they ran, for a CPU profile's `--window` (µs of the process's monotonic clock). */
  primeWindow: string;
  audiences: number;
  mappedAudiences: number;
  seedMs: number;
  dbMB: number;
  rssMB: number;
}

/** Server → parent: stopped (its own account of the run, as the ingestion server gives it). */
export type EdgeStopped = AudientStopped;

/** Server → parent: the change feed and its subscribers have caught up (answer to `settle`). */
export interface EdgeSettled extends Message {
  type: 'settled';
  /** How long catching up took, ms. */
  drainMs: number;
  /** Now, on the clock of CPU profiles (µs): for `bench/cpu-profile.ts --window`. */
  clockUs: number;
  /** CPU time the server process has used so far (all its threads), µs. */
  cpuUs: number;
  /** Events ingested so far (one per interact request of the load). */
  accepted: number;
  /** Profiles whose events hot evaluations took from their views / read from the store, so far (audient_hot_event_reads_total). */
  eventReads: { view: number; store: number };
  /** Since the previous settle (a phase and its catching up): the event loop's longest delay, ms, and the full (mark-compact) GCs, with their final pauses in all, ms. */
  loopMaxMs: number;
  fullGcs: number;
  fullGcPauseMs: number;
  /** The heap in use just after the last of those full GCs (about what was live), MB; undefined when none. */
  heapAfterFullGcMB: number | undefined;
}

/** Edge server messages. */
export type EdgeServerOut = EdgeReady | EdgeStopped | EdgeSettled;

const SECTIONS = ['home', 'women', 'men', 'kids', 'sale', 'stores', 'help'];
const TIERS = ['bronze', 'silver', 'gold', 'platinum'];

/**
 * `n` edge audiences of three kinds: loyalty attributes, a page view of a site section within
 * some hours, a purchase within some hours (optionally with a loyalty condition).
 */
function edgeAudienceQueries(n: number): Array<{ id: string; query: string }> {
  const out: Array<{ id: string; query: string }> = [];
  for (let i = 0; i < n; i++) {
    const hours = 1 + (i % 23);
    let query: string;
    switch (i % 3) {
      case 0:
        query = `loyalty.tier = "${TIERS[i % TIERS.length]}" and loyalty.points > ${(i * 61) % 9_000}`;
        break;
      case 1:
        query = `select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.web.webPageDetails.siteSection = "${SECTIONS[i % SECTIONS.length]}" and X.timestamp occurs < ${hours} hours before now`;
        break;
      default:
        query = `loyalty.points > ${(i * 37) % 5_000} and select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < ${hours} hours before now`;
    }
    out.push({ id: `edge-${String(i).padStart(3, '0')}`, query });
  }
  return out;
}

/** Seeds the store with the run's profiles and page events, raw (see RawSeeder); returns the time it took, ms. */
async function seedStore(start: StartEdge, sandboxId: string, dbPath: string, pgUrl: string | undefined): Promise<number> {
  // Page events of the last hour on random profiles, so edge audiences on events have something to find.
  const now = Date.now();
  const pick = prng(start.seed + 7);
  const events = experienceEvents(start.events, { people: 1, seed: start.seed }).map((e, i) => ({
    ...e,
    timestamp: new Date(now - 3_600_000 + Math.floor((i / Math.max(1, start.events)) * 3_500_000)).toISOString(),
  }));
  const profileOf = events.map(() => Math.floor(pick() * start.profiles));
  let seedMs: number;
  if (pgUrl) {
    const seeder = new RawPgSeeder(pgUrl, sandboxId);
    seedMs = await seeder.profiles({ count: start.profiles, batch: 5_000, seed: start.seed, datasetId: 'crm' });
    seedMs += await seeder.events({ events, profileOf: (i) => profileOf[i]!, batch: 5_000, seed: start.seed, datasetId: 'web' });
  } else {
    const seeder = new RawSeeder(dbPath, sandboxId);
    seedMs = seeder.profiles({ from: 0, to: start.profiles, batch: 1_000, seed: start.seed, datasetId: 'crm', checkpointEvery: 100_000 });
    seedMs += seeder.events({ events, profileOf: (i) => profileOf[i]!, batch: 1_000, seed: start.seed, datasetId: 'web' });
    await seeder.checkpoint();
    seeder.close();
  }
  return seedMs;
}

async function main(): Promise<void> {
  const start = await fromParent<StartEdge>('start');
  const dbPath = `${start.dir}/audient.db`;
  const pgUrl = start.store === 'postgres' ? start.databaseUrl : undefined;
  if (start.store === 'postgres' && !pgUrl) throw new Error('a PostgreSQL edge server needs databaseUrl');
  // Only the settings tuned by AUDIENT_* variables come from the environment (edge-ab.ts sets
  // them per server to compare a switch); where the store lives and the listener are the run's.
  const tuning = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('AUDIENT_') && !['AUDIENT_DATA_DIR', 'AUDIENT_DATABASE_URL', 'AUDIENT_HOST', 'AUDIENT_PORT'].includes(k)));
  const config = loadConfig({ dataDir: start.dir, databaseUrl: pgUrl ?? dbPath, host: '127.0.0.1', port: 0, logLevel: 'warn' }, tuning);
  const ctx = await createContext(config);
  const sandboxId = 'bench';
  await createBenchSandbox(ctx, sandboxId, {
    crmFieldGroups: ['profile-person-details', 'profile-personal-contact-details', 'profile-loyalty-details', 'profile-consents'],
  });

  // Seeded in a function of its own: main stays suspended for the whole run, and whatever its
  // frame holds stays on the heap (200,000 seed events were a quarter of the heap's objects, marked
  // by every major GC of the phases).
  const seedMs = await seedStore(start, sandboxId, dbPath, pgUrl);

  const queries = edgeAudienceQueries(start.audiences);
  for (const q of queries) {
    const row = await ctx.audiences.create(sandboxId, { id: q.id, name: q.id, query: q.query });
    if (row.method !== 'edge') throw new Error(`audience ${q.id} is ${row.method}, not edge (${row.methodReason})`);
  }
  const datastream = await ctx.datastreams.create(sandboxId, {
    name: 'Web site',
    allowedOrigins: ['*'],
    eventDatasetId: 'web',
    orgId: 'BENCH@AdobeOrg',
    urlSyncs: [{ id: 'partner-pixel', type: 'url', url: 'https://partner.example/sync?uid={ECID}' }],
  });
  const ids = queries.map((q) => q.id);
  const half = Math.ceil(ids.length / 2);
  const mapped = new Set<string>();
  for (const [alias, audienceIds] of [
    ['personalizationAlias', ids.slice(0, half + Math.floor(half / 3))],
    ['adServerAlias', ids.slice(half - Math.floor(half / 3))],
  ] as const) {
    const conn = await ctx.connections.create(sandboxId, { name: alias, destinationId: 'custom-personalization', settings: { integrationAlias: alias, datastreamId: datastream.id } });
    await ctx.dataflows.create(sandboxId, { name: alias, connectionId: conn.id, audienceIds: [...audienceIds], mapping: [] });
    audienceIds.forEach((id) => mapped.add(id));
  }
  await ctx.feed.flush();
  await ctx.bus.drain();

  const app = await buildApp(ctx);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const path = `/ee/v1/interact?configId=${datastream.id}`;

  // The run's visitors are returning ones (a known ECID): each visits once first, as it would
  // have before, so the phases measure visits of profiles whose memberships Audient has computed
  // (raw seeding skipped the evaluation that ingestion would have done), not first evaluations.
  const primeStart = performance.now();
  const primeClockUs = Number(process.hrtime.bigint() / 1000n);
  const bodies = interactBodies(start.bodies, start.profiles, start.seed);
  for (let at = 0; at < bodies.length; at += 32) {
    await Promise.all(
      bodies.slice(at, at + 32).map(async (payload) => {
        const r = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload });
        if (r.statusCode !== 200) throw new Error(`first visit answered ${r.statusCode}: ${r.body}`);
      }),
    );
  }
  await ctx.feed.flush();
  await ctx.bus.drain();
  const primeMs = performance.now() - primeStart;
  const primeWindow = `${primeClockUs},${Number(process.hrtime.bigint() / 1000n)}`;

  // Probe: interacts of a few of the run's visitors, returning ones (after their first visit), in-process,
  // for the mean answer size the peer copies: answers of first visits carry fewer segments.
  const probes = 20;
  let answerBytes = 0;
  let probeSegments = 0;
  for (let k = 0; k < probes; k++) {
    const probe = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload: bodies[Math.floor((k * bodies.length) / probes)]! });
    if (probe.statusCode !== 200) throw new Error(`probe interact answered ${probe.statusCode}: ${probe.body}`);
    answerBytes += probe.rawPayload.length;
    const answer = probe.json() as { handle: Array<{ type: string; payload: Array<{ segments?: unknown[] }> }> };
    probeSegments += answer.handle
      .filter((h) => h.type === 'activation:pull')
      .flatMap((h) => h.payload)
      .reduce((n, p) => n + (p.segments?.length ?? 0), 0);
  }
  answerBytes = Math.round(answerBytes / probes);
  probeSegments = Math.round(probeSegments / probes);
  let newAnswerBytes = 0;
  for (const payload of newVisitorBodies(probes)) {
    const probe = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload });
    if (probe.statusCode !== 200) throw new Error(`new visitor probe answered ${probe.statusCode}: ${probe.body}`);
    newAnswerBytes += probe.rawPayload.length;
  }
  newAnswerBytes = Math.round(newAnswerBytes / probes);
  await ctx.feed.flush();
  await ctx.bus.drain();

  const rss = sampleRss();
  const { statSync } = await import('node:fs');
  toParent({
    type: 'ready',
    url: loopbackUrl(app.server),
    path,
    answerBytes,
    newAnswerBytes,
    probeSegments,
    primeMs,
    primeWindow,
    audiences: queries.length,
    mappedAudiences: mapped.size,
    seedMs,
    dbMB: Math.round((pgUrl ? await schemaBytes(pgUrl) : statSync(dbPath).size) / 1024 / 1024),
    rssMB: rssMB(),
  } satisfies EdgeReady);

  // What held the event loop in a phase: its longest delay, and the full GCs (a mark-compact of
  // the whole heap; its incremental marking on the main thread is not in the pause, but is in
  // the delay), so a phase's outliers can be told apart without a profile.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const gcs: { full: number; pauseMs: number; heapMB: number | undefined } = { full: 0, pauseMs: 0, heapMB: undefined };
  const gcWatch = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as { detail?: { kind?: number } }).detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
      gcs.full++;
      gcs.pauseMs += e.duration;
      // Read when the entry is delivered, a little after the GC: what was live, and a little more.
      gcs.heapMB = getHeapStatistics().used_heap_size / 1024 / 1024;
    }
  });
  gcWatch.observe({ entryTypes: ['gc'] });

  // Between phases the parent asks the server to catch up (streaming evaluation of what the last
  // phase ingested), so one phase's backlog is not measured in the next.
  for (;;) {
    const msg = await fromParent<Message>('settle', 'stop');
    if (msg.type === 'stop') break;
    const t = performance.now();
    await ctx.feed.flush();
    await ctx.bus.drain();
    const cpu = process.cpuUsage();
    const { accepted } = await ingestCounts(ctx);
    const reads = (await ctx.metrics.hotEventReads.get()).values;
    const eventReads = { view: reads.find((v) => v.labels['source'] === 'view')?.value ?? 0, store: reads.find((v) => v.labels['source'] === 'store')?.value ?? 0 };
    toParent({
      type: 'settled',
      drainMs: performance.now() - t,
      clockUs: Number(process.hrtime.bigint() / 1000n),
      cpuUs: cpu.user + cpu.system,
      accepted,
      eventReads,
      loopMaxMs: loop.max / 1e6,
      fullGcs: gcs.full,
      fullGcPauseMs: gcs.pauseMs,
      heapAfterFullGcMB: gcs.heapMB,
    } satisfies EdgeSettled);
    loop.reset();
    gcs.full = 0;
    gcs.pauseMs = 0;
    gcs.heapMB = undefined;
  }
  gcWatch.disconnect();
  loop.disable();
  const t = performance.now();
  await ctx.feed.flush();
  await ctx.bus.drain();
  const feedDrainMs = performance.now() - t;
  rss.stop();
  const sampledPeakRssMB = rss.peak();
  toParent({
    type: 'stopped',
    ...(await ingestCounts(ctx)),
    feedDrainMs,
    peakRssMB: peakRssMB(),
    sampledPeakRssMB,
  } satisfies EdgeStopped);
  await app.close();
  await ctx.close();
  process.disconnect?.();
}

/** Bytes of the tables and indexes of the schema a PostgreSQL URL selects. */
async function schemaBytes(url: string): Promise<number> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ n: string }>(
      `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relkind = 'r'`,
    );
    return Number(rows[0]?.n ?? 0);
  });
}

runChild(main);
