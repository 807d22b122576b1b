/**
 * Turns a relative time (`occurs < 7 days before now`, `WHEN(between 1 and 3 days before today)`)
 * into the half-open interval of "now" values during which it holds for a given instant. The
 * same interval answers "does it hold?" and "when does that change?" (nextChange), so both always agree.
 */
import type { Distance, TimeRelation } from './ast.js';
import { DAY_MS, ceilDay, shift } from './time.js';

/** Computes `[lo, hi)` for instant `t`, in anchor space (now, or start of today). */
export type Bounds = (t: number) => { lo: number; hi: number };

/**
 * The interval of anchor values for which the relation holds for `t`. Elapsed time is measured by
 * shifting `t` by calendar units: "> 30 years before now" holds once now > t + 30 years.
 */
export function relationBounds(rel: TimeRelation): Bounds {
  const out = { lo: 0, hi: 0 };
  const d = rel.distance;
  if (rel.direction === 'before') return beforeBounds(d, out);
  return afterBounds(d, out);
}

function beforeBounds(d: Distance, out: { lo: number; hi: number }): Bounds {
  const u = d.unit;
  if (d.kind === 'between') {
    return (t) => ((out.lo = shift(t, d.low, u)), (out.hi = shift(t, d.high, u) + 1), out);
  }
  const a = d.amount;
  switch (d.op) {
    case '<':
      return (t) => ((out.lo = t), (out.hi = shift(t, a, u)), out);
    case '<=':
      return (t) => ((out.lo = t), (out.hi = shift(t, a, u) + 1), out);
    case '>':
      return (t) => ((out.lo = shift(t, a, u) + 1), (out.hi = Infinity), out);
    case '>=':
      return (t) => ((out.lo = shift(t, a, u)), (out.hi = Infinity), out);
    case '=':
    case '!=':
      return (t) => ((out.lo = shift(t, a, u)), (out.hi = shift(t, a + 1, u)), out);
  }
}

function afterBounds(d: Distance, out: { lo: number; hi: number }): Bounds {
  const u = d.unit;
  if (d.kind === 'between') {
    return (t) => ((out.lo = shift(t, -d.high, u)), (out.hi = shift(t, -d.low, u) + 1), out);
  }
  const a = d.amount;
  switch (d.op) {
    case '<':
      return (t) => ((out.lo = shift(t, -a, u) + 1), (out.hi = t + 1), out);
    case '<=':
      return (t) => ((out.lo = shift(t, -a, u)), (out.hi = t + 1), out);
    case '>':
      return (t) => ((out.lo = -Infinity), (out.hi = shift(t, -a, u)), out);
    case '>=':
      return (t) => ((out.lo = -Infinity), (out.hi = shift(t, -a, u) + 1), out);
    case '=':
    case '!=':
      return (t) => ((out.lo = shift(t, -(a + 1), u) + 1), (out.hi = shift(t, -a, u) + 1), out);
  }
}

/** A compiled relation: whether it holds for `t` and when (after `now`) that could change. */
export interface TimeTest {
  holds: (t: number, now: number, today: number) => boolean;
  /** Earliest instant > now at which `holds(t, …)` may flip, or undefined if never. */
  next: (t: number, now: number) => number | undefined;
  /** Interval in real time (today-anchored bounds mapped to midnights), for explanations. */
  window: (t: number) => { from: number; until: number };
}

/**
 * Cut-offs on `t` for one anchor value, so that most instants are decided by two comparisons
 * instead of calendar arithmetic per profile: `t <= yes` (and `t >= hiYes`) holds for sure,
 * `t >= no` or `t <= hiNo` fails for sure; anything in between (near a boundary, NaN) takes the
 * exact computation. Recomputed only when the anchor changes, i.e. once per evaluation batch.
 */
const MAX_INSTANT = 8.64e15;

interface Cuts {
  anchor: number;
  loYes: number;
  loNo: number;
  hiYes: number;
  hiNo: number;
}

/**
 * Largest-known `x` with f(t) <= a for every t <= x, and smallest-known `y` with f(t) > a for every
 * t >= y, for a bound f that is "almost monotone": t1 <= t2 implies f(t1) <= f(t2) + slack
 * (fixed units: slack 0; calendar months clamp Jan 29–31 onto Feb 28, so slack < 1 day). Each
 * candidate is verified with f itself, so a poor guess only widens the exact band.
 */
function cutsOf(f: (t: number) => number, a: number, slack: number): [number, number] {
  const fa = f(a);
  // NaN as a cut means "no such instant": every comparison with it is false.
  if (!Number.isFinite(fa)) return fa <= a ? [Infinity, NaN] : [NaN, -Infinity];
  const g = a - (fa - a);
  if (!Number.isFinite(g)) return [NaN, NaN];
  const step = Math.max(1, slack);
  let x = g;
  let k = 0;
  while (!(f(x) + slack <= a) && k++ < 8) x -= step;
  if (!(f(x) + slack <= a)) x = NaN;
  let y = g + 1;
  k = 0;
  while (!(f(y) - slack > a) && k++ < 8) y += step;
  if (!(f(y) - slack > a)) y = NaN;
  return [x, y];
}

/** Compiles a relation into a `TimeTest`. NaN instants never hold. */
export function compileRelation(rel: TimeRelation): TimeTest {
  const bounds = relationBounds(rel);
  const today = rel.anchor === 'today';
  const toReal = (x: number): number => (today && Number.isFinite(x) ? ceilDay(x) : x);
  const unit = rel.distance.unit;
  const slack = unit === 'months' || unit === 'years' ? DAY_MS : 0;
  const lo = (t: number): number => bounds(t).lo;
  const hi = (t: number): number => bounds(t).hi;
  const cuts: Cuts = { anchor: NaN, loYes: -Infinity, loNo: Infinity, hiYes: Infinity, hiNo: -Infinity };
  const exact = (t: number, a: number): boolean => {
    const b = bounds(t);
    return b.lo <= a && a < b.hi;
  };
  const holdsAt = (t: number, a: number): boolean => {
    if (a !== cuts.anchor) {
      if (!Number.isFinite(a)) return exact(t, a);
      [cuts.loYes, cuts.loNo] = cutsOf(lo, a, slack);
      // a < hi(t) is the negation of hi(t) <= a.
      [cuts.hiNo, cuts.hiYes] = cutsOf(hi, a, slack);
      cuts.anchor = a;
    }
    // Only instants a Date can hold (where the calendar arithmetic is exact in doubles) take the cuts.
    if (t >= -MAX_INSTANT && t <= MAX_INSTANT) {
      if (t <= cuts.loYes && t >= cuts.hiYes) return true;
      if (t >= cuts.loNo || t <= cuts.hiNo) return false;
    }
    return exact(t, a);
  };
  return {
    holds: today ? (t, _now, day) => holdsAt(t, day) : (t, now) => holdsAt(t, now),
    next: (t, now) => {
      if (t !== t) return undefined;
      const b = bounds(t);
      const lo = toReal(b.lo);
      const hi = toReal(b.hi);
      if (now < lo) return lo;
      if (now < hi && hi !== Infinity) return hi;
      return undefined;
    },
    window: (t) => {
      const b = bounds(t);
      return { from: toReal(b.lo), until: toReal(b.hi) };
    },
  };
}

/** Earliest of two optional instants. */
export function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}
