/**
 * The edge: Experience Edge `interact` requests (one page view of a known visitor, by ECID) to
 * Audient over a SQLite store of 1,000,000 profiles with 150 edge audiences mapped to the
 * datastream's profile-lookup connections, against a bare `node:http` server answering a fixed
 * body of the same size, both measured in the same run by the same load generator.
 * - `edge.interact.p99.sqlite`: p99 latency at a fixed offered rate of 5,000 requests/s
 *   (open loop: latency from when each request was due).
 * - `edge.interact.max.sqlite`: maximum throughput (closed loop), ours / the bare server's.
 * - `edge.interact.max.postgres`: the same over a PostgreSQL store of the same rows (skipped with
 *   the reason when PostgreSQL is unreachable).
 * Each store's figure also carries new visitors' figures in its details (no identity: the edge
 * mints an ECID and the event creates the profile): capacity beside the peer's, and latency at
 * half of that capacity.
 * Processes: edge/server.ts (ours), edge/bare.ts (peer), edge/load.ts (load generator).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { BareCpu, BareOut, BareReady, SizeBare, StartBare } from './edge/bare.js';
import type { EdgeLoadDone, EdgeLoadOut, LoadPrepared, PrepareLoad, RunEdgeLoad } from './edge/load.js';
import type { EdgeServerOut, EdgeSettled, StartEdge } from './edge/server.js';
import { beside, forkTs, serverNodeFlags, type ChildHandle, type Message } from './lib/child.js';
import { commandFor, type Family } from './lib/family.js';
import { machineInfo } from './lib/machine.js';
import { benchPgUrl, createScratchSchema, postgresUnavailable, type ScratchSchema } from './lib/postgres.js';
import { fmt, type BenchEntry, type Results } from './lib/results.js';
import { sourceRevision } from './lib/revision.js';

const PROFILES = 1_000_000;
/** Page events of the last hour seeded on random profiles. */
const EVENTS = 200_000;
/** Edge audiences (the per-sandbox limit), all mapped to the datastream's two lookup connections. */
const AUDIENCES = 150;
const RATE = 5_000;
/** Distinct request bodies (random known profiles), cycled. */
const BODIES = 20_000;
const OPEN_WARMUP_MS = 3_000;
const OPEN_MS = 15_000;
const CLOSED_WARMUP_MS = 2_000;
const CLOSED_MS = 10_000;
/**
 * Closed-loop phases per server, alternating with the peer's (peer, ours, ours, peer, peer, ours):
 * this VM's speed drifts by up to a third between runs a minute apart, so one phase each let the
 * drift decide the ratio; each ours phase is compared with the peer phase beside it instead.
 */
const CLOSED_ROUNDS = 3;
/** Requests in flight in the closed loop; sockets the open loop may use. */
const CONCURRENCY = 32;
const MAX_SOCKETS = 256;
const SEED = 1_000_003;

const P99_ID = 'edge.interact.p99.sqlite';
const MAX_ID = 'edge.interact.max.sqlite';
const MAX_PG_ID = 'edge.interact.max.postgres';
/** The closed-loop figure of each store. */
const MAX_IDS = { sqlite: MAX_ID, postgres: MAX_PG_ID } as const;
type StoreKind = keyof typeof MAX_IDS;
const round = (n: number, d = 3): number => Math.round(n * 10 ** d) / 10 ** d;

/** p50 / p90 / p99 / max of a phase, ms. */
const ms4 = (d: EdgeLoadDone): string => [d.p50Ms, d.p90Ms, d.p99Ms, d.maxMs].map((x) => round(x, 2)).join(' / ');
type Visitors = NonNullable<RunEdgeLoad['visitors']>;

function describe(d: EdgeLoadDone): string {
  const statuses = Object.entries(d.statuses).map(([k, v]) => `${k}×${v}`).join(' ');
  return `${fmt(d.throughput)} answers/s, p50 ${round(d.p50Ms, 2)} ms, p99 ${round(d.p99Ms, 2)} ms, p99.9 ${round(d.p999Ms, 2)} ms, max ${round(d.maxMs, 1)} ms, ${d.meanAnswerBytes} B/answer [${statuses}]`;
}

/** The edge family. */
export const edge: Family = {
  name: 'edge',
  ids: [P99_ID, MAX_ID, MAX_PG_ID],
  async run(selected, env) {
    const source = sourceRevision();
    const dir = join(env.tmp, 'edge');
    const profiles = Math.round(PROFILES * env.scale);
    const events = Math.round(EVENTS * env.scale);
    const ms = (x: number): number => (process.env['BENCH_FULL_TIME'] ? x : Math.max(1_000, Math.round(x * env.scale)));
    /** Under BENCH_CPU_PROF, each store's server writes edge-server.cpuprofile (SQLite) or edge-server-postgres.cpuprofile. */
    const nodeArgs = (store: StoreKind): string[] => [
      ...serverNodeFlags(),
      ...(env.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${env.cpuProfDir}`, `--cpu-prof-name=edge-server${store === 'sqlite' ? '' : `-${store}`}.cpuprofile`] : []),
    ];
    const bare = forkTs<StartBare | SizeBare | Message, BareOut>(beside(import.meta.url, './edge/bare.ts'));
    const load = forkTs<PrepareLoad | RunEdgeLoad | Message, EdgeLoadOut>(beside(import.meta.url, './edge/load.ts'));
    const out: Results = {};
    const bodies = Math.min(BODIES, profiles);
    load.send({ type: 'prepare', bodies, profiles, seed: SEED });
    let peer: { ready: BareReady; prepared: LoadPrepared; answerBytes: number } | undefined;
    const stores = (Object.keys(MAX_IDS) as StoreKind[]).filter((k) => selected.has(MAX_IDS[k]) || (k === 'sqlite' && selected.has(P99_ID)));
    try {
      for (const store of stores) {
        let scratch: ScratchSchema | undefined;
        if (store === 'postgres') {
          const why = await postgresUnavailable(benchPgUrl());
          if (why) {
            env.log(`  PostgreSQL at ${benchPgUrl()} is unavailable (${why}); ${MAX_PG_ID} is skipped`);
            continue;
          }
          scratch = await createScratchSchema(benchPgUrl());
        }
        // One store at a time: a second server seeding would share the cores with the phases.
        const ours = forkTs<StartEdge | Message, EdgeServerOut>(beside(import.meta.url, './edge/server.ts'), { nodeArgs: nodeArgs(store) });
        try {
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir, { recursive: true });
          Object.assign(out, await measure(store, ours, scratch?.url));
        } finally {
          await ours.exited(60_000);
          await scratch?.drop();
        }
      }
      // The load client listens for `exit` once prepared; a peer never started (every store
      // skipped) is not listening at all and is just ended.
      if (!peer) await load.receive('prepared', 120_000);
      bare.send({ type: 'stop' });
      load.send({ type: 'exit' });
    } finally {
      await Promise.all([bare.exited(peer ? 30_000 : 1_000), load.exited(30_000)]);
      rmSync(dir, { recursive: true, force: true });
    }
    return out;

    /** Builds ours on `store`, runs the phases of its selected figures (the peer's beside them) and stops it. */
    async function measure(store: StoreKind, ours: ChildHandle<StartEdge | Message, EdgeServerOut>, databaseUrl: string | undefined): Promise<Results> {
      const figures: Results = {};
      env.log(`  ${store}: building ${profiles.toLocaleString('en-US')} profiles, ${events.toLocaleString('en-US')} events, ${AUDIENCES} edge audiences…`);
      ours.send({ type: 'start', dir, profiles, events, audiences: AUDIENCES, seed: SEED, bodies, store, ...(databaseUrl ? { databaseUrl } : {}) });
      const ready = await ours.receive('ready', 1_800_000);
      env.log(
        `  ours (${store}) ready: ${ready.audiences} edge audiences (${ready.mappedAudiences} mapped), seeded in ${Math.round(ready.seedMs / 1000)} s, ${ready.dbMB} MB database, ` +
          `RSS ${ready.rssMB} MB; probe answers ${ready.answerBytes} B with ${ready.probeSegments} segments, new visitors' ${ready.newAnswerBytes} B (means); ` +
          `first visits of the ${bodies.toLocaleString('en-US')} visitors took ${Math.round(ready.primeMs / 1000)} s`,
      );
      if (env.cpuProfDir) env.log(`  the first visits (${store}) ran in the CPU-profile window --window=${ready.primeWindow}`);
      if (!peer) {
        // The peer answers bodies of the size of the first store's answers (the stores answer alike).
        bare.send({ type: 'start', answerBytes: ready.answerBytes });
        peer = { ready: await bare.receive('ready', 60_000), prepared: await load.receive('prepared', 120_000), answerBytes: ready.answerBytes };
      }
      const sizePeer = async (answerBytes: number): Promise<void> => {
        bare.send({ type: 'size', answerBytes });
        await bare.receive('sized', 30_000);
      };
      const bareReady = peer.ready;
      const prepared = peer.prepared;
      const settle = async (): Promise<EdgeSettled> => {
        ours.send({ type: 'settle' });
        return ours.receive('settled', 300_000);
      };
      const runLoad = async (url: string, path: string, mode: 'open' | 'closed', rate = RATE, visitors: Visitors = 'returning'): Promise<EdgeLoadDone> => {
        const r: RunEdgeLoad =
          mode === 'open'
            ? { type: 'run', url, path, mode, rate, visitors, concurrency: CONCURRENCY, maxSockets: MAX_SOCKETS, warmupMs: ms(OPEN_WARMUP_MS), durationMs: ms(OPEN_MS) }
            : { type: 'run', url, path, mode, rate: RATE, visitors, concurrency: CONCURRENCY, maxSockets: MAX_SOCKETS, warmupMs: ms(CLOSED_WARMUP_MS), durationMs: ms(CLOSED_MS) };
        load.send(r);
        return load.receive('done', 600_000);
      };
      const ourPhase = async (
        label: string,
        mode: 'open' | 'closed',
        rate?: number,
        visitors?: Visitors,
      ): Promise<{ done: EdgeLoadDone; loadavg: number; drainMs: number; cpuMsPerAnswer: number; held: string }> => {
        const before = await settle();
        const la = loadavg()[0]!;
        const done = await runLoad(ready.url, ready.path, mode, rate, visitors);
        const after = await settle();
        // The server's CPU (every thread: answers, change feed, streaming evaluation, checkpoints)
        // per request it handled in the phase, warm-up included: steadier than throughput on a VM
        // whose speed varies from run to run.
        const cpuMsPerAnswer = (after.cpuUs - before.cpuUs) / 1000 / Math.max(1, after.accepted - before.accepted);
        // Past the views' bound (AUDIENT_VIEW_MB) visitors' events are read from the store.
        const fromViews = after.eventReads.view - before.eventReads.view;
        const fromStore = after.eventReads.store - before.eventReads.store;
        const viewShare = `${Math.round((100 * fromViews) / Math.max(1, fromViews + fromStore))} % of evaluated profiles' events from their views`;
        // Since the settle before the phase: the phase, its warm-up and its catching up.
        const held = `event loop held up to ${Math.round(after.loopMaxMs)} ms, ${after.fullGcs} full GC${after.fullGcs === 1 ? '' : 's'} (final pauses ${Math.round(after.fullGcPauseMs)} ms in all${after.heapAfterFullGcMB === undefined ? '' : `; heap after the last ${Math.round(after.heapAfterFullGcMB)} MB`})`;
        env.log(`  ${label} ours (${store}): ${describe(done)}; ${round(cpuMsPerAnswer, 3)} server CPU-ms per answer; ${viewShare}; ${held}; change feed caught up ${Math.round(after.drainMs)} ms after (load avg ${round(la, 2)})`);
        if (env.cpuProfDir) env.log(`  ${label} ours (${store}) ran in the CPU-profile window --window=${before.clockUs},${after.clockUs}`);
        return { done, loadavg: la, drainMs: after.drainMs, cpuMsPerAnswer, held };
      };
      const bareCpu = async (): Promise<BareCpu> => {
        bare.send({ type: 'cpu' });
        return bare.receive('cpu', 30_000);
      };
      const barePhase = async (label: string, mode: 'open' | 'closed', rate?: number, visitors?: Visitors): Promise<EdgeLoadDone & { cpuMsPerAnswer: number }> => {
        const before = await bareCpu();
        const done = await runLoad(bareReady.url, ready.path, mode, rate, visitors);
        const after = await bareCpu();
        const cpuMsPerAnswer = (after.cpuUs - before.cpuUs) / 1000 / Math.max(1, after.answered - before.answered);
        env.log(`  ${label} bare node:http: ${describe(done)}; ${round(cpuMsPerAnswer, 3)} server CPU-ms per answer`);
        return { ...done, cpuMsPerAnswer };
      };
      const common = (
        phase: Awaited<ReturnType<typeof ourPhase>>,
        p: EdgeLoadDone & { cpuMsPerAnswer: number },
      ): Partial<BenchEntry> & { details: Record<string, number | string> } => {
        const { done: o, loadavg: la, drainMs, cpuMsPerAnswer, held } = phase;
        return {
          details: {
            profiles,
            'page events seeded (last hour)': events,
            'edge audiences (all mapped to the datastream)': ready.audiences,
            'request body, mean bytes': prepared.meanBodyBytes,
            'distinct request bodies (random known profiles)': prepared.bodies,
            'first visit of each visitor before the phases (untimed), s': Math.round(ready.primeMs / 1000),
            'answer, mean bytes (ours)': o.meanAnswerBytes,
            'answer, bytes (peer)': p.meanAnswerBytes,
            'segments per probe answer (mean of 20)': ready.probeSegments,
            'ours statuses': JSON.stringify(o.statuses),
            'peer statuses': JSON.stringify(p.statuses),
            'ours answers/s': round(o.throughput, 0),
            'peer answers/s': round(p.throughput, 0),
            'ours p50 / p90 / p99 / p99.9 / max, ms': [o.p50Ms, o.p90Ms, o.p99Ms, o.p999Ms, o.maxMs].map((x) => round(x, 2)).join(' / '),
            'peer p50 / p90 / p99 / p99.9 / max, ms': [p.p50Ms, p.p90Ms, p.p99Ms, p.p999Ms, p.maxMs].map((x) => round(x, 2)).join(' / '),
            'change feed / streaming evaluation caught up after the phase, ms': Math.round(drainMs),
            'ours in the phase (warm-up and catching up included)': held,
            'server CPU-ms per answer (all threads, warm-up included)': round(cpuMsPerAnswer, 3),
            'peer server CPU-ms per answer': round(p.cpuMsPerAnswer, 3),
            // The machine's speed varies from run to run; this ratio of costs moves much less.
            'server CPU per answer, ours / peer': round(cpuMsPerAnswer / p.cpuMsPerAnswer, 1),
            'load average (1 min) when ours started': round(la, 2),
          },
        };
      };

      // Ours catches up (settle) before and after each of its phases: whatever it leaves running
      // (an overload's backlog, the change feed) never slows the peer's phase down.
      const bareOpen = store === 'sqlite' && selected.has(P99_ID) ? await barePhase(`open loop ${RATE}/s`, 'open') : undefined;
      if (bareOpen) {
        const p = bareOpen;
        const o = await ourPhase(`open loop ${RATE}/s`, 'open');
        const failed = o.done.firstFailure !== undefined;
        const c = common(o, p);
        figures[P99_ID] = {
          value: round(o.done.p99Ms, 2),
          unit: `ms, p99 of interact at ${RATE.toLocaleString('en-US')} requests/s offered (open loop, from when each request was due; lower is better)`,
          goal: `< 5 ms at ${RATE.toLocaleString('en-US')} requests/s`,
          peer: { name: `bare node:http server answering a fixed body of the same size, same offered rate and client (p99)`, value: round(p.p99Ms, 3) },
          ratio: round(o.done.p99Ms / p.p99Ms, 1),
          command: commandFor(P99_ID),
          at: new Date().toISOString(),
          note:
            `Open loop: ${RATE}/s for ${ms(OPEN_MS) / 1000} s after ${ms(OPEN_WARMUP_MS) / 1000} s of warm-up (not counted), node:http keep-alive client in its own process, up to ${MAX_SOCKETS} requests in flight (the rest wait in the client); ` +
            `latency from when each request was due, so queueing behind a slow answer counts. Each request is one page view of a returning visitor (ECID of a random profile of the store, which visited once before the phases, untimed, so its edge memberships exist): ` +
            `it is ingested through the normal pipeline (committed before the answer), the sandbox's edge audiences are evaluated on the profile with it, and the answer carries the two lookup connections' segments and a URL sync. ` +
            `The change feed and streaming evaluation run in the same process, as in production.` +
            (failed ? ` Failures: ${o.done.firstFailure}.` : '') +
            (o.done.maxSendLagMs > 50 ? ` Requests left the client up to ${Math.round(o.done.maxSendLagMs)} ms after they were due (all sockets busy, or the client itself behind; counted in the latencies).` : ''),
          details: { ...c.details, 'largest delay from due to sent, ms': round(o.done.maxSendLagMs, 1), 'unanswered (ours)': o.done.unanswered },
          machine: machineInfo(),
          source,
        };
      }
      type OurPhase = Awaited<ReturnType<typeof ourPhase>>;
      const closedRounds: Array<{ peer: EdgeLoadDone & { cpuMsPerAnswer: number }; ours: OurPhase }> = [];
      const maxId = MAX_IDS[store];
      for (let k = 0; selected.has(maxId) && k < CLOSED_ROUNDS; k++) {
        const label = `closed loop ×${CONCURRENCY}, round ${k + 1}/${CLOSED_ROUNDS}`;
        if (k % 2 === 0) {
          const peer = await barePhase(label, 'closed');
          closedRounds.push({ peer, ours: await ourPhase(label, 'closed') });
        } else {
          const ours = await ourPhase(label, 'closed');
          closedRounds.push({ ours, peer: await barePhase(label, 'closed') });
        }
      }
      if (closedRounds.length) {
        // Each round's ours phase over the peer phase beside it; the round with the median ratio
        // gives the figures (its throughputs, latencies and CPU), every round is in the details.
        const ratios = closedRounds.map((r) => r.ours.done.throughput / r.peer.throughput);
        const mid = closedRounds[ratios.indexOf([...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!)]!;
        const p = mid.peer;
        const o = mid.ours;
        const c = common(o, p);
        const failures = closedRounds.map((r) => r.ours.done.firstFailure).filter((f) => f !== undefined);
        figures[maxId] = {
          value: Math.round(o.done.throughput),
          unit: 'interact answers/s, closed loop (higher is better)',
          goal: 'ratio >= 0.5 (at least 50 % of the bare node:http server)',
          peer: { name: `bare node:http server answering a fixed body of the same size, same client and concurrency`, value: Math.round(p.throughput) },
          ratio: round(o.done.throughput / p.throughput),
          command: commandFor(maxId),
          at: new Date().toISOString(),
          note:
            `Closed loop: ${CONCURRENCY} requests in flight over keep-alive sockets, ${ms(CLOSED_MS) / 1000} s after ${ms(CLOSED_WARMUP_MS) / 1000} s of warm-up, same client process and bodies for both servers. ` +
            `${CLOSED_ROUNDS} rounds, each an ours phase beside a peer phase (order alternating); the figures are those of the round with the median ratio. ` +
            `On this 2-core machine the load generator, the server and its change feed share the cores, so both figures include the client's cost.` +
            (store === 'postgres' ? ` The store is PostgreSQL on loopback (a scratch schema, seeded with the same rows): its server shares the cores too, and its CPU is not in the server CPU figures.` : '') +
            (failures.length ? ` Failures: ${failures.join('; ')}.` : ''),
          details: {
            ...c.details,
            'rounds, ours / peer answers/s (ratio)': closedRounds
              .map((r, k) => `${Math.round(r.ours.done.throughput)} / ${Math.round(r.peer.throughput)} (${round(ratios[k]!)})`)
              .join(', '),
          },
          machine: machineInfo(),
          source,
        };
      }
      // What a visitor waits below saturation: the p99 figure's rate is past ours' capacity (its
      // latency is then a backlog), so both servers also take an open loop at half the capacity
      // ours just showed; reported beside that figure.
      const p99 = figures[P99_ID];
      const capacity = figures[maxId]?.value;
      if (p99 && typeof capacity === 'number' && capacity > 0) {
        const rate = Math.max(100, Math.round(capacity / 2 / 100) * 100);
        const label = `open loop ${rate}/s (half of ours' capacity)`;
        const peerHalf = await barePhase(label, 'open', rate);
        const oursHalf = await ourPhase(label, 'open', rate);
        p99.details = {
          ...p99.details,
          'half of ours\' closed-loop capacity, requests/s offered': rate,
          'ours at that rate, p50 / p90 / p99 / max, ms': ms4(oursHalf.done),
          'ours at that rate, in the phase': oursHalf.held,
          'peer at that rate, p50 / p90 / p99 / max, ms': ms4(peerHalf),
          ...(oursHalf.done.firstFailure ? { 'ours at that rate, failures': oursHalf.done.firstFailure } : {}),
        };
      }
      // New visitors (no identity: the edge mints an ECID, the event creates the profile, and
      // every audience is evaluated for the first time, entries written): a closed loop for
      // ours' capacity for them, then an open loop at half of it for the latency they see. In
      // the details of the store's figure; the figures themselves are returning visitors'.
      const target = figures[P99_ID] ?? figures[maxId];
      if (target) {
        const closed = `new visitors, closed loop ×${CONCURRENCY}`;
        // The peer answers the size of a new visitor's answer (fewer segments) for these phases.
        await sizePeer(ready.newAnswerBytes);
        const peerClosed = await barePhase(closed, 'closed', undefined, 'new');
        const oursClosed = await ourPhase(closed, 'closed', undefined, 'new');
        const rate = Math.max(100, Math.round(oursClosed.done.throughput / 2 / 100) * 100);
        const open = `new visitors, open loop ${rate}/s (half of ours' capacity for them)`;
        const peerOpen = await barePhase(open, 'open', rate, 'new');
        const oursOpen = await ourPhase(open, 'open', rate, 'new');
        await sizePeer(peer.answerBytes);
        target.details = {
          ...target.details,
          'new visitors (no identity), closed loop: ours / peer answers/s': `${Math.round(oursClosed.done.throughput)} / ${Math.round(peerClosed.throughput)}`,
          'new visitors, server CPU-ms per answer: ours / peer': `${round(oursClosed.cpuMsPerAnswer, 3)} / ${round(peerClosed.cpuMsPerAnswer, 3)}`,
          'new visitors, open loop at half of ours\' capacity for them, requests/s offered': rate,
          'new visitors at that rate, ours p50 / p90 / p99 / max, ms': ms4(oursOpen.done),
          'new visitors at that rate, ours in the phase': oursOpen.held,
          'new visitors at that rate, peer p50 / p90 / p99 / max, ms': ms4(peerOpen),
          ...(oursClosed.done.firstFailure ?? oursOpen.done.firstFailure ? { 'new visitors, ours failures': String(oursClosed.done.firstFailure ?? oursOpen.done.firstFailure) } : {}),
        };
      }
      ours.send({ type: 'stop' });
      const stopped = await ours.receive('stopped', 300_000);
      env.log(`  ours (${store}) ingested ${stopped.accepted} events (${stopped.rejected} rejected), published ${stopped.changesPublished} changes, peak RSS ${stopped.sampledPeakRssMB} MB (sampled)`);
      for (const id of Object.keys(figures)) {
        figures[id]!.peakRssMB = stopped.sampledPeakRssMB;
        figures[id]!.details = { ...figures[id]!.details, 'events ingested by ours in the run': stopped.accepted, 'rejected by ours': stopped.rejected };
      }
      return figures;
    }
  },
};
