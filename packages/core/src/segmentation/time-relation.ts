/**
 * Turns a relative time (`occurs < 7 days before now`, `WHEN(between 1 and 3 days before today)`)
 * into the half-open interval of "now" values during which it holds for a given instant. The
 * same interval answers "does it hold?" and "when does that change?" (nextChange), so both always agree.
 */
import type { Distance, TimeRelation } from './ast.js';
import { ceilDay, shift } from './time.js';

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

/** Compiles a relation into a `TimeTest`. NaN instants never hold. */
export function compileRelation(rel: TimeRelation): TimeTest {
  const bounds = relationBounds(rel);
  const today = rel.anchor === 'today';
  const toReal = (x: number): number => (today && Number.isFinite(x) ? ceilDay(x) : x);
  return {
    holds: today
      ? (t, _now, day) => {
          const b = bounds(t);
          return b.lo <= day && day < b.hi;
        }
      : (t, now) => {
          const b = bounds(t);
          return b.lo <= now && now < b.hi;
        },
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
