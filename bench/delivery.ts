/**
 * Delivery benchmarks (activation): the real DeliveryRuntime draining 100,000 exports from a
 * SQLite outbox (delivery.batch.sqlite; from a PostgreSQL one in a scratch schema:
 * delivery.batch.postgres) to a partner-push receiver in micro-batches of 100, against bare
 * node:http (keep-alive agent) POSTs of the same messages to the same receiver; and per-profile delivery (http-api, OAuth2) of changes
 * arriving at 2,000/s through the whole pipeline, event-to-delivery latency against the same
 * receiver's latency for direct POSTs at the same rate. The receiver (bare node:http) and the
 * Audient process are separate processes (delivery/receiver-process.ts, delivery/audient-process.ts).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { beside, forkTs, serverNodeFlags } from './lib/child.js';
import { commandFor, type Family, type RunEnv } from './lib/family.js';
import { machineInfo } from './lib/machine.js';
import type { BenchEntry, Results } from './lib/results.js';
import type { BatchDone, PerProfileDone, RunDelivery } from './delivery/audient-process.js';
import type { ReceiverReady } from './delivery/receiver-process.js';
import { withBenchStore } from './lib/postgres.js';

const SEED = 7;
const ID = { batch: 'delivery.batch.sqlite', batchPg: 'delivery.batch.postgres', perProfile: 'delivery.per-profile.sqlite' } as const;
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;
/** The server's node flags (the delivery runs in Audient's server), and a CPU profile under BENCH_CPU_PROF. */
const prof = (env: RunEnv, name: string): string[] => [
  ...serverNodeFlags(),
  ...(env.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${env.cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []),
];
const base = (id: string): Pick<BenchEntry, 'command' | 'at' | 'machine'> => ({ command: commandFor(id), at: new Date().toISOString(), machine: machineInfo() });

/** Runs the Audient process against a fresh receiver process; returns its answer. */
async function withReceiver<T extends BatchDone | PerProfileDone>(env: RunEnv, run: Omit<RunDelivery, 'type' | 'receiverUrl'>, answer: T['type'], profName: string): Promise<T> {
  const receiver = forkTs<never, ReceiverReady>(beside(import.meta.url, './delivery/receiver-process.ts'));
  try {
    const { url } = await receiver.receive('ready', 60_000);
    const child = forkTs<RunDelivery, BatchDone | PerProfileDone>(beside(import.meta.url, './delivery/audient-process.ts'), { nodeArgs: prof(env, profName) });
    child.send({ type: 'run', receiverUrl: url, ...run });
    const done = (await child.receive(answer, 900_000)) as unknown as T;
    await child.exited(60_000);
    return done;
  } finally {
    process.kill(receiver.pid, 'SIGTERM');
    await receiver.exited(10_000);
  }
}

async function batch(env: RunEnv, store: 'sqlite' | 'postgres'): Promise<Results> {
  const id = store === 'sqlite' ? ID.batch : ID.batchPg;
  return (await withBenchStore(env, id, store, `delivery-batch-${store}`, async ({ dir, databaseUrl }) => {
    const exports = Math.round(100_000 * env.scale);
    const load = loadavg()[0]!;
    const d = await withReceiver<BatchDone>(
      env, { mode: 'batch', dir, exports, rate: 0, seconds: 0, seed: SEED, ...(databaseUrl ? { databaseUrl } : {}) }, 'batch-done', `delivery-batch-${store}`,
    );
    env.log(`${id}: ${JSON.stringify(d)}`);
    if (d.users !== d.exports) throw new Error(`the receiver counted ${d.users} users for ${d.exports} exports`);
    const rate = d.exports / (d.oursMs / 1000);
    const peers = d.peer.map((p) => ({ ...p, rate: p.users / (p.ms / 1000) }));
    const same = peers[0]!;
    return {
      [id]: {
        value: Math.round(rate), unit: 'profiles/s delivered in micro-batches of 100 (partner-push), first claim → outbox empty (higher is better)', goal: '>= 20000',
        peer: { name: `bare node:http (keep-alive agent, LIFO) POSTing the same ${d.requests} pre-built 100-user messages to the same receiver, ${same.concurrency} in flight (the runtime's concurrency setting), profiles/s`, value: Math.round(same.rate) },
        ratio: round(rate / same.rate),
        ...base(id), peakRssMB: d.peakRssMB,
        note: `${d.exports.toLocaleString('en-US')} ExportRecords (ECID + email identities, 4 mapped attributes, 2 audiences) enqueued straight into the outbox of ${store === 'sqlite' ? 'a SQLite WAL file' : 'PostgreSQL (a scratch schema, same machine)'} (untimed, ${round(d.enqueueMs / 1000, 2)} s), then DeliveryRuntime.poke()/idle() timed until the outbox was empty; every message answered by a bare node:http receiver in its own process with per-user results (the partner-push success shape). Runtime defaults: concurrency ${d.concurrency}, claimBatch ${d.claimBatch} (leases taken beside the requests while fewer than ${2 * d.concurrency} messages are ready; outcomes written together within a 20 ms window, at once past 1,000); background polling off so the window starts at the first claim. Peer run after ours in the same process; peak RSS is the Audient process before the peer ran. Load average (1 min) at start: ${round(load, 2)}.`,
        details: {
          'ours, s': round(d.oursMs / 1000, 3), 'users counted by the receiver': d.users, 'messages received': d.requests, 'ours, peak requests in flight (runtime)': d.runtime.peakInFlight, 'ours, peak open connections at the receiver': d.maxConnections,
          'ours, lease statements': d.runtime.claims, 'ours, outcome writes': d.runtime.settles,
          'outbox rows left': d.outboxLeft,
          ...Object.fromEntries(peers.map((p) => [`peer, ${p.concurrency} in flight, profiles/s`, Math.round(p.rate)])),
          ...Object.fromEntries(peers.map((p) => [`peer, ${p.concurrency} in flight, peak open connections at the receiver`, p.maxConnections])),
          [`ratio to peer at ${peers[1]?.concurrency ?? '?'} in flight`]: round(rate / (peers[1]?.rate ?? NaN)),
        },
      },
    };
  })) ?? {};
}

async function perProfile(env: RunEnv): Promise<Results> {
  const dir = join(env.tmp, 'delivery-per-profile');
  mkdirSync(dir, { recursive: true });
  try {
    const rate = 2000;
    const seconds = Math.max(2, Math.round(Number(process.env['BENCH_DELIVERY_SECONDS'] ?? 20) * env.scale));
    const load = loadavg()[0]!;
    const d = await withReceiver<PerProfileDone>(env, { mode: 'per-profile', dir, exports: 0, rate, seconds, seed: SEED }, 'per-profile-done', 'delivery-per-profile');
    env.log(`delivery.per-profile: ${JSON.stringify(d)}`);
    return {
      [ID.perProfile]: {
        value: round(d.ours.p99, 2), unit: 'ms p99 event-to-delivery, per-profile (http-api, OAuth2), at 2,000 changes/s (lower is better)', goal: '< 50',
        peer: { name: 'p99 of the same receiver for direct node:http (keep-alive agent) POSTs of http-api-shaped documents at the same rate, at most the runtime concurrency (32) in flight, clock from when each is due (transport floor), ms', value: round(d.peer.p99, 2) },
        ratio: round(d.ours.p99 / d.peer.p99, 1),
        ...base(ID.perProfile), peakRssMB: d.peakRssMB,
        note: `${d.handedOff.toLocaleString('en-US')} new CRM profiles (one email identity each) handed to IngestionService.ingest at ${rate}/s for ${seconds} s (achieved ${Math.round(d.achievedRate)}/s in ${d.ingestCalls} calls, records due since the previous call taken together), in-process, SQLite WAL file; change feed → streaming segmentation (2 audiences: 'homeAddress.city exists', 'loyalty.tier = "gold"') → activation (dataflow with 4 mapped attributes) → outbox → DeliveryRuntime → http-api with an OAuth2 token from the receiver's token endpoint. Latency per profile = start of the ingest call that carried it → the receiver's first arrival of a document with its email (clock: performance.timeOrigin + performance.now() in both processes on one machine). Receiver: bare node:http in its own process. Profiles never delivered within the bounded drain: ${d.missing}. Peer run after ours in the same process. Load average (1 min) at start: ${round(load, 2)}.`,
        details: {
          'p50, ms': round(d.ours.p50, 2), 'p90, ms': round(d.ours.p90, 2), 'p99, ms': round(d.ours.p99, 2), 'max, ms': round(d.ours.max, 2), 'mean, ms': round(d.ours.mean, 2),
          'profiles delivered': d.ours.count, 'documents received (a profile may be sent for its change and its membership)': d.profileRequests, 'tokens fetched': d.tokens,
          'drain after the last hand-off, ms': round(d.drainMs),
          ...Object.fromEntries(Object.entries(d.stages).flatMap(([k, l]) => [[`stage ${k}: p50, ms`, round(l.p50, 1)], [`stage ${k}: p99, ms`, round(l.p99, 1)], [`stage ${k}: profiles`, l.count]])),
          'runtime peak requests in flight': d.runtime.peakInFlight, 'runtime lease statements': d.runtime.claims, 'runtime outcome writes': d.runtime.settles,
          'peer p50, ms': round(d.peer.p50, 2), 'peer p99, ms': round(d.peer.p99, 2), 'peer max, ms': round(d.peer.max, 2), 'peer requests': d.peer.count, 'peer failed requests': d.peer.errors, 'peer achieved rate/s': Math.round(d.peer.achievedRate),
        },
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The delivery family. */
export const delivery: Family = {
  name: 'delivery',
  ids: [ID.batch, ID.batchPg, ID.perProfile],
  async run(selected, env) {
    const out: Results = {};
    if (selected.has(ID.batch)) Object.assign(out, await batch(env, 'sqlite'));
    if (selected.has(ID.batchPg)) Object.assign(out, await batch(env, 'postgres'));
    if (selected.has(ID.perProfile)) Object.assign(out, await perProfile(env));
    return out;
  },
};
