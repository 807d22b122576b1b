/**
 * Compiles event clauses: `select X from xEvent where …` (existence), `xEvent[…].count()/sum()…`
 * (aggregates) and `chain(…)` (ordered sequences). Windows on `timestamp` are used to skip the
 * leading old events, and counts stop as soon as the answer is known.
 */
import type { AggregateExpr, ChainExpr, CompareOp, Distance, Expr, SelectExpr } from './ast.js';
import type { LeafEnv } from './compile-leaves.js';
import { NEVER, type CompileExpr, type Program, type Test } from './program.js';
import { accessorFor, readKey, type EvalState } from './runtime.js';
import { maxUnitMs, shift as shiftBy } from './time.js';
import { compileRelation, earliest, type TimeTest } from './time-relation.js';

const MAX_LISTED_IDS = 20;

/** Lower bound on the time of any event that can satisfy `e` (for window skipping), if one is known. */
function windowStart(e: Expr | undefined): ((s: EvalState) => number) | undefined {
  if (!e) return undefined;
  if (e.kind === 'and') {
    const bounds = e.operands.map(windowStart).filter((b): b is (s: EvalState) => number => b !== undefined);
    if (bounds.length === 0) return undefined;
    const [first, second] = bounds;
    if (bounds.length === 1) return first;
    if (bounds.length === 2 && first && second) return (s) => Math.max(first(s), second(s));
    // No array built per evaluation: this runs once per event clause per profile.
    return (s) => {
      let m = -Infinity;
      for (let k = 0; k < bounds.length; k++) m = Math.max(m, (bounds[k] as (s: EvalState) => number)(s));
      return m;
    };
  }
  if (e.kind !== 'occurs' || e.target.scope !== 'event' || e.target.segments.join('.') !== 'timestamp') return undefined;
  const rel = e.relation;
  const anchor = (s: EvalState): number => (rel.anchor === 'today' ? s.today : s.now);
  if (rel.direction === 'after') return anchor;
  const d = rel.distance;
  if (d.kind === 'compare' && (d.op === '>' || d.op === '>=' || d.op === '!=')) return undefined;
  const reach = (d.kind === 'between' ? d.high : d.op === '=' ? d.amount + 1 : d.amount) * maxUnitMs(d.unit);
  return (s) => anchor(s) - reach - 1;
}

/**
 * First event index worth testing: skips the leading events that are older than the window's
 * lower bound. In sorted events (known without a pass when the times come from `eventTimesOf` or
 * `eventTimesFrom`) the window's first event is found by bisection, whatever the number of events
 * before it or inside the window; otherwise the leading old events are skipped one by one, which
 * holds whatever the order (each skipped event is itself too old).
 */
function firstIndex(start: ((s: EvalState) => number) | undefined, s: EvalState): number {
  if (!start) return 0;
  const n = s.events.length;
  if (n === 0) return 0;
  const t0 = start(s);
  if (s.sorted) {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s.time(mid) >= t0) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  let i = 0;
  while (i < n && s.time(i) < t0) i++;
  return i;
}

function eventId(s: EvalState, i: number): unknown {
  return readKey(s.events[i], '_id') ?? null;
}

/** Earliest change over the events kept from `from`, treating each event like an `and` leaf. */
function nextOverEvents(p: Program, s: EvalState, from: number): number | undefined {
  let best: number | undefined;
  for (let i = from; i < s.events.length; i++) best = earliest(best, p.next(s, i));
  return best;
}

/**
 * nextOverEvents for a condition whose next is monotone over past events (see pastMonotone) on
 * sorted events: the events after now (at the end) are each asked, and of the others the oldest
 * with a next has the earliest, so the walk stops there instead of asking every event (a
 * returning visitor's events grow with each visit; this runs per visit for each audience the
 * visit's event can touch).
 */
function nextOverSortedPast(p: Program, s: EvalState, from: number): number | undefined {
  let end = s.events.length;
  let best: number | undefined;
  while (end > from && s.time(end - 1) > s.now) best = earliest(best, p.next(s, --end));
  for (let i = from; i < end; i++) {
    const n = p.next(s, i);
    if (n !== undefined) return earliest(best, n);
  }
  return best;
}

/**
 * Whether a `where` condition's next is monotone over past events: the timestamp window itself,
 * or an `and` whose only time-dependent operand is (its next is then that operand's, or none).
 */
function monotoneOverPast(where: Program): boolean {
  if (where.pastMonotone) return true;
  if (where.expr.kind !== 'and') return false;
  const moving = where.children.filter((c) => c.next !== NEVER);
  return moving.length === 1 && moving[0]!.pastMonotone === true;
}

function cmp(op: CompareOp, a: number, b: number): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

const ALWAYS: Program['test'] = () => true;

/** `select X from xEvent where cond`: some event satisfies cond. */
export function compileSelect(compile: CompileExpr, e: SelectExpr): Program {
  const where = e.where ? compile(e.where) : undefined;
  const cond = where?.test ?? ALWAYS;
  const start = windowStart(e.where);
  const test: Test = (s) => {
    const n = s.events.length;
    for (let i = firstIndex(start, s); i < n; i++) if (cond(s, i)) return true;
    return false;
  };
  return {
    expr: e,
    test,
    next: !where ? NEVER : monotoneOverPast(where) ? (s) => (s.sorted ? nextOverSortedPast : nextOverEvents)(where, s, firstIndex(start, s)) : (s) => nextOverEvents(where, s, firstIndex(start, s)),
    details: (s) => {
      const ids: unknown[] = [];
      let count = 0;
      for (let i = 0; i < s.events.length; i++) {
        if (!cond(s, i)) continue;
        count++;
        if (ids.length < MAX_LISTED_IDS) ids.push(eventId(s, i));
      }
      return { matchingEvents: count, matchingEventIds: ids };
    },
    children: where ? [where] : [],
    perEvent: true,
  };
}

/** `xEvent[filter].fn(field) OP value`. Empty sets: count 0, sum 0; avg/min/max have no value and never hold. */
export function compileAggregate(env: LeafEnv, compile: CompileExpr, e: AggregateExpr): Program {
  const filter = e.filter ? compile(e.filter) : undefined;
  const keep = filter?.test ?? ALWAYS;
  const start = windowStart(e.filter);
  const target = typeof e.value.value === 'number' ? e.value.value : 0;
  const op = e.op;
  const field = e.field ? env.checked.paths.get(e.field) : undefined;
  const acc = e.field && field ? accessorFor(e.field, field) : undefined;
  const stats = { count: 0, n: 0, sum: 0, min: Infinity, max: -Infinity };
  const add = (v: unknown): boolean => {
    if (typeof v === 'number' && Number.isFinite(v)) {
      stats.n++;
      stats.sum += v;
      if (v < stats.min) stats.min = v;
      if (v > stats.max) stats.max = v;
    }
    return false;
  };
  const collect = (s: EvalState): typeof stats => {
    stats.count = stats.n = stats.sum = 0;
    stats.min = Infinity;
    stats.max = -Infinity;
    const n = s.events.length;
    const one = acc?.one;
    for (let i = firstIndex(start, s); i < n; i++) {
      if (!keep(s, i)) continue;
      stats.count++;
      if (one) add(one(s, i));
      else if (acc) acc.some(s, i, add);
    }
    return stats;
  };
  const valueOf = (st: typeof stats): number | undefined => {
    switch (e.fn) {
      case 'count':
        return st.count;
      case 'sum':
        return st.sum;
      case 'avg':
        return st.n > 0 ? st.sum / st.n : undefined;
      case 'min':
        return st.n > 0 ? st.min : undefined;
      case 'max':
        return st.n > 0 ? st.max : undefined;
    }
  };
  let test: Test;
  if (e.fn === 'count') {
    // Once the count reaches this, more events cannot change the answer.
    const stopAt = op === '>=' ? Math.max(0, Math.ceil(target)) : Math.max(0, Math.floor(target) + 1);
    test = (s) => {
      let c = 0;
      const n = s.events.length;
      for (let i = firstIndex(start, s); i < n && c < stopAt; i++) if (keep(s, i)) c++;
      return cmp(op, c, target);
    };
  } else if (e.fn === 'sum' && acc?.one) {
    // The common sum of one plain field: no stats record, no visitor call per event.
    const one = acc.one;
    test = (s) => {
      let sum = 0;
      const n = s.events.length;
      for (let i = firstIndex(start, s); i < n; i++) {
        if (!keep(s, i)) continue;
        const v = one(s, i);
        if (typeof v === 'number' && Number.isFinite(v)) sum += v;
      }
      return cmp(op, sum, target);
    };
  } else {
    test = (s) => {
      const v = valueOf(collect(s));
      return v !== undefined && cmp(op, v, target);
    };
  }
  return {
    expr: e,
    test,
    next: filter ? (s) => nextOverEvents(filter, s, firstIndex(start, s)) : NEVER,
    details: (s) => {
      const st = collect(s);
      const ids: unknown[] = [];
      for (let i = 0; i < s.events.length && ids.length < MAX_LISTED_IDS; i++) if (keep(s, i)) ids.push(eventId(s, i));
      return { [e.fn]: valueOf(st) ?? null, matchingEvents: st.count, matchingEventIds: ids };
    },
    children: filter ? [filter] : [],
    perEvent: true,
  };
}

interface AfterTest {
  step: number;
  holds: (ta: number, tb: number) => boolean;
  /** True when tb is already past the upper bound, so later (sorted) events cannot fit either. */
  beyond: (ta: number, tb: number) => boolean;
}

function afterTest(step: number, d: Distance): AfterTest {
  const u = d.unit;
  // Fixed units: one addition instead of the unit dispatch of `shift` on every pair of events.
  const unitMs = u === 'months' || u === 'years' ? 0 : maxUnitMs(u);
  const shift: typeof shiftBy = unitMs > 0 ? (t, amount) => t + amount * unitMs : shiftBy;
  if (d.kind === 'between') {
    return { step, holds: (ta, tb) => tb >= shift(ta, d.low, u) && tb <= shift(ta, d.high, u), beyond: (ta, tb) => tb > shift(ta, d.high, u) };
  }
  const a = d.amount;
  const never = (): boolean => false;
  switch (d.op) {
    case '<':
      return { step, holds: (ta, tb) => tb < shift(ta, a, u), beyond: (ta, tb) => tb >= shift(ta, a, u) };
    case '<=':
      return { step, holds: (ta, tb) => tb <= shift(ta, a, u), beyond: (ta, tb) => tb > shift(ta, a, u) };
    case '>':
      return { step, holds: (ta, tb) => tb > shift(ta, a, u), beyond: never };
    case '>=':
      return { step, holds: (ta, tb) => tb >= shift(ta, a, u), beyond: never };
    case '=':
    case '!=':
      return { step, holds: (ta, tb) => tb >= shift(ta, a, u) && tb < shift(ta, a + 1, u), beyond: (ta, tb) => tb >= shift(ta, a + 1, u) };
  }
}

interface Step {
  what: Program;
  rel: TimeTest | undefined;
  after: AfterTest | undefined;
}

/** `chain(xEvent, timestamp, [A: WHAT(..), B: WHAT(..) WHEN(< 1 hour after A)])`. */
export function compileChain(compile: CompileExpr, e: ChainExpr): Program {
  const labels = e.steps.map((st) => st.label);
  const steps: Step[] = e.steps.map((st) => ({
    what: compile(st.what),
    rel: st.when?.kind === 'relative' ? compileRelation(st.when.relation) : undefined,
    after: st.when?.kind === 'afterStep' ? afterTest(labels.indexOf(st.when.label), st.when.distance) : undefined,
  }));
  const k = steps.length;
  // When every WHEN refers to the step just before it, "no completion from (step, previous event)"
  // depends on nothing else and can be memoised: O(k·n²) worst case instead of exponential.
  const adjacentOnly = steps.every((st, idx) => !st.after || st.after.step === idx - 1);
  const chosen = new Int32Array(k);
  let whatMemo = new Int8Array(0);
  let failMemo = new Uint8Array(0);
  let n = 0;

  const whatAt = (s: EvalState, step: number, i: number): boolean => {
    const key = step * n + i;
    const m = whatMemo[key];
    if (m === 1) return true;
    if (m === 2) return false;
    const r = steps[step]?.what.test(s, i) ?? false;
    whatMemo[key] = r ? 1 : 2;
    return r;
  };

  const search = (s: EvalState, step: number, prev: number): boolean => {
    const st = steps[step];
    if (!st) return true;
    const memoKey = step * n + prev;
    if (adjacentOnly && prev >= 0 && failMemo[memoKey] === 1) return false;
    const ta = st.after ? s.time(chosen[st.after.step] ?? 0) : NaN;
    for (let i = prev + 1; i < n; i++) {
      const t = s.time(i);
      if (st.after) {
        if (!(t >= ta)) continue;
        if (!st.after.holds(ta, t)) {
          if (s.sorted && st.after.beyond(ta, t)) break;
          continue;
        }
      }
      if (st.rel && !st.rel.holds(t, s.now, s.today)) continue;
      if (!whatAt(s, step, i)) continue;
      chosen[step] = i;
      if (search(s, step + 1, i)) return true;
    }
    if (adjacentOnly && prev >= 0) failMemo[memoKey] = 1;
    return false;
  };

  const run = (s: EvalState): boolean => {
    n = s.events.length;
    if (n === 0) return false;
    const size = k * n;
    if (whatMemo.length < size) {
      whatMemo = new Int8Array(size * 2);
      failMemo = new Uint8Array(size * 2);
    } else {
      whatMemo.fill(0, 0, size);
      failMemo.fill(0, 0, size);
    }
    return search(s, 0, -1);
  };

  // One forward pass when every WHEN is an upper bound on the gap after the previous step in fixed
  // units (or absent) and events are sorted: a later completion of the previous steps is then
  // always at least as good as an earlier one, so keeping the latest per step suffices. O(k·n), no memo.
  const linear = e.steps.every((st, idx) =>
    idx === 0
      ? st.when?.kind !== 'afterStep'
      : st.when?.kind !== 'afterStep' ||
        (labels.indexOf(st.when.label) === idx - 1 && st.when.distance.kind === 'compare' && (st.when.distance.op === '<' || st.when.distance.op === '<=') && st.when.distance.unit !== 'months' && st.when.distance.unit !== 'years'),
  );
  const latest = new Float64Array(k);
  const forward = (s: EvalState): boolean => {
    latest.fill(NaN);
    for (let i = 0; i < n; i++) {
      const t = s.time(i);
      for (let step = k - 1; step >= 0; step--) {
        const st = steps[step] as Step;
        if (step > 0) {
          const ta = latest[step - 1] as number;
          if (ta !== ta || (st.after && !st.after.holds(ta, t))) continue;
        }
        if (st.rel && !st.rel.holds(t, s.now, s.today)) continue;
        if (!st.what.test(s, i)) continue;
        if (step === k - 1) return true;
        latest[step] = t;
      }
    }
    return false;
  };
  // The two-step chain people write most (`A then B within …`), unrolled: no step records per event.
  const [first, second] = steps;
  const pair =
    k === 2 && first && second
      ? (s: EvalState): boolean => {
          const what0 = first.what.test;
          const what1 = second.what.test;
          const rel0 = first.rel;
          const rel1 = second.rel;
          const gap = second.after;
          let ta = NaN;
          for (let i = 0; i < n; i++) {
            const t = s.time(i);
            if (ta === ta && (!gap || gap.holds(ta, t)) && (!rel1 || rel1.holds(t, s.now, s.today)) && what1(s, i)) return true;
            if ((!rel0 || rel0.holds(t, s.now, s.today)) && what0(s, i)) ta = t;
          }
          return false;
        }
      : forward;
  const test = (s: EvalState): boolean => {
    if (!linear) return run(s);
    n = s.events.length;
    if (n === 0 || k === 0) return k === 0 ? run(s) : false;
    return s.sorted ? pair(s) : run(s);
  };

  const next = (s: EvalState): number | undefined => {
    let best: number | undefined;
    for (const st of steps) {
      for (let i = 0; i < s.events.length; i++) {
        const r1 = st.what.test(s, i);
        const n1 = st.what.next(s, i);
        if (!r1 && n1 === undefined) continue;
        if (st.rel) {
          const t = s.time(i);
          const r2 = st.rel.holds(t, s.now, s.today);
          const n2 = st.rel.next(t, s.now);
          if (!r2 && n2 === undefined) continue;
          best = earliest(best, n2);
        }
        best = earliest(best, n1);
      }
    }
    return best;
  };

  return {
    expr: e,
    test,
    next,
    details: (s) => {
      const matched = run(s);
      const out: Record<string, unknown> = {};
      if (matched) out['matchedEvents'] = labels.map((label, idx) => ({ step: label, eventId: eventId(s, chosen[idx] ?? 0) }));
      out['eventsMatchingEachStep'] = steps.map((st, idx) => {
        let count = 0;
        for (let i = 0; i < s.events.length; i++) if (st.what.test(s, i)) count++;
        return { step: labels[idx] ?? String(idx), count };
      });
      return out;
    },
    children: steps.map((st) => st.what),
    perEvent: true,
  };
}
