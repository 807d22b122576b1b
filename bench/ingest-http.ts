/**
 * Streaming ingestion over real HTTP: 200,000 experience events with identities (50,000 people,
 * graphs that grow and link) POSTed to a listening Audient by a separate load-generator process,
 * in requests of 100 events and in single-event requests, into SQLite (a WAL file) and PostgreSQL
 * (a fresh schema). Every event is validated, identity-resolved, stored durably and its change
 * published. Peer, same run, same generator and bodies: a bare node:http server that only parses.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { beside, forkTs, serverNodeFlags, type Message } from './lib/child.js';
import { commandFor, type Family, type RunEnv } from './lib/family.js';
import { machineInfo } from './lib/machine.js';
import { benchPgUrl, createScratchSchema, postgresUnavailable } from './lib/postgres.js';
import { fmt, type BenchEntry, type Results } from './lib/results.js';
import { sourceRevision } from './lib/revision.js';
import type { BodyShape } from './lib/workload.js';
import type { LoadDone, LoadOut, RunLoad } from './processes/load-client.js';
import type { ServerOut, ServerStopped, StartServer } from './processes/audient-server.js';

/** Events per run, people in the population, requests in flight. */
const EVENTS = 200_000;
const PEOPLE = 50_000;
const SEED = 20_240_601;
const CONCURRENCY = 32;
/**
 * Single-event requests: smaller bounded counts (the first events of the same stream) keep the
 * whole `npm run bench` within ~20 minutes on a 2-core machine; the entries say so.
 */
const SINGLE_SQLITE_EVENTS = 50_000;
const SINGLE_POSTGRES_EVENTS = 5_000;
/** No load runs longer than this; a truncated run says so in its note. */
const TIME_LIMIT_MS = 180_000;

type StoreKind = 'sqlite' | 'postgres';
interface Variant {
  id: string;
  shape: BodyShape;
  store: StoreKind;
  events: number;
  goal: number;
}

const VARIANTS: readonly Variant[] = [
  { id: 'ingest.http.batch100.sqlite', shape: 'batch100', store: 'sqlite', events: EVENTS, goal: 20_000 },
  { id: 'ingest.http.single.sqlite', shape: 'single', store: 'sqlite', events: SINGLE_SQLITE_EVENTS, goal: 5_000 },
  { id: 'ingest.http.batch100.postgres', shape: 'batch100', store: 'postgres', events: EVENTS, goal: 20_000 },
  { id: 'ingest.http.single.postgres', shape: 'single', store: 'postgres', events: SINGLE_POSTGRES_EVENTS, goal: 5_000 },
];

interface Measured {
  load: LoadDone;
  server: ServerStopped;
  eventsPerSecond: number;
  /** 1-minute load average when the load started: other work on the machine shows here. */
  loadavgBefore: number;
}

/** Starts a server process, drives it with a load process, stops it; both are always ended. */
async function measure(
  env: RunEnv,
  opts: { server: 'audient' | 'bare'; shape: BodyShape; events: number; databaseUrl?: string; dataDir?: string; label: string },
): Promise<Measured> {
  const file = beside(import.meta.url, `./processes/${opts.server === 'audient' ? 'audient-server' : 'bare-server'}.ts`);
  const nodeArgs =
    opts.server === 'audient'
      ? [...serverNodeFlags(), ...(env.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${env.cpuProfDir}`, `--cpu-prof-name=${opts.label}.cpuprofile`] : [])]
      : [];
  const server = forkTs<StartServer | Message, ServerOut>(file, { nodeArgs });
  const client = forkTs<RunLoad, LoadOut>(beside(import.meta.url, './processes/load-client.ts'));
  try {
    server.send({ type: 'start', dataDir: opts.dataDir ?? env.tmp, databaseUrl: opts.databaseUrl ?? ':memory:' } satisfies StartServer);
    const ready = await server.receive('ready', 60_000);
    client.send({
      type: 'run',
      url: ready.url,
      path: opts.server === 'audient' ? `/v1/datasets/${ready.datasetId}/records` : '/ingest',
      apiKey: ready.apiKey || undefined,
      shape: opts.shape,
      count: opts.events,
      seed: SEED,
      people: PEOPLE,
      concurrency: CONCURRENCY,
      timeLimitMs: TIME_LIMIT_MS,
    });
    const generated = await client.receive('generated', 120_000);
    env.log(`  ${opts.label}: ${generated.requests} requests (${fmt(generated.bytes / 1e6)} MB) ready in ${generated.ms} ms; sending…`);
    const loadavgBefore = loadavg()[0]!;
    const load = await client.receive('done', TIME_LIMIT_MS + 120_000);
    server.send({ type: 'stop' });
    const stopped = await server.receive('stopped', 300_000);
    const eventsPerSecond = load.eventsOk / (load.wallMs / 1000);
    env.log(
      `  ${opts.label}: ${fmt(eventsPerSecond)} events/s over ${fmt(load.wallMs / 1000)} s, statuses ${JSON.stringify(load.statuses)}, ` +
        `server CPU ${fmt((stopped.cpuMs * 1000) / Math.max(1, load.eventsOk))} µs/event, peak RSS ${stopped.peakRssMB} MB${opts.server === 'audient' ? `, ${stopped.accepted} accepted, ${stopped.changesPublished} changes published (+${Math.round(stopped.feedDrainMs)} ms to drain)` : ''}`,
    );
    return { load, server: stopped, eventsPerSecond, loadavgBefore };
  } finally {
    await Promise.all([client.exited(10_000), server.exited(30_000)]);
  }
}

function entry(v: Variant, ours: Measured, peer: Measured, source: string): BenchEntry {
  const notes: string[] = [];
  const bad = Object.entries(ours.load.statuses).filter(([s]) => s !== '200');
  if (bad.length) notes.push(`NOT every response was 200: ${JSON.stringify(ours.load.statuses)}; first failure: ${ours.load.firstFailure}. Only events answered 200 are counted.`);
  if (ours.load.truncated) notes.push(`Stopped by the ${TIME_LIMIT_MS / 1000} s time limit after ${ours.load.requests} requests.`);
  if (v.events < EVENTS) {
    notes.push(
      `Bounded to the first ${v.events.toLocaleString('en-US')} events of the same stream (not ${EVENTS.toLocaleString('en-US')}) to keep \`npm run bench\` within ~20 minutes on this machine; the peer ran the same stream (at least as many events).`,
    );
  }
  if (ours.server.accepted !== ours.load.eventsOk) notes.push(`The server counted ${ours.server.accepted} accepted events; the client ${ours.load.eventsOk}.`);
  return {
    value: Math.round(ours.eventsPerSecond),
    unit: 'events/s (higher is better)',
    goal: `>= ${v.goal} events/s`,
    peer: { name: `bare node:http + JSON.parse (${v.shape === 'single' ? 'single' : 'batch of 100'})`, value: Math.round(peer.eventsPerSecond) },
    ratio: Math.round((ours.eventsPerSecond / peer.eventsPerSecond) * 1000) / 1000,
    command: commandFor(v.id),
    at: new Date().toISOString(),
    peakRssMB: ours.server.peakRssMB,
    ...(notes.length ? { note: notes.join(' ') } : {}),
    details: {
      events: ours.load.eventsOk,
      requests: ours.load.requests,
      'requests in flight': CONCURRENCY,
      people: PEOPLE,
      'wall time, s (first request to last response)': Math.round(ours.load.wallMs) / 1000,
      'request latency p50, ms': Math.round(ours.load.latencyP50Ms * 100) / 100,
      'request latency p99, ms': Math.round(ours.load.latencyP99Ms * 100) / 100,
      'events accepted (server count)': ours.server.accepted,
      'changes published': ours.server.changesPublished,
      'change feed drain after last response, ms': Math.round(ours.server.feedDrainMs),
      'server RSS peak while serving (100 ms sampler), MB': ours.server.sampledPeakRssMB,
      'server CPU time per event (user + system, until the feed drained), µs': Math.round((ours.server.cpuMs * 1000) / Math.max(1, ours.load.eventsOk)),
      'peer events/s': Math.round(peer.eventsPerSecond),
      'peer server CPU time per event, µs': Math.round((peer.server.cpuMs * 1000) / Math.max(1, peer.load.eventsOk)),
      'peer request latency p99, ms': Math.round(peer.load.latencyP99Ms * 100) / 100,
      'peer peak RSS, MB': peer.server.peakRssMB,
      'load average (1 min) when the load started': Math.round(ours.loadavgBefore * 100) / 100,
    },
    machine: machineInfo(),
    source,
  };
}

/** The HTTP ingestion family. */
export const ingestHttp: Family = {
  name: 'ingest.http',
  ids: VARIANTS.map((v) => v.id),
  async run(selected, env) {
    const source = sourceRevision();
    const chosen = VARIANTS.filter((v) => selected.has(v.id));
    const out: Results = {};
    let pgWhy: string | undefined;
    if (chosen.some((v) => v.store === 'postgres')) {
      pgWhy = await postgresUnavailable(benchPgUrl());
      if (pgWhy) env.log(`  PostgreSQL at ${benchPgUrl()} is unavailable (${pgWhy}); its benchmarks are skipped`);
    }
    // BENCH_INGEST_SCALE (only with BENCH_SMOKE, which writes nothing) sizes iteration runs.
    const override = Number(process.env['BENCH_INGEST_SCALE']);
    const scale = process.env['BENCH_SMOKE'] === '1' && override > 0 && override <= 1 ? override : env.scale;
    const runnable = chosen
      .filter((v) => v.store === 'sqlite' || !pgWhy)
      .map((v) => ({ ...v, events: Math.max(100, Math.round((v.events * scale) / 100) * 100) }));
    const peers = new Map<BodyShape, Measured>();
    for (const shape of ['batch100', 'single'] as const) {
      const need = runnable.filter((v) => v.shape === shape);
      if (!need.length) continue;
      const events = Math.max(...need.map((v) => v.events));
      peers.set(shape, await measure(env, { server: 'bare', shape, events, label: `peer.${shape}` }));
    }
    for (const v of runnable) {
      env.log(`${v.id}`);
      let ours: Measured;
      if (v.store === 'sqlite') {
        const dataDir = join(env.tmp, v.id);
        mkdirSync(dataDir, { recursive: true });
        try {
          ours = await measure(env, { server: 'audient', shape: v.shape, events: v.events, dataDir, databaseUrl: join(dataDir, 'audient.db'), label: v.id });
        } finally {
          rmSync(dataDir, { recursive: true, force: true });
        }
      } else {
        const scratch = await createScratchSchema(benchPgUrl());
        try {
          ours = await measure(env, { server: 'audient', shape: v.shape, events: v.events, databaseUrl: scratch.url, label: v.id });
        } finally {
          await scratch.drop();
        }
      }
      out[v.id] = entry(v, ours, peers.get(v.shape)!, source);
    }
    return out;
  },
};
