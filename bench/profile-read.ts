/**
 * Profile reads by identity from a store of 1,000,000 profiles (SQLite file, WAL), in-process:
 * p50/p99 of `ctx.profiles.get` over random ECID and email lookups, against raw better-sqlite3
 * primary-key lookups of the same keys on the same file. And the bulk-load rate of
 * `IngestionService.ingest` (1,000 records per call) into that store, against raw inserts of the
 * same rows into the same store just before. See processes/profile-store.ts for how it is built.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { beside, forkTs } from './lib/child.js';
import { commandFor, type Family } from './lib/family.js';
import { machineInfo } from './lib/machine.js';
import { fmt, type Results } from './lib/results.js';
import { sourceRevision } from './lib/revision.js';
import type { ProfileStoreOut, RunProfileStore } from './processes/profile-store.js';

const PROFILES = 1_000_000;
/** Profiles per timed load slice: raw peer first, then ours, into a store already that large. */
const SLICE = 100_000;
/** Experience events on random profiles, so reads return events as real ones do. */
const EVENTS = 200_000;
const BATCH = 1_000;
const LOOKUPS = 20_000;
const WARMUP = 2_000;
const SEED = 1_000_003;

const READ_ID = 'profile.read.sqlite';
const LOAD_ID = 'ingest.service.bulk.sqlite';
const round = (n: number, d = 3): number => Math.round(n * 10 ** d) / 10 ** d;
const n = (x: number): string => x.toLocaleString('en-US');

/** The profile-store family. */
export const profileRead: Family = {
  name: 'profile.read',
  ids: [LOAD_ID, READ_ID],
  async run(selected, env) {
    const source = sourceRevision();
    const dir = join(env.tmp, 'profiles');
    mkdirSync(dir, { recursive: true });
    // BENCH_PROFILE_SCALE (only with BENCH_SMOKE, which writes nothing) sizes iteration runs.
    const override = Number(process.env['BENCH_PROFILE_SCALE']);
    const scale = process.env['BENCH_SMOKE'] === '1' && override > 0 && override <= 1 ? override : env.scale;
    const profiles = Math.round(PROFILES * scale);
    const slice = Math.round(SLICE * scale);
    const events = Math.round(EVENTS * scale);
    const nodeArgs = env.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${env.cpuProfDir}`, '--cpu-prof-name=profile-store.cpuprofile'] : [];
    const child = forkTs<RunProfileStore, ProfileStoreOut>(beside(import.meta.url, './processes/profile-store.ts'), { nodeArgs });
    const out: Results = {};
    try {
      child.send({ type: 'run', dir, profiles, slice, events, batch: BATCH, seed: SEED, lookups: LOOKUPS, warmup: WARMUP, reads: selected.has(READ_ID) });
      const loadavgAtStart = loadavg()[0]!;
      env.log(`  building ${n(profiles)} profiles (${n(profiles - 2 * slice)} seeded raw, ${n(slice)} raw as the peer, ${n(slice)} through IngestionService.ingest) and ${n(events)} events…`);
      const loaded = await child.receive('loaded', 900_000);
      const oursRate = loaded.slice / (loaded.oursMs / 1000);
      const peerRate = loaded.slice / (loaded.peerMs / 1000);
      env.log(
        `  loaded: service ${fmt(oursRate)} records/s, raw ${fmt(peerRate)} records/s (seed ${fmt(loaded.seeded / (loaded.seedMs / 1000))}/s), ` +
          `${loaded.rejected} rejected, ${loaded.dbMB} MB database + ${loaded.walMB} MB WAL, RSS ${loaded.rssAfterLoadMB} MB, feed drained in ${Math.round(loaded.feedDrainMs)} ms`,
      );
      const storeDetails = {
        profiles: loaded.profiles,
        'profiles seeded with raw inserts of the rows the store keeps (untimed)': loaded.seeded,
        'profiles inserted raw as the load peer (timed)': loaded.slice,
        'profiles loaded through IngestionService.ingest (timed)': loaded.slice,
        'events in the store (raw inserts on random profiles)': loaded.events,
        'database file, MB': loaded.dbMB,
        'WAL file after loading, MB': loaded.walMB,
        'WAL content checkpointed (TRUNCATE) before the reads, MB': loaded.walCheckpointedMB,
      };
      if (selected.has(READ_ID)) {
        const loadavgAtReads = loadavg()[0]!;
        const read = await child.receive('read', 600_000);
        env.log(`  reads: ours p50 ${round(read.ours.p50)} ms p99 ${round(read.ours.p99)} ms max ${round(read.ours.max)} ms; raw p50 ${round(read.raw.p50)} ms p99 ${round(read.raw.p99)} ms`);
        env.log(`  GC while timing ours: ${read.gc.count} pauses, ${round(read.gc.totalMs, 1)} ms total, max ${round(read.gc.maxMs, 2)} ms`);
        if (env.cpuProfDir) env.log(`  ours was timed in the CPU-profile window --window=${read.oursWindowUs[0]},${read.oursWindowUs[1]}`);
        const notes: string[] = [
          `The store is built with the real code (context, migrations, sandbox, schemas, datasets); ${n(loaded.seeded + loaded.slice)} of its profiles are raw inserts of the rows the SQLite store keeps for a profile (loading all of them through the service would take far longer than the run's budget on this machine), the last ${n(loaded.slice)} go through IngestionService.ingest. The WAL is checkpointed (TRUNCATE) before the reads, as in a store at rest.`,
        ];
        if (read.notFound) notes.push(`${read.notFound} raw lookups found nothing.`);
        out[READ_ID] = {
          value: round(read.ours.p99),
          unit: 'ms, p99 of ctx.profiles.get by identity (lower is better)',
          goal: '< 1 ms',
          peer: { name: 'raw better-sqlite3 primary-key lookup of the identity, same file and keys (p99)', value: round(read.raw.p99, 4) },
          ratio: round(read.ours.p99 / read.raw.p99, 1),
          command: commandFor(READ_ID),
          at: new Date().toISOString(),
          peakRssMB: read.peakRssMB,
          note: notes.join(' '),
          details: {
            ...storeDetails,
            lookups: read.lookups,
            'untimed warm-up lookups': WARMUP,
            keys: 'uniformly random profiles, half by ECID, half by email',
            'ours p50, ms': round(read.ours.p50),
            'ours mean, ms': round(read.ours.mean),
            'ours max, ms': round(read.ours.max),
            'raw p50, ms': round(read.raw.p50, 4),
            'raw max, ms': round(read.raw.max),
            'GC pauses while ours was timed (count / total ms / max ms)': `${read.gc.count} / ${round(read.gc.totalMs, 1)} / ${round(read.gc.maxMs, 2)}`,
            'RSS peak during reads, MB': read.readRssMB,
            'peakRssMB is': 'the process high-water mark, building the store included',
            'load average (1 min) when the reads started': round(loadavgAtReads, 2),
          },
          machine: machineInfo(),
          source,
        };
      }
      if (selected.has(LOAD_ID)) {
        out[LOAD_ID] = {
          value: Math.round(oursRate),
          unit: 'profile records/s (higher is better)',
          goal: 'none set (informational)',
          peer: { name: 'raw better-sqlite3 inserts of the same rows (2 lookups + 4 inserts per record, 1,000 per transaction)', value: Math.round(peerRate) },
          ratio: round(oursRate / peerRate),
          command: commandFor(LOAD_ID),
          at: new Date().toISOString(),
          peakRssMB: loaded.peakRssMB,
          note:
            `The issue sets no goal for this figure. Ours: profiles ${n(profiles - slice)}..${n(profiles)} through IngestionService.ingest, 1,000 per call ` +
            `(validation, identity resolution, fragment merge, change log, change feed), in-process, no HTTP, into a store already holding ${n(profiles - slice)} profiles. ` +
            `Peer: the ${n(slice)} profiles just before, inserted raw into the same store. The WAL is emptied (checkpoint TRUNCATE, untimed) before each timed slice; the peer's connection never checkpoints inside a commit, ours does whatever the store does.`,
          details: {
            ...storeDetails,
            'records timed': loaded.slice,
            'ours, s': round(loaded.oursMs / 1000, 1),
            'peer, s': round(loaded.peerMs / 1000, 1),
            'raw seed rate (store empty to full), records/s': Math.round(loaded.seeded / (loaded.seedMs / 1000)),
            rejected: loaded.rejected,
            'changes published': loaded.changesPublished,
            'change feed drain after the last call, ms': Math.round(loaded.feedDrainMs),
            'RSS after load, MB': loaded.rssAfterLoadMB,
            'load average (1 min) when the build started': round(loadavgAtStart, 2),
          },
          machine: machineInfo(),
          source,
        };
      }
    } finally {
      await child.exited(60_000);
      rmSync(dir, { recursive: true, force: true });
    }
    return out;
  },
};
