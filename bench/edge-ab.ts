/**
 * Interleaved A/B of the edge between two checkouts (or one checkout with two environments), for
 * changes too small to see through this VM's run-to-run speed drift (up to 2× between separate
 * runs): both servers are built from the same seed (20,000 profiles, 150 edge audiences), then
 * short closed-loop phases of the same load client alternate A, B, B, A, … so the drift hits both
 * alike. Prints, per pair, each server's CPU per answer (whole process) and throughput, and the
 * median of the paired ratios B/A. Writes nothing (not a benchmark: no peer, no record).
 *
 *   npm run build && BENCH_DIST=1 node --import tsx bench/edge-ab.ts <checkoutA> <checkoutB> [pairs=10] [phaseMs=3000]
 *   AB_ENV_B="NAME=value …"   extra environment for B's server (A: AB_ENV_A), e.g. a switch under test
 *   AB_VISITORS=new          new visitors (no identity: each request creates a profile) instead of returning ones
 *   AB_STORE=postgres        both servers on PostgreSQL (a scratch schema each, in the benchmarks' database) instead of SQLite
 *   AB_OPEN_RATE=1500        open-loop phases at this rate instead (requests due on schedule,
 *                            latency from when each was due): compares latency below saturation
 *                            (p50 / p99 per phase, median ratio of the p99s) as well as CPU per answer
 *
 * An A/A run (the same checkout twice) shows the noise: medians within ~4 % with 6 pairs here.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { EdgeLoadOut, PrepareLoad, RunEdgeLoad } from './edge/load.js';
import type { EdgeReady, EdgeServerOut, StartEdge } from './edge/server.js';
import { forkTs, serverNodeFlags, type Message } from './lib/child.js';
import { benchPgUrl, createScratchSchema, postgresUnavailable, type ScratchSchema } from './lib/postgres.js';

const PROFILES = 20_000;
const EVENTS = 4_000;
const AUDIENCES = 150;
const SEED = 1_000_003;

/** `NAME=value NAME2=value2` → an environment. */
function envOf(spec: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (spec ?? '').split(' ').filter(Boolean)) {
    const i = kv.indexOf('=');
    out[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : kv.slice(i + 1);
  }
  return out;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const [a, b, pairsArg, phaseArg] = process.argv.slice(2);
  if (!a || !b) throw new Error('usage: edge-ab.ts <checkoutA> <checkoutB> [pairs] [phaseMs]');
  const pairs = Number(pairsArg ?? 10);
  const phaseMs = Number(phaseArg ?? 3_000);
  const openRate = Number(process.env['AB_OPEN_RATE'] ?? 0);
  if (!Number.isFinite(openRate) || openRate < 0) throw new Error(`AB_OPEN_RATE must be a rate per second, got ${process.env['AB_OPEN_RATE']}`);
  const visitors = process.env['AB_VISITORS'] ?? 'returning';
  if (visitors !== 'returning' && visitors !== 'new') throw new Error(`AB_VISITORS must be returning or new, got ${visitors}`);
  const store = process.env['AB_STORE'] ?? 'sqlite';
  if (store !== 'sqlite' && store !== 'postgres') throw new Error(`AB_STORE must be sqlite or postgres, got ${store}`);
  if (store === 'postgres') {
    const why = await postgresUnavailable(benchPgUrl());
    if (why) throw new Error(`AB_STORE=postgres: PostgreSQL at ${benchPgUrl()} is unavailable (${why})`);
  }
  const scratch: ScratchSchema[] = [];
  const servers = [a, b].map((checkout, i) => {
    const dir = join(tmpdir(), `audient-edge-ab-${process.pid}-${i}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const child = forkTs<StartEdge | Message, EdgeServerOut>(join(resolve(checkout), 'bench/edge/server.ts'), {
      env: envOf(process.env[i === 0 ? 'AB_ENV_A' : 'AB_ENV_B']),
      nodeArgs: serverNodeFlags(resolve(checkout)),
    });
    return { child, dir, ready: undefined as EdgeReady | undefined };
  });
  const load = forkTs<PrepareLoad | RunEdgeLoad | Message, EdgeLoadOut>(join(resolve(a), 'bench/edge/load.ts'));
  try {
    load.send({ type: 'prepare', bodies: PROFILES, profiles: PROFILES, seed: SEED });
    // One after the other: two seedings at once would share the cores.
    for (const s of servers) {
      const pg = store === 'postgres' ? await createScratchSchema(benchPgUrl()) : undefined;
      if (pg) scratch.push(pg);
      s.child.send({
        type: 'start', dir: s.dir, profiles: PROFILES, events: EVENTS, audiences: AUDIENCES, seed: SEED, bodies: PROFILES,
        ...(pg ? { store: 'postgres' as const, databaseUrl: pg.url } : {}),
      });
      s.ready = await s.child.receive('ready', 900_000);
    }
    await load.receive('prepared', 120_000);
    const phase = async (i: number): Promise<{ cpu: number; throughput: number; p50: number; p99: number }> => {
      const s = servers[i]!;
      s.child.send({ type: 'settle' });
      const before = await s.child.receive('settled', 300_000);
      load.send({ type: 'run', url: s.ready!.url, path: s.ready!.path, mode: openRate ? 'open' : 'closed', rate: openRate, visitors, concurrency: 32, maxSockets: 256, warmupMs: 500, durationMs: phaseMs });
      const done = await load.receive('done', 600_000);
      s.child.send({ type: 'settle' });
      const after = await s.child.receive('settled', 300_000);
      return { cpu: (after.cpuUs - before.cpuUs) / 1000 / Math.max(1, after.accepted - before.accepted), throughput: done.throughput, p50: done.p50Ms, p99: done.p99Ms };
    };
    await phase(0); // warm-up of both (JIT, caches), not counted
    await phase(1);
    const cpu: number[] = [];
    const throughput: number[] = [];
    const p99: number[] = [];
    for (let p = 0; p < pairs; p++) {
      const r: Array<{ cpu: number; throughput: number; p50: number; p99: number }> = [];
      for (const i of p % 2 === 0 ? [0, 1] : [1, 0]) r[i] = await phase(i);
      const [ra, rb] = [r[0]!, r[1]!];
      cpu.push(rb.cpu / ra.cpu);
      throughput.push(rb.throughput / ra.throughput);
      p99.push(rb.p99 / ra.p99);
      const side = (x: { cpu: number; throughput: number; p50: number; p99: number }): string =>
        `${x.cpu.toFixed(3)} CPU-ms/answer ${Math.round(x.throughput)}/s` + (openRate ? ` p50 ${x.p50.toFixed(2)} p99 ${x.p99.toFixed(2)} ms` : '');
      console.log(
        `pair ${p}: A ${side(ra)} | B ${side(rb)} | B/A CPU ${cpu.at(-1)!.toFixed(3)}, ` + (openRate ? `p99 ${p99.at(-1)!.toFixed(3)}` : `throughput ${throughput.at(-1)!.toFixed(3)}`),
      );
    }
    console.log(
      `median of ${pairs} pairs, B/A: CPU per answer ${median(cpu).toFixed(3)}, ` + (openRate ? `p99 ${median(p99).toFixed(3)} (open loop at ${openRate}/s)` : `throughput ${median(throughput).toFixed(3)}`),
    );
  } finally {
    for (const s of servers) s.child.send({ type: 'stop' });
    load.send({ type: 'exit' });
    await Promise.all([...servers.map((s) => s.child.exited(120_000)), load.exited(30_000)]);
    for (const s of servers) rmSync(s.dir, { recursive: true, force: true });
    for (const pg of scratch) await pg.drop();
  }
}

await main();
