/**
 * The Audient process of the delivery benchmarks (the process under test; the receiver runs in
 * another process). Two runs:
 *
 * - `batch`: a SQLite WAL file store, a partner-push connection (micro-batches of 100 users) to
 *   the receiver, N realistic ExportRecords enqueued straight into the outbox (untimed), then the
 *   real DeliveryRuntime is timed from `poke()` (its first claim) until it is idle with the outbox
 *   empty and the receiver has counted N users. Then the peer: bare node:http POSTs (keep-alive
 *   agent) of the same number of pre-built 100-user messages to the same receiver, with the
 *   runtime's concurrency.
 * - `per-profile`: the full pipeline (IngestionService → change feed → segmentation → activation
 *   → outbox → delivery) to an http-api connection (OAuth2 token from the receiver), new CRM
 *   profiles handed to ingestion at a fixed rate; latency per profile = hand-off (start of its
 *   ingest call) → the receiver's first arrival of a document with that profile's email. Then the
 *   peer: bare node:http POSTs (keep-alive agent) of http-api-shaped documents at the same rate
 *   to the same receiver.
 *
 * Both processes read `performance.timeOrigin + performance.now()` (same machine, same clock).
 */
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import type { ExportRecord } from '@audient/core';
import { createContext, loadConfig, type AudientContext } from '@audient/server';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { peakRssMB } from '../lib/rss.js';
import { makeProfile, PROFILE_SCHEMA } from '../segmentation/data.js';
import type { ReceiverStats } from './receiver-process.js';

export const SANDBOX = 'bench';

/** Parent → process. */
export interface RunDelivery extends Message {
  type: 'run';
  mode: 'batch' | 'per-profile';
  dir: string;
  receiverUrl: string;
  /** batch: exports to deliver. */
  exports: number;
  /** per-profile: changes per second and seconds of arrivals. */
  rate: number;
  seconds: number;
  seed: number;
  /** The store (a PostgreSQL URL); a SQLite WAL file in `dir` when absent. */
  databaseUrl?: string;
}

/** Process → parent (batch). */
export interface BatchDone extends Message {
  type: 'batch-done';
  exports: number;
  oursMs: number;
  enqueueMs: number;
  users: number;
  requests: number;
  /** Peak open connections at the receiver during our run. */
  maxConnections: number;
  /** The runtime's own peak of requests in flight, claims (lease statements) and outcome writes. */
  runtime: { peakInFlight: number; claims: number; settles: number };
  peakRssMB: number;
  concurrency: number;
  claimBatch: number;
  outboxLeft: number;
  activated: number;
  peer: Array<{ concurrency: number; ms: number; users: number; requests: number; maxConnections: number }>;
}

/** Latency summary, ms. */
export interface Latency {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Process → parent (per-profile). */
export interface PerProfileDone extends Message {
  type: 'per-profile-done';
  handedOff: number;
  achievedRate: number;
  ingestCalls: number;
  ours: Latency;
  missing: number;
  profileRequests: number;
  tokens: number;
  drainMs: number;
  peakRssMB: number;
  /** Where each profile waited, per stage (first time a profile passes each point). */
  stages: Record<string, Latency>;
  /** Runtime counters: peak requests in flight, lease statements, outcome writes. */
  runtime: { peakInFlight: number; claims: number; settles: number };
  peer: Latency & { sent: number; achievedRate: number; errors: number };
}

const clock = (): number => performance.timeOrigin + performance.now();

/**
 * The peers' transport: a bare node:http POST over a keep-alive agent (at most `maxSockets`
 * connections, LIFO), the same kind of client the runtime's transport is, so the peer is a
 * transport floor rather than a measure of fetch's (undici's) per-request overhead. Resolves with
 * the status and body once the whole answer is read; rejects after `timeoutMs`.
 */
function post(agent: Agent, url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { hostname: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

const peerAgent = (maxSockets: number): Agent => new Agent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function summarise(lat: number[]): Latency {
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil(p * lat.length) - 1))] ?? NaN;
  return { count: lat.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1), mean: lat.reduce((s, x) => s + x, 0) / Math.max(1, lat.length) };
}

async function stats(url: string, reset: boolean): Promise<ReceiverStats> {
  const res = await fetch(`${url}/__stats${reset ? '?reset=1' : ''}`);
  return (await res.json()) as ReceiverStats;
}

async function openContext(run: RunDelivery, name: string, pollMs?: number): Promise<AudientContext> {
  const config = loadConfig({ dataDir: run.dir, databaseUrl: run.databaseUrl ?? join(run.dir, `${name}.db`), logLevel: 'warn', segmentation: { tickMs: 0 } }, {});
  const ctx = await createContext(config, pollMs !== undefined ? { delivery: { pollMs } } : {});
  await ctx.tenancy.createSandbox({ id: SANDBOX, instanceAdmin: true });
  await ctx.catalog.createSchema(SANDBOX, PROFILE_SCHEMA);
  await ctx.catalog.createDataset(SANDBOX, { id: 'crm', name: 'CRM', schemaId: PROFILE_SCHEMA.id, profileEnabled: true });
  await ctx.audiences.create(SANDBOX, { id: 'has-city', name: 'Has a city', query: 'homeAddress.city exists' });
  await ctx.audiences.create(SANDBOX, { id: 'gold', name: 'Gold members', query: 'loyalty.tier = "gold"' });
  return ctx;
}

/** A realistic export of profile `i`: ECID + email identities, 4 mapped attributes, 2 audiences. */
function exportRecord(i: number, seed: number, flowId: string, at: string): ExportRecord {
  const p = makeProfile(i, seed);
  const email = `member${i}@example.net`;
  const ecid = String(10n ** 37n + BigInt(i) * 7919n);
  const gold = p.loyalty.tier === 'gold';
  return {
    profileId: `prof-${seed}-${i}`,
    attributes: {
      person: { name: { firstName: p.person.name.firstName, lastName: p.person.name.lastName } },
      homeAddress: { city: p.homeAddress.city },
      loyalty: { tier: p.loyalty.tier ?? 'none' },
    },
    identities: { partner_uid: [email] },
    identityMap: { ecid: [{ id: ecid }], email: [{ id: email, primary: true }] },
    segmentMembership: {
      ups: {
        'has-city': { status: 'realized', lastQualificationTime: at },
        gold: { status: gold ? 'realized' : 'exited', lastQualificationTime: at },
      },
    },
    audiences: [
      { id: 'has-city', name: 'Has a city', status: 'realized' },
      { id: 'gold', name: 'Gold members', status: gold ? 'realized' : 'exited' },
    ],
    reasons: ['membership'],
    idempotencyKey: `${flowId}:prof-${seed}-${i}:m${i}`,
  };
}

async function batch(run: RunDelivery): Promise<void> {
  // No background poll: the timed window starts at our poke (the first claim), not at a poll tick
  // during the untimed enqueue. A pass loops while claims come back full, so polling plays no part.
  const ctx = await openContext(run, 'batch', 3_600_000);
  const conn = await ctx.connections.create(SANDBOX, {
    name: 'Partner', destinationId: 'partner-push', settings: { endpoint: `${run.receiverUrl}/partner`, dataSourceId: 'audient-bench' },
  });
  const flow = await ctx.dataflows.create(SANDBOX, {
    name: 'To partner', connectionId: conn.id, audienceIds: ['has-city', 'gold'],
    mapping: [], // partner_uid comes from the ID-sync table; the records below are built with it
  });
  await ctx.jobs.idle();
  await stats(run.receiverUrl, true);
  const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const te = performance.now();
  for (let from = 0; from < run.exports; from += 5000) {
    const rows = [];
    for (let i = from; i < Math.min(run.exports, from + 5000); i++) {
      const payload = exportRecord(i, run.seed, flow.id, at);
      rows.push({ sandboxId: SANDBOX, dataflowId: flow.id, profileId: payload.profileId, idempotencyKey: payload.idempotencyKey, payload, createdAt: Date.now() });
    }
    await ctx.store.enqueueExports(rows);
  }
  const enqueueMs = performance.now() - te;

  const t0 = performance.now();
  for (let round = 0; round < 5; round++) {
    ctx.delivery.poke();
    await ctx.delivery.idle();
    const c = await ctx.store.outboxCounts(SANDBOX, flow.id);
    if (c.pending + c.inflight === 0) break;
  }
  const oursMs = performance.now() - t0;
  const peak = peakRssMB();
  const counts = await ctx.store.outboxCounts(SANDBOX, flow.id);
  const got = await stats(run.receiverUrl, true);
  const cfg = (ctx.delivery as unknown as { deps: { config: { concurrency: number; claimBatch: number } } }).deps.config;
  const { peakInFlight, claims, settles } = ctx.delivery.stats;
  const runtime = { peakInFlight, claims, settles };
  await ctx.close();

  // Peer: the same users as pre-built 100-user messages, bare node:http, `concurrency` in flight.
  const bodies: string[] = [];
  for (let from = 0; from < run.exports; from += 100) {
    const users = [];
    for (let i = from; i < Math.min(run.exports, from + 100); i++) {
      const r = exportRecord(i, run.seed, flow.id, at);
      const added = Object.entries(r.segmentMembership.ups).filter(([, m]) => m.status !== 'exited').map(([k]) => k).sort();
      const removed = Object.entries(r.segmentMembership.ups).filter(([, m]) => m.status === 'exited').map(([k]) => k).sort();
      users.push({ uid: r.identities['partner_uid']![0]!, added, removed, updatedAt: at, eventId: r.idempotencyKey });
    }
    bodies.push(JSON.stringify({ type: 'audience-membership', version: 1, dataSourceId: 'audient-bench', users }));
  }
  const peer: BatchDone['peer'] = [];
  for (const concurrency of [cfg.concurrency, Math.ceil(cfg.claimBatch / 100)]) {
    await stats(run.receiverUrl, true);
    let next = 0;
    const agent = peerAgent(concurrency);
    const target = new URL(`${run.receiverUrl}/partner`);
    const tp = performance.now();
    const worker = async (): Promise<void> => {
      while (next < bodies.length) {
        const k = next++;
        const res = await post(agent, target, { 'content-type': 'application/json', 'idempotency-key': `peer-${k}` }, bodies[k]!, 3000);
        if (res.status < 200 || res.status >= 300) throw new Error(`peer: HTTP ${res.status} ${res.text.slice(0, 200)}`);
        JSON.parse(res.text);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const ms = performance.now() - tp;
    agent.destroy();
    const s = await stats(run.receiverUrl, true);
    peer.push({ concurrency, ms, users: s.users, requests: s.requests, maxConnections: s.maxConnections });
  }
  toParent({
    type: 'batch-done', exports: run.exports, oursMs, enqueueMs, users: got.users, requests: got.requests, maxConnections: got.maxConnections, runtime, peakRssMB: peak,
    concurrency: cfg.concurrency, claimBatch: cfg.claimBatch, outboxLeft: counts.pending + counts.inflight + counts.dead, activated: got.users, peer,
  } satisfies BatchDone);
}

async function perProfile(run: RunDelivery): Promise<void> {
  const ctx = await openContext(run, 'per-profile');
  const conn = await ctx.connections.create(SANDBOX, {
    name: 'Collector', destinationId: 'http-api',
    settings: { httpEndpoint: `${run.receiverUrl}/profiles?source=audient`, authEndpoint: `${run.receiverUrl}/token`, clientId: 'audient', clientSecret: 'bench-secret' },
  });
  await ctx.dataflows.create(SANDBOX, {
    name: 'To collector', connectionId: conn.id, audienceIds: ['has-city', 'gold'],
    mapping: [
      { source: 'person.name.firstName', target: { kind: 'attribute', name: 'person.name.firstName' } },
      { source: 'person.name.lastName', target: { kind: 'attribute', name: 'person.name.lastName' } },
      { source: 'homeAddress.city', target: { kind: 'attribute', name: 'homeAddress.city' } },
      { source: 'loyalty.tier', target: { kind: 'attribute', name: 'loyalty.tier' } },
    ],
  });
  await ctx.jobs.idle();
  // Warm-up (untimed): a few profiles through the whole pipeline, so the token is cached and code is compiled.
  for (let i = 0; i < 200; i += 20) {
    const recs = [];
    for (let j = i; j < i + 20; j++) recs.push({ ...makeProfile(j, run.seed + 1), identityMap: { email: [{ id: `warm${j}@example.net`, primary: true }] } });
    await ctx.ingestion.ingest(SANDBOX, 'crm', recs);
    await sleep(10);
  }
  await sleep(1000);
  await stats(run.receiverUrl, true);

  // Stage clocks (measurement only): when a profile's change was published by the change feed,
  // its membership published by segmentation, its export written to the outbox; keyed by
  // profile id, joined to the email key through the outbox payload. First time only.
  const changeAt = new Map<string, number>();
  const membershipAt = new Map<string, number>();
  const outboxAt = new Map<string, number>();
  const emailOf = new Map<string, string>();
  const publish = ctx.bus.publish.bind(ctx.bus);
  ctx.bus.publish = async (subject: string, key: string, payload: unknown): Promise<void> => {
    const at = clock();
    const seen = subject.startsWith('changes.') ? changeAt : subject.startsWith('memberships.') ? membershipAt : undefined;
    if (seen && !seen.has(key)) seen.set(key, at);
    return publish(subject, key, payload);
  };
  const enqueue = ctx.store.enqueueExports.bind(ctx.store);
  ctx.store.enqueueExports = async (rows) => {
    await enqueue(rows);
    const at = clock();
    for (const r of rows) {
      if (!outboxAt.has(r.profileId)) outboxAt.set(r.profileId, at);
      const email = r.payload.identityMap['email']?.[0]?.id;
      if (email) emailOf.set(r.profileId, email);
    }
  };

  const total = Math.round(run.rate * run.seconds);
  const handedOff = new Map<string, number>();
  const committed = new Map<string, number>();
  const t0 = performance.now();
  let sent = 0;
  let calls = 0;
  while (sent < total && performance.now() - t0 < run.seconds * 1000 + 30_000) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * run.rate));
    const n = Math.min(due - sent, 200);
    if (n > 0) {
      const recs = [];
      const keys = [];
      for (let i = sent; i < sent + n; i++) {
        const email = `member${i}@example.net`;
        keys.push(email);
        recs.push({ ...makeProfile(i, run.seed), identityMap: { email: [{ id: email, primary: true }] } });
      }
      const at = clock();
      for (const k of keys) handedOff.set(k, at);
      const results = await ctx.ingestion.ingest(SANDBOX, 'crm', recs);
      const done = clock();
      for (const k of keys) committed.set(k, done);
      for (const r of results) if (r.status !== 'accepted') throw new Error(`ingestion refused a record: ${JSON.stringify(r).slice(0, 300)}`);
      sent += n;
      calls++;
    }
    await sleep(Math.max(0, ((sent + 1) / run.rate) * 1000 - (performance.now() - t0)));
  }
  const sendMs = performance.now() - t0;
  // Drain: every stage, then wait (bounded) for the receiver to have every profile.
  const td = performance.now();
  let got = await stats(run.receiverUrl, false);
  while (performance.now() - td < 30_000) {
    await ctx.feed.flush();
    await ctx.bus.drain();
    await ctx.activation.flush();
    await ctx.delivery.idle();
    got = await stats(run.receiverUrl, false);
    if ([...handedOff.keys()].every((k) => k in got.arrivals)) break;
    await sleep(200);
  }
  const drainMs = performance.now() - td;
  const peak = peakRssMB();
  const lat: number[] = [];
  let missing = 0;
  for (const [k, at] of handedOff) {
    const arrived = got.arrivals[k];
    if (arrived === undefined) missing++;
    else lat.push(arrived - at);
  }
  const ours = summarise(lat);
  // Per stage, for the profiles that passed both of its ends.
  const spans: Record<string, number[]> = {
    'ingest call (hand-off → committed)': [], 'change feed (ingest call returned → change published; negative when published first)': [], 'segmentation (change → membership published)': [],
    'activation (last of change/membership → outbox written)': [], 'delivery (outbox → receiver)': [],
  };
  const push = (k: string, a: number | undefined, b: number | undefined): void => {
    if (a !== undefined && b !== undefined) spans[k]!.push(b - a);
  };
  for (const [profileId, email] of emailOf) {
    if (!handedOff.has(email)) continue;
    const ch = changeAt.get(profileId);
    const mb = membershipAt.get(profileId);
    push('ingest call (hand-off → committed)', handedOff.get(email), committed.get(email));
    push('change feed (ingest call returned → change published; negative when published first)', committed.get(email), ch);
    push('segmentation (change → membership published)', ch, mb);
    push('activation (last of change/membership → outbox written)', mb !== undefined && ch !== undefined ? Math.max(ch, mb) : (ch ?? mb), outboxAt.get(profileId));
    push('delivery (outbox → receiver)', outboxAt.get(profileId), got.arrivals[email]);
  }
  const stages = Object.fromEntries(Object.entries(spans).map(([k, v]) => [k, summarise(v)]));
  const { peakInFlight, claims, settles } = ctx.delivery.stats;
  await stats(run.receiverUrl, true);
  const deliveryConfig = (ctx.delivery as unknown as { deps: { config: { concurrency: number } } }).deps.config;
  await ctx.close();

  // Peer: http-api-shaped documents POSTed straight to the receiver at the same rate, with bare
  // node:http over a keep-alive agent (the runtime's kind of transport) and at most the runtime's
  // concurrency in flight; a document's clock starts when it is due.
  const concurrency = deliveryConfig.concurrency;
  const agent = peerAgent(concurrency);
  const target = new URL(`${run.receiverUrl}/profiles?source=audient`);
  const peerLat: number[] = [];
  const tp = performance.now();
  let psent = 0;
  let peerErrors = 0;
  const queue: Array<{ email: string; body: string }> = [];
  const peerSentAt = new Map<string, number>();
  let producing = true;
  const wakeWorkers: Array<() => void> = [];
  const worker = async (): Promise<void> => {
    for (;;) {
      const item = queue.shift();
      if (!item) {
        if (!producing) return;
        await new Promise<void>((r) => wakeWorkers.push(r));
        continue;
      }
      try {
        await post(agent, target, { 'content-type': 'application/json', authorization: 'Bearer peer', 'idempotency-key': item.email }, item.body, 10_000);
      } catch (err) {
        peerErrors++;
        if (peerErrors <= 3) console.error(`peer request failed: ${String(err)}`);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  while (psent < total && performance.now() - tp < run.seconds * 1000 + 30_000) {
    const due = Math.min(total, Math.floor(((performance.now() - tp) / 1000) * run.rate));
    for (; psent < due; psent++) {
      const p = makeProfile(psent, run.seed);
      const email = `peer${psent}@example.net`;
      const body = JSON.stringify({
        person: { name: p.person.name }, homeAddress: { city: p.homeAddress.city }, loyalty: { tier: p.loyalty.tier ?? 'none' },
        segmentMembership: { ups: { 'has-city': { status: 'realized', lastQualificationTime: new Date().toISOString() } } },
        identityMap: { email: [{ id: email, primary: true }] },
      });
      peerSentAt.set(email, clock());
      queue.push({ email, body });
    }
    for (const w of wakeWorkers.splice(0)) w();
    await sleep(Math.max(0, ((psent + 1) / run.rate) * 1000 - (performance.now() - tp)));
  }
  const peerSendMs = performance.now() - tp;
  producing = false;
  for (const w of wakeWorkers.splice(0)) w();
  await Promise.all(workers);
  agent.destroy();
  const pgot = await stats(run.receiverUrl, true);
  for (const [k, at] of peerSentAt) {
    const arrived = pgot.arrivals[k];
    if (arrived !== undefined) peerLat.push(arrived - at);
  }
  toParent({
    type: 'per-profile-done', handedOff: handedOff.size, achievedRate: handedOff.size / (sendMs / 1000), ingestCalls: calls, ours, missing,
    profileRequests: got.profileRequests, tokens: got.tokens, drainMs, peakRssMB: peak, stages, runtime: { peakInFlight, claims, settles },
    peer: { ...summarise(peerLat), sent: psent, achievedRate: psent / (peerSendMs / 1000), errors: peerErrors },
  } satisfies PerProfileDone);
}

async function main(): Promise<void> {
  const run = await fromParent<RunDelivery>('run');
  if (run.mode === 'batch') await batch(run);
  else await perProfile(run);
  process.disconnect?.();
}

runChild(main);
