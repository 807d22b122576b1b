/**
 * The profile-read benchmark's process. Builds a store of N profiles (CRM records with an ECID
 * and an email) with the real code creating and migrating it: the first N − 2S profiles are
 * seeded with raw inserts of the rows the store keeps (loading a million through the service
 * takes far longer than the run's budget on 2 cores), the next S with raw inserts timed as the
 * peer, the last S through `IngestionService.ingest`, 1,000 per call, timed as ours; then events
 * for random profiles. Then it times `ctx.profiles.get` by random identities in-process, and the
 * same keys as raw primary-key lookups on the same file. Its own process, so its peak memory is
 * the store's alone.
 */
import { statSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createContext, loadConfig, type AudientContext } from '@audient/server';
import { createBenchSandbox } from '../lib/audient.js';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { RawSeeder } from '../lib/raw-seed.js';
import { peakRssMB, rssMB } from '../lib/rss.js';
import { experienceEvents, prng, profileIdentity, profileRecord } from '../lib/workload.js';

/** Parent → process: what to build and measure. */
export interface RunProfileStore extends Message {
  type: 'run';
  dir: string;
  /** Profiles in the store (N). */
  profiles: number;
  /** Profiles in each timed slice (S): raw peer, then ours through the service. */
  slice: number;
  /** Experience events added on random profiles (raw inserts). */
  events: number;
  batch: number;
  seed: number;
  /** Timed lookups (and as many raw ones), after `warmup` untimed ones of each. */
  lookups: number;
  warmup: number;
  /** Measure reads (else only the load). */
  reads: boolean;
}

/** Latency percentiles of one lookup method, ms. */
export interface Latency {
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

/** Process → parent: the store is loaded. */
export interface StoreLoaded extends Message {
  type: 'loaded';
  profiles: number;
  seeded: number;
  seedMs: number;
  slice: number;
  /** Raw inserts of profiles N−2S..N−S. */
  peerMs: number;
  /** IngestionService.ingest of profiles N−S..N. */
  oursMs: number;
  rejected: number;
  events: number;
  eventsMs: number;
  feedDrainMs: number;
  changesPublished: number;
  dbMB: number;
  /** WAL file size after loading, and the part of it the checkpoint before the reads copied (−1: it could not complete). */
  walMB: number;
  walCheckpointedMB: number;
  rssAfterLoadMB: number;
  peakRssMB: number;
}

/** Process → parent: the read figures. */
export interface StoreRead extends Message {
  type: 'read';
  lookups: number;
  notFound: number;
  ours: Latency;
  raw: Latency;
  /** Largest RSS during the read phase (100 ms sampler). */
  readRssMB: number;
  peakRssMB: number;
  /** GC pauses while ours was timed. */
  gc: { count: number; totalMs: number; maxMs: number };
  /** When ours was timed, on the clock of CPU profiles (µs): `bench/cpu-profile.ts --window`. */
  oursWindowUs: [number, number];
}

/** Profile-store messages. */
export type ProfileStoreOut = StoreLoaded | StoreRead;

function latency(samples: Float64Array): Latency {
  const s = samples.slice().sort();
  const at = (p: number): number => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
  return { p50: at(50), p99: at(99), mean: s.reduce((a, b) => a + b, 0) / s.length, max: s[s.length - 1]! };
}

async function main(): Promise<void> {
  const run = await fromParent<RunProfileStore>('run');
  const dbPath = join(run.dir, 'audient.db');
  const config = loadConfig({ dataDir: run.dir, databaseUrl: dbPath, logLevel: 'warn' }, {});
  const ctx = await createContext(config);
  const sandbox = 'bench';
  await createBenchSandbox(ctx, sandbox, { crmFieldGroups: ['profile-person-details', 'profile-personal-contact-details', 'profile-loyalty-details'] });

  const seeder = new RawSeeder(dbPath, sandbox);
  const seeded = run.profiles - 2 * run.slice;
  const common = { batch: run.batch, seed: run.seed, datasetId: 'crm' };
  const seedMs = seeder.profiles({ ...common, from: 0, to: seeded });
  await seeder.checkpoint();
  // The peer writes its change rows to a table of the same shape the change feed does not read.
  const peerMs = seeder.profiles({ ...common, from: seeded, to: seeded + run.slice, changesTable: 'bench_peer_changes' });

  await seeder.checkpoint();
  let rejected = 0;
  const t0 = performance.now();
  for (let from = seeded + run.slice; from < run.profiles; from += run.batch) {
    const records: Array<Record<string, unknown>> = [];
    for (let i = from; i < Math.min(run.profiles, from + run.batch); i++) records.push(profileRecord(i, run.seed));
    const results = await ctx.ingestion.ingest(sandbox, 'crm', records);
    rejected += results.filter((r) => r.status === 'rejected').length;
  }
  const oursMs = performance.now() - t0;
  const t1 = performance.now();
  await ctx.feed.flush();
  await ctx.bus.drain();
  const feedDrainMs = performance.now() - t1;

  const size = (p: string): number => {
    try {
      return statSync(p).size;
    } catch {
      return 0;
    }
  };
  const pick = prng(run.seed + 7);
  const events = experienceEvents(run.events, { people: 1, seed: run.seed });
  const profileOf = events.map(() => Math.floor(pick() * run.profiles));
  const eventsMs = seeder.events({ events, profileOf: (i) => profileOf[i]!, batch: run.batch, seed: run.seed, datasetId: 'web' });
  const walMB = Math.round(size(`${dbPath}-wal`) / 1024 / 1024);
  // A store at rest: whatever the load left in the WAL is checkpointed before the reads.
  const checkpoint = await seeder.checkpoint();
  const walCheckpointedMB = checkpoint.completed ? checkpoint.walMB : -1;
  seeder.close();

  const changesPublished = (await ctx.metrics.changesPublished.get()).values.reduce((n, v) => n + v.value, 0);
  toParent({
    type: 'loaded',
    profiles: run.profiles,
    seeded,
    seedMs,
    slice: run.slice,
    peerMs,
    oursMs,
    rejected,
    events: events.length,
    eventsMs,
    feedDrainMs,
    changesPublished,
    dbMB: Math.round(size(dbPath) / 1024 / 1024),
    walMB,
    walCheckpointedMB,
    rssAfterLoadMB: rssMB(),
    peakRssMB: peakRssMB(),
  } satisfies StoreLoaded);
  if (run.reads) await measureReads(ctx, run, dbPath);
  await ctx.close();
  process.disconnect?.();
}

async function measureReads(ctx: AudientContext, run: RunProfileStore, dbPath: string): Promise<void> {
  const sandbox = 'bench';

  // The same random keys for both methods: half by ECID, half by email.
  const pick = prng(run.seed + 11);
  const keys = Array.from({ length: run.warmup + run.lookups }, () => {
    const k = Math.floor(pick() * run.profiles);
    const id = profileIdentity(k, run.seed);
    return pick() < 0.5 ? { ns: 'ecid', id: id.ecid } : { ns: 'email', id: id.email };
  });
  let readRss = rssMB();
  const sampler = setInterval(() => {
    readRss = Math.max(readRss, rssMB());
  }, 100);
  let notFound = 0;
  const ours = new Float64Array(run.lookups);
  // GC pauses during the timed lookups of ours: a usual cause of tail latency.
  const gcEntries: Array<{ startTime: number; duration: number }> = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcEntries.push({ startTime: e.startTime, duration: e.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  const window = { startUs: 0, endUs: 0, startMs: 0, endMs: 0 };
  for (let k = 0; k < keys.length; k++) {
    if (k === run.warmup) {
      window.startMs = performance.now();
      window.startUs = Number(process.hrtime.bigint() / 1000n);
    }
    const t = performance.now();
    const view = await ctx.profiles.get(sandbox, keys[k]!);
    const ms = performance.now() - t;
    if (!view.profileId) notFound++;
    if (k >= run.warmup) ours[k - run.warmup] = ms;
  }
  window.endUs = Number(process.hrtime.bigint() / 1000n);
  window.endMs = performance.now();
  // GC entries are delivered on a later macrotask; the lookups above ran on microtasks only.
  await new Promise((resolve) => setTimeout(resolve, 100));
  observer.disconnect();
  const gc = { count: 0, totalMs: 0, maxMs: 0 };
  for (const e of gcEntries) {
    if (e.startTime < window.startMs || e.startTime > window.endMs) continue;
    gc.count++;
    gc.totalMs += e.duration;
    gc.maxMs = Math.max(gc.maxMs, e.duration);
  }
  const raw = new Float64Array(run.lookups);
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const stmt = db.prepare('SELECT graph_id FROM identities WHERE sandbox_id = ? AND ns = ? AND id = ?');
    for (let k = 0; k < keys.length; k++) {
      const t = performance.now();
      const row = stmt.get(sandbox, keys[k]!.ns, keys[k]!.id) as { graph_id: string } | undefined;
      const ms = performance.now() - t;
      if (!row) notFound++;
      if (k >= run.warmup) raw[k - run.warmup] = ms;
    }
  } finally {
    db.close();
  }
  clearInterval(sampler);
  readRss = Math.max(readRss, rssMB());
  toParent({
    type: 'read',
    lookups: run.lookups,
    notFound,
    ours: latency(ours),
    raw: latency(raw),
    readRssMB: readRss,
    peakRssMB: peakRssMB(),
    gc,
    oursWindowUs: [window.startUs, window.endUs],
  } satisfies StoreRead);
}

runChild(main);
