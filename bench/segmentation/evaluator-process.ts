/**
 * The evaluator benchmark's process: builds N profiles (a pool of event arrays shared between
 * them, so a million profiles fit comfortably), then for each suite query times our compiled
 * evaluator, the hand-written predicate and sift over every profile, and json-rules-engine over
 * an evenly spaced sample; every profile's answers are compared and mismatches counted.
 *
 * Fairness between the timed passes: profiles and events go through JSON as a store hands them
 * over (flat strings; built by concatenation they are ropes, and whichever evaluator reads them
 * first pays for flattening a million strings), a full GC runs before each timed pass (the
 * previous pass's garbage, json-rules-engine's above all, is not collected on the next one's
 * clock), and ours and the hand-written predicates take turns at going first.
 */
import { checkAudience, compileAudience, EvalState, eventTimesOf, parseAudience, resolveSchema, type AudienceContext } from '@audient/core';
import jre from 'json-rules-engine';
import * as siftModule from 'sift';

/** sift is CommonJS with a default export: take the function whichever way the loader hands it over. */
const sift = ((siftModule as unknown as { default?: unknown }).default ?? siftModule) as (query: unknown) => (item: unknown) => boolean;
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { peakRssMB } from '../lib/rss.js';
import { EVENT_SCHEMA, NOW, PROFILE_SCHEMA, makeEvents, makeProfile, type BenchEvent, type Profile } from './data.js';
import { SUITE, jreOperators, type JreCondition } from './queries.js';

/** Parent → process. */
export interface RunEvaluator extends Message {
  type: 'run';
  profiles: number;
  eventPool: number;
  jreSample: number;
  seed: number;
}

/** Figures of one query. */
export interface QueryFigures {
  name: string;
  text: string;
  matches: number;
  oursPerSec: number;
  handPerSec: number;
  siftPerSec: number | null;
  siftSkip: string | null;
  jrePerSec: number;
  mismatchHand: number;
  mismatchSift: number;
  mismatchJre: number;
  firstMismatch: string | null;
}

/**
 * The suite pass: every evaluator evaluates all its queries on one profile before the next
 * profile (how our batch job, the streaming engine and the edge evaluate: every audience of a
 * profile at once), so each profile is fetched into the cache once per evaluator instead of once
 * per query. Times in ms over all profiles (json-rules-engine over the sample).
 */
export interface SuitePass {
  queries: number;
  oursMs: number;
  handMs: number;
  /** The queries sift can express: ours and sift over that subset. */
  siftQueries: number;
  oursSiftMs: number;
  siftMs: number;
  /** One json-rules-engine Engine holding every query as a rule, one `run` per sampled profile. */
  jreMs: number;
  mismatchOurs: number;
  mismatchHand: number;
  mismatchSift: number;
  mismatchJre: number;
  firstMismatch: string | null;
}

/** Process → parent. */
export interface EvaluatorDone extends Message {
  type: 'done';
  profiles: number;
  eventPool: number;
  jreSample: number;
  totalEvents: number;
  buildMs: number;
  queries: QueryFigures[];
  suite: SuitePass;
  peakRssMB: number;
}

/** Full collection before a timed pass (the process runs with --expose-gc). */
const collect = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);

const time = (fn: () => void): number => {
  collect();
  const t = performance.now();
  fn();
  return performance.now() - t;
};

async function main(): Promise<void> {
  const run = await fromParent<RunEvaluator>('run');
  const t0 = performance.now();
  const schemas = {
    profile: resolveSchema({ ...PROFILE_SCHEMA, version: 1 }).root,
    event: resolveSchema({ ...EVENT_SCHEMA, version: 1 }).root,
  };
  const pool: BenchEvent[][] = [];
  const poolTimes: Float64Array[] = [];
  for (let k = 0; k < run.eventPool; k++) {
    const events = JSON.parse(JSON.stringify(makeEvents(k, run.seed))) as BenchEvent[];
    pool.push(events);
    poolTimes.push(eventTimesOf(events as unknown as Array<Record<string, unknown>>));
  }
  const inSegment = (): boolean => false;
  const profiles: Profile[] = new Array(run.profiles);
  const contexts: AudienceContext[] = new Array(run.profiles);
  let totalEvents = 0;
  for (let i = 0; i < run.profiles; i++) {
    const p = JSON.parse(JSON.stringify(makeProfile(i, run.seed))) as Profile;
    const k = i % run.eventPool;
    profiles[i] = p;
    contexts[i] = { profile: p as unknown as Record<string, unknown>, events: pool[k]! as unknown as Array<Record<string, unknown>>, eventTimes: poolTimes[k]!, now: NOW, inSegment };
    totalEvents += pool[k]!.length;
  }
  const buildMs = performance.now() - t0;
  const n = run.profiles;
  const step = Math.max(1, Math.floor(n / run.jreSample));
  const sample: number[] = [];
  for (let i = 0; i < n && sample.length < run.jreSample; i += step) sample.push(i);
  const ops = jreOperators(NOW);

  const figures: QueryFigures[] = [];
  const compiledSuite = SUITE.map((q) => compileAudience(checkAudience(parseAudience(q.text), schemas)));
  const oursByQuery: Uint8Array[] = [];
  for (const [qi, q] of SUITE.entries()) {
    const compiled = compiledSuite[qi]!;
    const ours = new Uint8Array(n);
    oursByQuery.push(ours);
    const hand = new Uint8Array(n);
    const sifted = new Uint8Array(n);
    // Warm-up on a slice, untimed, so each evaluator's closures are optimised before timing.
    for (let i = 0; i < Math.min(n, 20_000); i++) {
      compiled.evaluate(contexts[i]!);
      q.hand(profiles[i]!, pool[i % run.eventPool]!, poolTimes[i % run.eventPool]!, NOW);
    }
    const timeOurs = (): number =>
      time(() => {
        for (let i = 0; i < n; i++) ours[i] = compiled.evaluate(contexts[i]!) ? 1 : 0;
      });
    const timeHand = (): number =>
      time(() => {
        for (let i = 0; i < n; i++) {
          const c = contexts[i]!;
          hand[i] = q.hand(c.profile as unknown as Profile, c.events as unknown as BenchEvent[], c.eventTimes!, c.now) ? 1 : 0;
        }
      });
    let oursMs: number;
    let handMs: number;
    if (qi % 2 === 0) {
      oursMs = timeOurs();
      handMs = timeHand();
    } else {
      handMs = timeHand();
      oursMs = timeOurs();
    }
    let siftMs: number | null = null;
    if (q.sift) {
      const test = sift(q.sift);
      for (let i = 0; i < Math.min(n, 20_000); i++) test(contexts[i]);
      siftMs = time(() => {
        for (let i = 0; i < n; i++) sifted[i] = test(contexts[i]) ? 1 : 0;
      });
    }
    const engine = new jre.Engine([], { allowUndefinedFacts: true });
    for (const [name, fn] of ops) engine.addOperator(name, fn as (a: unknown, b: unknown) => boolean);
    const top = (c: JreCondition): JreCondition => ('all' in c || 'any' in c || 'not' in c ? c : { all: [c] });
    engine.addRule({ conditions: top(q.jre) as never, event: { type: 'match' } });
    const jreOut = new Uint8Array(sample.length);
    const tj = performance.now();
    for (let s = 0; s < sample.length; s++) {
      const c = contexts[sample[s]!]!;
      const r = await engine.run({ profile: c.profile, events: c.events });
      jreOut[s] = r.events.length > 0 ? 1 : 0;
    }
    const jreMs = performance.now() - tj;

    let mismatchHand = 0;
    let mismatchSift = 0;
    let mismatchJre = 0;
    let matches = 0;
    let firstMismatch: string | null = null;
    const note = (who: string, i: number, theirs: number): void => {
      firstMismatch ??= `${who} on profile ${i}: ours ${ours[i]}, ${who} ${theirs}; profile ${JSON.stringify(profiles[i])}`;
    };
    for (let i = 0; i < n; i++) {
      matches += ours[i]!;
      if (ours[i] !== hand[i]) (mismatchHand++, note('hand-written', i, hand[i]!));
      if (q.sift && ours[i] !== sifted[i]) (mismatchSift++, note('sift', i, sifted[i]!));
    }
    for (let s = 0; s < sample.length; s++) if (ours[sample[s]!] !== jreOut[s]) (mismatchJre++, note('json-rules-engine', sample[s]!, jreOut[s]!));
    const f: QueryFigures = {
      name: q.name,
      text: q.text,
      matches,
      oursPerSec: n / (oursMs / 1000),
      handPerSec: n / (handMs / 1000),
      siftPerSec: siftMs === null ? null : n / (siftMs / 1000),
      siftSkip: q.siftSkip ?? null,
      jrePerSec: sample.length / (jreMs / 1000),
      mismatchHand,
      mismatchSift,
      mismatchJre,
      firstMismatch,
    };
    figures.push(f);
    console.log(
      `  ${q.name.padEnd(32)} ours ${Math.round(f.oursPerSec).toLocaleString('en-US').padStart(12)}/s  hand ${Math.round(f.handPerSec).toLocaleString('en-US').padStart(12)}/s  ` +
        `sift ${f.siftPerSec === null ? '—'.padStart(10) : Math.round(f.siftPerSec).toLocaleString('en-US').padStart(10)}/s  jre ${Math.round(f.jrePerSec).toLocaleString('en-US').padStart(8)}/s  ` +
        `matches ${matches}  mismatches h/s/j ${mismatchHand}/${mismatchSift}/${mismatchJre}`,
    );
  }
  const suite = await suitePass({ n, contexts, sample, ops, compiled: compiledSuite, oursByQuery });
  console.log(
    `  suite pass (all queries per profile): ours ${Math.round(suite.oursMs)} ms, hand ${Math.round(suite.handMs)} ms; ` +
      `sift subset (${suite.siftQueries} queries): ours ${Math.round(suite.oursSiftMs)} ms, sift ${Math.round(suite.siftMs)} ms; ` +
      `jre ${Math.round(suite.jreMs)} ms over ${sample.length} profiles; mismatches o/h/s/j ${suite.mismatchOurs}/${suite.mismatchHand}/${suite.mismatchSift}/${suite.mismatchJre}`,
  );
  toParent({ type: 'done', profiles: n, eventPool: run.eventPool, jreSample: sample.length, totalEvents, buildMs, queries: figures, suite, peakRssMB: peakRssMB() } satisfies EvaluatorDone);
  process.disconnect?.();
}

/**
 * The suite pass (see SuitePass). Each evaluator's answers land in one array per query and are
 * compared with our per-query answers (ours with ours: same answers whatever the loop order).
 */
async function suitePass(a: {
  n: number;
  contexts: AudienceContext[];
  sample: readonly number[];
  ops: ReturnType<typeof jreOperators>;
  compiled: ReturnType<typeof compileAudience>[];
  oursByQuery: Uint8Array[];
}): Promise<SuitePass> {
  const { n, contexts, sample, compiled } = a;
  const qn = SUITE.length;
  const hands = SUITE.map((q) => q.hand);
  const siftIdx = SUITE.flatMap((q, k) => (q.sift ? [k] : []));
  const siftTests = siftIdx.map((k) => sift(SUITE[k]!.sift));
  const siftCompiled = siftIdx.map((k) => compiled[k]!);
  const ours = SUITE.map(() => new Uint8Array(n));
  const hand = SUITE.map(() => new Uint8Array(n));
  const oursSub = siftIdx.map(() => new Uint8Array(n));
  const sifted = siftIdx.map(() => new Uint8Array(n));
  // As the engine evaluates a profile's audiences (batch pages, streaming, edge): one state bound
  // to the profile's context, shared by its audiences.
  const state = new EvalState();
  const runOurs = (): void => {
    for (let i = 0; i < n; i++) {
      const s = state.bind(contexts[i]!);
      for (let k = 0; k < qn; k++) ours[k]![i] = compiled[k]!.holds(s) ? 1 : 0;
    }
  };
  const runHand = (): void => {
    for (let i = 0; i < n; i++) {
      const c = contexts[i]!;
      const p = c.profile as unknown as Profile;
      const e = c.events as unknown as BenchEvent[];
      const t = c.eventTimes!;
      for (let k = 0; k < qn; k++) hand[k]![i] = hands[k]!(p, e, t, c.now) ? 1 : 0;
    }
  };
  const runOursSub = (): void => {
    for (let i = 0; i < n; i++) {
      const s = state.bind(contexts[i]!);
      for (let k = 0; k < siftCompiled.length; k++) oursSub[k]![i] = siftCompiled[k]!.holds(s) ? 1 : 0;
    }
  };
  const runSift = (): void => {
    for (let i = 0; i < n; i++) {
      const c = contexts[i]!;
      for (let k = 0; k < siftTests.length; k++) sifted[k]![i] = siftTests[k]!(c) ? 1 : 0;
    }
  };
  // Warm-up over a slice in the suite's loop order (the per-query passes warmed each closure alone).
  const warm = Math.min(n, 20_000);
  for (let i = 0; i < warm; i++) {
    const c = contexts[i]!;
    const s = state.bind(c);
    for (let k = 0; k < qn; k++) {
      compiled[k]!.holds(s);
      hands[k]!(c.profile as unknown as Profile, c.events as unknown as BenchEvent[], c.eventTimes!, c.now);
    }
    for (const test of siftTests) test(c);
  }
  // Ours, hand, hand, ours: each runs once first and once last; each keeps its faster pass.
  const o1 = time(runOurs);
  const h1 = time(runHand);
  const h2 = time(runHand);
  const o2 = time(runOurs);
  const oursMs = Math.min(o1, o2);
  const handMs = Math.min(h1, h2);
  const oursSiftMs = time(runOursSub);
  const siftMs = time(runSift);

  const engine = new jre.Engine([], { allowUndefinedFacts: true });
  for (const [name, fn] of a.ops) engine.addOperator(name, fn as (x: unknown, y: unknown) => boolean);
  const top = (c: JreCondition): JreCondition => ('all' in c || 'any' in c || 'not' in c ? c : { all: [c] });
  SUITE.forEach((q, k) => engine.addRule({ conditions: top(q.jre) as never, event: { type: String(k) } }));
  const jreOut = SUITE.map(() => new Uint8Array(sample.length));
  collect();
  const tj = performance.now();
  for (let s = 0; s < sample.length; s++) {
    const c = contexts[sample[s]!]!;
    const r = await engine.run({ profile: c.profile, events: c.events });
    for (const ev of r.events) jreOut[Number(ev.type)]![s] = 1;
  }
  const jreMs = performance.now() - tj;

  const out: SuitePass = {
    queries: qn, oursMs, handMs, siftQueries: siftIdx.length, oursSiftMs, siftMs, jreMs,
    mismatchOurs: 0, mismatchHand: 0, mismatchSift: 0, mismatchJre: 0, firstMismatch: null,
  };
  const note = (who: string, k: number, i: number): void => {
    out.firstMismatch ??= `${who}, query ${SUITE[k]!.name}, profile ${i}`;
  };
  for (let k = 0; k < qn; k++) {
    const ref = a.oursByQuery[k]!;
    for (let i = 0; i < n; i++) {
      if (ours[k]![i] !== ref[i]) (out.mismatchOurs++, note('ours (suite pass vs per query)', k, i));
      if (hand[k]![i] !== ref[i]) (out.mismatchHand++, note('hand-written', k, i));
    }
    for (let s = 0; s < sample.length; s++) if (jreOut[k]![s] !== ref[sample[s]!]) (out.mismatchJre++, note('json-rules-engine', k, sample[s]!));
  }
  siftIdx.forEach((k, j) => {
    const ref = a.oursByQuery[k]!;
    for (let i = 0; i < n; i++) {
      if (sifted[j]![i] !== ref[i]) (out.mismatchSift++, note('sift', k, i));
      if (oursSub[j]![i] !== ref[i]) (out.mismatchOurs++, note('ours (sift subset)', k, i));
    }
  });
  return out;
}

runChild(main);
