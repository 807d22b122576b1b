/**
 * The streaming benchmark's process: a SQLite file store, `audiences` streaming/edge audiences,
 * then N new CRM profile records handed to IngestionService.ingest `batch` at a time (calls in
 * sequence); the change feed publishes, SegmentationEngine.onChange evaluates and the membership
 * events reach the bus. Latency per profile: hand-off of its record → its first membership event
 * seen by a `memberships.*` subscriber (from when it was due, when offered at a set rate). Rate:
 * records / (first hand-off → pipeline drained).
 */
import { join } from 'node:path';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { peakRssMB } from '../lib/rss.js';
import { streamingAudiences } from './audiences.js';
import { makeEvents, makeProfile } from './data.js';
import { SANDBOX, benchContext } from './store-setup.js';

/** Parent → process. */
export interface RunStreaming extends Message {
  type: 'run';
  dir: string;
  records: number;
  batch: number;
  audiences: number;
  seed: number;
  label: string;
  /**
   * When set, records are offered at this rate (open loop: each call is due at its place in the
   * schedule and latency counts from when it was due, so falling behind is measured); otherwise
   * calls follow one another as fast as the pipeline takes them.
   */
  ratePerSec?: number;
  /**
   * `new-profiles` (default): each record is a new CRM profile. `events`: `records` CRM
   * profiles are ingested first (untimed, drained), then the timed records are web events of
   * those profiles, each on a profile drawn at random, timestamped at the current time.
   */
  workload?: 'new-profiles' | 'events';
}

/** Process → parent. */
export interface StreamingDone extends Message {
  type: 'done';
  records: number;
  audiences: number;
  methods: Record<string, number>;
  wallMs: number;
  /** CPU time (user + system) of this process over the same span as wallMs. */
  cpuMs: number;
  ingestMs: number;
  membershipEvents: number;
  profilesWithEvent: number;
  p50: number;
  p99: number;
  max: number;
  peakRssMB: number;
}

async function main(): Promise<void> {
  const run = await fromParent<RunStreaming>('run');
  const ctx = await benchContext({ dir: run.dir, databaseUrl: join(run.dir, `${run.label}.db`) });
  const methods: Record<string, number> = {};
  for (const a of streamingAudiences(run.audiences).slice(0, run.audiences)) {
    const row = await ctx.audiences.create(SANDBOX, { id: a.id, name: a.id, query: a.query });
    methods[row.method] = (methods[row.method] ?? 0) + 1;
  }
  const firstSeen = new Map<string, number>();
  let membershipEvents = 0;
  ctx.bus.subscribe<{ profileId: string }>('memberships.*', 'bench', async (m) => {
    membershipEvents++;
    if (!firstSeen.has(m.payload.profileId)) firstSeen.set(m.payload.profileId, performance.now());
  });
  const profileRecord = (i: number): Record<string, unknown> => ({ ...makeProfile(i, run.seed), identityMap: { email: [{ id: `member${i}@example.net`, primary: true }] } });
  const events = run.workload === 'events';
  if (events) {
    for (let from = 0; from < run.records; from += 100) {
      await ctx.ingestion.ingest(SANDBOX, 'crm', Array.from({ length: Math.min(100, run.records - from) }, (_, k) => profileRecord(from + k)));
    }
    await ctx.feed.flush();
    await ctx.bus.drain();
    membershipEvents = 0;
    firstSeen.clear();
  }
  // Deterministic draw of the profile of each event (xorshift32).
  let x = (run.seed * 2_654_435_761) >>> 0 || 1;
  const draw = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % run.records;
  };
  const eventRecord = (j: number): Record<string, unknown> => {
    const shapes = makeEvents(j, run.seed);
    const e = shapes[0] ?? { eventType: 'web.webpagedetails.pageViews' };
    return { ...e, _id: `live-${run.seed}-${j}`, timestamp: new Date().toISOString(), identityMap: { email: [{ id: `member${draw()}@example.net`, primary: true }] } };
  };
  const handedOff = new Map<string, number>();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let from = 0; from < run.records; from += run.batch) {
    const records: Array<Record<string, unknown>> = [];
    for (let i = from; i < Math.min(run.records, from + run.batch); i++) records.push(events ? eventRecord(i) : profileRecord(i));
    let at = performance.now();
    if (run.ratePerSec) {
      const due = t0 + (from / run.ratePerSec) * 1000;
      if (due > at) await new Promise((r) => setTimeout(r, due - at));
      at = due;
    }
    const results = await ctx.ingestion.ingest(SANDBOX, events ? 'web' : 'crm', records);
    for (const r of results) {
      if (r.status !== 'accepted') throw new Error(`record not accepted: ${JSON.stringify(r)}`);
      if (!events && r.profileId) handedOff.set(r.profileId, at);
    }
  }
  const ingestMs = performance.now() - t0;
  await ctx.feed.flush();
  await ctx.bus.drain();
  const wallMs = Math.max(performance.now() - t0, 0);
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const lat: number[] = [];
  for (const [pid, at] of handedOff) {
    const seen = firstSeen.get(pid);
    if (seen !== undefined) lat.push(seen - at);
  }
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil(p * lat.length) - 1))] ?? NaN;
  await ctx.close();
  toParent({
    type: 'done', records: run.records, audiences: run.audiences, methods, wallMs, cpuMs, ingestMs, membershipEvents,
    profilesWithEvent: lat.length, p50: q(0.5), p99: q(0.99), max: q(1), peakRssMB: peakRssMB(),
  } satisfies StreamingDone);
  process.disconnect?.();
}

runChild(main);
