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
import { checkAudience, compileAudience, eventTimesOf, parseAudience, resolveSchema, type AudienceContext } from '@audient/core';
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

/** Process → parent. */
export interface EvaluatorDone extends Message {
  type: 'done';
  profiles: number;
  eventPool: number;
  jreSample: number;
  totalEvents: number;
  buildMs: number;
  queries: QueryFigures[];
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
  for (const [qi, q] of SUITE.entries()) {
    const compiled = compileAudience(checkAudience(parseAudience(q.text), schemas));
    const ours = new Uint8Array(n);
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
  toParent({ type: 'done', profiles: n, eventPool: run.eventPool, jreSample: sample.length, totalEvents, buildMs, queries: figures, peakRssMB: peakRssMB() } satisfies EvaluatorDone);
  process.disconnect?.();
}

runChild(main);
