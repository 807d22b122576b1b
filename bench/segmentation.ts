/**
 * Segmentation benchmarks: the compiled evaluator against hand-written predicates, sift and
 * json-rules-engine (same profiles, answers compared); the batch job over a SQLite file store
 * against a raw scan of the same rows; streaming changes through the real pipeline against the
 * same pipeline with no audiences. Each runs in its own process (processes in segmentation/).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { beside, forkTs } from './lib/child.js';
import { commandFor, type Family, type RunEnv } from './lib/family.js';
import { machineInfo } from './lib/machine.js';
import type { BenchEntry, Results } from './lib/results.js';
import type { BatchDone, RunBatch } from './segmentation/batch-process.js';
import type { EvaluatorDone, QueryFigures, RunEvaluator } from './segmentation/evaluator-process.js';
import type { RunStreaming, StreamingDone } from './segmentation/streaming-process.js';

const SEED = 42;
const ID = {
  hand: 'segmentation.evaluator.vs-handwritten',
  sift: 'segmentation.evaluator.vs-sift',
  jre: 'segmentation.evaluator.vs-json-rules-engine',
  batch: 'segmentation.batch.sqlite',
  streaming: 'segmentation.streaming.sqlite',
} as const;
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;
const prof = (env: RunEnv, name: string): string[] =>
  env.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${env.cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
const base = (id: string): Pick<BenchEntry, 'command' | 'at' | 'machine'> => ({ command: commandFor(id), at: new Date().toISOString(), machine: machineInfo() });

/** Suite rate: evaluations over the summed time of the queries (each query over every profile). */
function suiteRate(qs: readonly QueryFigures[], rate: (q: QueryFigures) => number): number {
  return qs.length / qs.reduce((s, q) => s + 1 / rate(q), 0);
}

async function evaluator(selected: ReadonlySet<string>, env: RunEnv): Promise<Results> {
  const child = forkTs<RunEvaluator, EvaluatorDone>(beside(import.meta.url, './segmentation/evaluator-process.ts'), {
    nodeArgs: ['--max-old-space-size=8192', ...prof(env, 'segmentation-evaluator')],
  });
  child.send({ type: 'run', profiles: Math.round(1_000_000 * env.scale), eventPool: Math.round(50_000 * env.scale), jreSample: Math.round(20_000 * env.scale), seed: SEED });
  const load = loadavg()[0]!;
  const d = await child.receive('done', 1_800_000);
  await child.exited(30_000);
  const qs = d.queries;
  const ours = suiteRate(qs, (q) => q.oursPerSec);
  const hand = suiteRate(qs, (q) => q.handPerSec);
  const siftQs = qs.filter((q) => q.siftPerSec !== null);
  const oursSift = suiteRate(siftQs, (q) => q.oursPerSec);
  const sift = suiteRate(siftQs, (q) => q.siftPerSec!);
  const jre = suiteRate(qs, (q) => q.jrePerSec);
  const mism = (k: 'mismatchHand' | 'mismatchSift' | 'mismatchJre'): number => qs.reduce((s, q) => s + q[k], 0);
  const perQuery = (fmt: (q: QueryFigures) => string): Record<string, string> => Object.fromEntries(qs.map((q) => [q.name, fmt(q)]));
  const common = `${d.profiles.toLocaleString('en-US')} profiles (attribute objects generated per profile; ${d.eventPool.toLocaleString('en-US')} distinct event arrays of 0–20 events shared round-robin, ${d.totalEvents.toLocaleString('en-US')} event references in all), one context per profile reused across queries, eventTimes precomputed once per event array. Suite rate = queries / Σ(1/rate). Load average (1 min) at start: ${round(load, 2)}.`;
  const out: Results = {};
  const firsts = qs.filter((q) => q.firstMismatch).map((q) => `${q.name}: ${q.firstMismatch!.slice(0, 300)}`).join(' | ');
  if (selected.has(ID.hand)) {
    out[ID.hand] = {
      value: round(hand / ours), unit: '× hand-written time over the suite (ours / hand-written; lower is better)', goal: '<= 2',
      peer: { name: 'hand-written TypeScript predicates, evaluations/s over the suite', value: Math.round(hand) }, ratio: round(ours / hand),
      ...base(ID.hand), peakRssMB: d.peakRssMB,
      note: `${common} ratio = our evaluations/s / the peer's. Mismatches vs hand-written: ${mism('mismatchHand')}.${firsts ? ` First mismatches: ${firsts}` : ''}`,
      details: { 'ours, evaluations/s (suite)': Math.round(ours), mismatches: mism('mismatchHand'), ...perQuery((q) => `ours ${Math.round(q.oursPerSec)}/s, hand ${Math.round(q.handPerSec)}/s, ratio ${round(q.handPerSec / q.oursPerSec, 2)}×, matches ${q.matches}`) },
    };
  }
  if (selected.has(ID.sift)) {
    out[ID.sift] = {
      value: round(oursSift / sift, 2), unit: '× faster than sift over the queries sift can express (higher is better)', goal: '>= 5',
      peer: { name: 'sift 17 over {profile, events}, evaluations/s', value: Math.round(sift) }, ratio: round(oursSift / sift, 2),
      ...base(ID.sift), peakRssMB: d.peakRssMB,
      note: `${common} Skipped for sift (not expressible): ${qs.filter((q) => q.siftSkip).map((q) => `${q.name} (${q.siftSkip})`).join(', ')}. Mismatches vs sift: ${mism('mismatchSift')}.`,
      details: { 'queries measured': siftQs.length, 'ours, evaluations/s (same queries)': Math.round(oursSift), mismatches: mism('mismatchSift'), ...perQuery((q) => (q.siftPerSec === null ? `skipped: ${q.siftSkip}` : `ours ${Math.round(q.oursPerSec)}/s, sift ${Math.round(q.siftPerSec)}/s, ${round(q.oursPerSec / q.siftPerSec, 2)}×`)) },
    };
  }
  if (selected.has(ID.jre)) {
    out[ID.jre] = {
      value: round(ours / jre, 1), unit: '× faster than json-rules-engine (higher is better)', goal: '>= 100',
      peer: { name: `json-rules-engine 7, await engine.run per profile, ${d.jreSample.toLocaleString('en-US')}-profile evenly spaced sample`, value: Math.round(jre) }, ratio: round(ours / jre, 1),
      ...base(ID.jre), peakRssMB: d.peakRssMB,
      note: `${common} json-rules-engine measured on ${d.jreSample} profiles per query (rate scaled per profile); its event clauses are custom operators with plain-JS loops (it has no event aggregation), attributes via JSONPath. Mismatches vs json-rules-engine on the sample: ${mism('mismatchJre')}.`,
      details: { mismatches: mism('mismatchJre'), ...perQuery((q) => `ours ${Math.round(q.oursPerSec)}/s, jre ${Math.round(q.jrePerSec)}/s, ${round(q.oursPerSec / q.jrePerSec, 1)}×`) },
    };
  }
  return out;
}

async function batch(env: RunEnv, profiles: number): Promise<Results> {
  const dir = join(env.tmp, 'segmentation-batch');
  mkdirSync(dir, { recursive: true });
  try {
    const child = forkTs<RunBatch, BatchDone>(beside(import.meta.url, './segmentation/batch-process.ts'), { nodeArgs: prof(env, 'segmentation-batch') });
    child.send({ type: 'run', dir, profiles: Math.round(profiles * env.scale), audiences: 100, seed: SEED });
    const d = await child.receive('done', 3_600_000);
    await child.exited(60_000);
    const scaled = (d.oursMs / 1000) * (1_000_000 / d.profiles);
    const peerScaled = (d.peerMs / 1000) * (1_000_000 / d.profiles);
    return {
      [ID.batch]: {
        value: round(scaled, 1), unit: 's for 1,000,000 profiles × 100 audiences, scaled linearly from the measured count (lower is better)', goal: '< 10',
        peer: { name: 'bare better-sqlite3 scan of the same fragments and events + JSON.parse (scaled the same way), s', value: round(peerScaled, 2) }, ratio: round(scaled / peerScaled, 1),
        ...base(ID.batch), peakRssMB: d.peakRssMB,
        note: `Measured on ${d.profiles.toLocaleString('en-US')} profiles (${d.events.toLocaleString('en-US')} events), NOT 1,000,000: BatchSegmentation.run(sandbox, {all: true}) on a SQLite WAL file, store rows written directly (one email identity, the CRM fragment, events). Audience methods: ${JSON.stringify(d.methods)}.`,
        details: { 'profiles measured': d.profiles, 'ours measured, s': round(d.oursMs / 1000, 2), 'peer measured, s': round(d.peerMs / 1000, 2), 'peer rows': d.peerRows, memberships: d.memberships, 'job state': JSON.stringify(d.job), 'db MB': d.dbMB },
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function streaming(env: RunEnv, records: number): Promise<Results> {
  const dir = join(env.tmp, 'segmentation-streaming');
  mkdirSync(dir, { recursive: true });
  const runs: StreamingDone[] = [];
  try {
    for (const audiences of [0, 100]) {
      const child = forkTs<RunStreaming, StreamingDone>(beside(import.meta.url, './segmentation/streaming-process.ts'), { nodeArgs: prof(env, `segmentation-streaming-${audiences}`) });
      child.send({ type: 'run', dir, records: Math.round(records * env.scale), batch: 100, audiences, seed: SEED, label: `a${audiences}` });
      runs.push(await child.receive('done', 3_600_000));
      await child.exited(60_000);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const [peer, ours] = runs as [StreamingDone, StreamingDone];
  const rate = ours.records / (ours.wallMs / 1000);
  const peerRate = peer.records / (peer.wallMs / 1000);
  return {
    [ID.streaming]: {
      value: Math.round(rate), unit: 'profile changes/s through ingestion → change feed → SegmentationEngine.onChange → bus (higher is better)', goal: '>= 10000 (and p99 < 10 ms)',
      peer: { name: 'same pipeline with 0 audiences (ingestion-only ceiling; Adobe figures not measurable here), changes/s', value: Math.round(peerRate) }, ratio: round(rate / peerRate),
      ...base(ID.streaming), peakRssMB: ours.peakRssMB,
      note: `${ours.records} new CRM profiles, IngestionService.ingest 100 per call in sequence, in-process, SQLite WAL file; ${ours.audiences} audiences (${JSON.stringify(ours.methods)}). Latency = record hand-off (start of its ingest call) → first memberships.* event for its profile.`,
      details: { 'p50 latency, ms': round(ours.p50, 2), 'p99 latency, ms': round(ours.p99, 2), 'max latency, ms': round(ours.max, 2), 'membership events': ours.membershipEvents, 'profiles with an event': ours.profilesWithEvent, 'ingest calls done after, ms': round(ours.ingestMs), 'drained after, ms': round(ours.wallMs) },
    },
  };
}

/** The segmentation family. */
export const segmentation: Family = {
  name: 'segmentation',
  ids: [ID.hand, ID.sift, ID.jre, ID.batch, ID.streaming],
  async run(selected, env) {
    const out: Results = {};
    if (selected.has(ID.hand) || selected.has(ID.sift) || selected.has(ID.jre)) Object.assign(out, await evaluator(selected, env));
    if (selected.has(ID.batch)) Object.assign(out, await batch(env, Number(process.env['BENCH_SEG_BATCH_PROFILES'] ?? 20_000)));
    if (selected.has(ID.streaming)) Object.assign(out, await streaming(env, Number(process.env['BENCH_SEG_STREAM_RECORDS'] ?? 5_000)));
    return out;
  },
};
