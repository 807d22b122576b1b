/**
 * Compiles attribute conditions (comparisons, lists, like, exists, between, string functions,
 * occurs) into closures. Literals are decoded once here; the hot path does a type guard and a
 * comparison, and common shapes (number/string against a literal on a plain path) are fused.
 */
import type { BetweenExpr, CompareExpr, CompareOp, InListExpr, LikeExpr, LiteralExpr, OccursExpr, PathExpr, StringFnExpr } from './ast.js';
import type { CheckedAudience } from './check.js';
import { Check, hotArrayLeaf, hotLeaf } from './hot-leaves.js';
import { compileLike, compileRegex, likeShapeOf, type StringTest } from './matchers.js';
import { NEVER, type Program, type Test } from './program.js';
import { accessorFor, internalize, type Accessor, type EvalState } from './runtime.js';
import type { ResolvedPath } from './schema-paths.js';
import { parseInstant } from './time.js';
import { compileRelation, earliest } from './time-relation.js';

type ValueTest = (v: unknown) => boolean;

/** Shared by the leaf compilers: the checked paths of the query. */
export interface LeafEnv {
  checked: CheckedAudience;
}

function resolved(env: LeafEnv, p: PathExpr): ResolvedPath {
  const r = env.checked.paths.get(p);
  if (!r) throw new Error(`internal: path '${p.segments.join('.')}' was not checked`);
  return r;
}

function accessor(env: LeafEnv, p: PathExpr): { acc: Accessor; type: ResolvedPath['type'] } {
  const r = resolved(env, p);
  return { acc: accessorFor(p, r), type: r.type };
}

/** A fused hot leaf (see hot-leaves.ts) for plain paths and paths crossing one array, or undefined. */
function hot(acc: Accessor, code: Check, lit: unknown, fn?: ValueTest): Test | undefined {
  const event = acc.scope === 'event';
  if (acc.keys) return hotLeaf(acc.keys, event, code, lit, fn);
  if (acc.arrayKeys) return hotArrayLeaf(acc.arrayKeys.before, acc.arrayKeys.after, event, code, lit, fn);
  return undefined;
}

/** A leaf's test from a value test: one read on plain paths, "any element" across arrays. */
function lift(acc: Accessor, test: ValueTest): Test {
  const fused = hot(acc, Check.Custom, undefined, test);
  if (fused) return fused;
  const one = acc.one;
  if (one) return (s, i) => test(one(s, i));
  return (s, i) => acc.some(s, i, test);
}

function valueDetails(acc: Accessor): Program['details'] {
  const one = acc.one;
  if (one) return (s, i) => ({ value: one(s, i) ?? null });
  return (s, i) => ({ values: acc.all(s, i) });
}

function leaf(expr: Program['expr'], test: Test, details: Program['details']): Program {
  return { expr, test, next: NEVER, details, children: [], perEvent: false };
}

/** Literal as the comparable primitive for the field type (dates become epoch ms). */
function decode(v: LiteralExpr, type: ResolvedPath['type']): string | number | boolean | null {
  if (type === 'date' && typeof v.value === 'string') return parseInstant(v.value);
  return typeof v.value === 'string' ? internalize(v.value) : v.value;
}

function cmp(op: CompareOp, a: number | string, b: number | string): boolean {
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

/** A fused leaf testing the value against a literal (`Check.NeNumber` only on plain paths), or undefined. */
function fusedLiteral(acc: Accessor, code: Check, lit: number | string): Test | undefined {
  if (code === Check.NeNumber && !acc.keys) return undefined;
  return hot(acc, code, lit);
}

const CHECKS: Record<Exclude<CompareOp, '!='>, Check> = { '=': Check.Eq, '<': Check.Lt, '<=': Check.Le, '>': Check.Gt, '>=': Check.Ge };

/** Typed test of a value against a decoded literal (no coercion: "5" never equals 5). */
function literalTest(op: CompareOp, lit: string | number | boolean, type: ResolvedPath['type']): ValueTest {
  if (type === 'date') {
    const ms = lit as number;
    return (v) => {
      const t = parseInstant(v);
      return t === t && cmp(op, t, ms);
    };
  }
  if (typeof lit === 'boolean' || op === '=') return (v) => v === lit;
  const kind = typeof lit;
  const l = lit;
  return (v) => typeof v === kind && cmp(op, v as number | string, l);
}

function existsTest(acc: Accessor): Test {
  return hot(acc, Check.Exists, undefined) ?? lift(acc, (v) => v !== undefined && v !== null);
}

/** `a OP b` where at least one side is a path. `!=` means "exists and not equal". */
export function compileCompare(env: LeafEnv, e: CompareExpr): Program {
  let { left, right, op } = e;
  if (left.kind === 'literal' && right.kind === 'path') {
    [left, right] = [right, left];
    op = op === '<' ? '>' : op === '>' ? '<' : op === '<=' ? '>=' : op === '>=' ? '<=' : op;
  }
  if (left.kind === 'literal' && right.kind === 'literal') {
    const a = left.value;
    const b = right.value;
    const value = op === '=' ? a === b : op === '!=' ? a !== b : a !== null && b !== null && typeof a === typeof b && cmp(op, a as number, b as number);
    return leaf(e, () => value, () => ({ value }));
  }
  if (left.kind !== 'path') throw new Error('internal: unreachable');
  const { acc, type } = accessor(env, left);
  if (right.kind === 'literal') {
    const lit = decode(right, type);
    if (lit === null) {
      const exists = existsTest(acc);
      const test: Test = op === '=' ? (s, i) => !exists(s, i) : exists;
      return leaf(e, test, valueDetails(acc));
    }
    if (op === '!=') {
      const ne = type === 'number' && typeof lit === 'number' ? fusedLiteral(acc, Check.NeNumber, lit) : undefined;
      if (ne) return leaf(e, ne, valueDetails(acc));
      const eq = lift(acc, literalTest('=', lit, type));
      const exists = existsTest(acc);
      return leaf(e, (s, i) => exists(s, i) && !eq(s, i), valueDetails(acc));
    }
    const fusable = (type === 'number' && typeof lit === 'number') || (type === 'string' && typeof lit === 'string' && op === '=');
    const fused = fusable && typeof lit !== 'boolean' ? fusedLiteral(acc, CHECKS[op], lit) : undefined;
    const test: Test = fused ?? lift(acc, literalTest(op, lit, type));
    return leaf(e, test, valueDetails(acc));
  }
  const other = accessor(env, right).acc;
  const norm = (v: unknown): number | string | boolean | undefined =>
    type === 'date' ? ((t) => (t === t ? t : undefined))(parseInstant(v)) : typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' ? v : undefined;
  const pair = (a: unknown, b: unknown): boolean => {
    const x = norm(a);
    const y = norm(b);
    if (x === undefined || y === undefined || typeof x !== typeof y) return false;
    if (typeof x === 'boolean') return op === '=' ? x === y : op === '!=' ? x !== y : false;
    return cmp(op, x, y as number | string);
  };
  const test: Test = (s, i) => acc.some(s, i, (a) => other.some(s, i, (b) => pair(a, b)));
  return leaf(e, test, (s, i) => ({ left: acc.one ? acc.one(s, i) ?? null : acc.all(s, i), right: other.one ? other.one(s, i) ?? null : other.all(s, i) }));
}

/** `x in [...]` / `x notIn [...]` (notIn: exists and no value in the list). */
export function compileIn(env: LeafEnv, e: InListExpr): Program {
  const { acc, type } = accessor(env, e.target);
  const values = e.values.map((v) => decode(v, type)).filter((v): v is string | number | boolean => v !== null);
  const set = new Set<unknown>(values);
  const member: ValueTest =
    type === 'date'
      ? (v) => set.has(parseInstant(v))
      : values.length <= 6
        ? (v) => {
            for (let k = 0; k < values.length; k++) if (values[k] === v) return true;
            return false;
          }
        : (v) => set.has(v);
  // Short lists on plain paths: the loop is written out in the hot leaf (no call per value).
  const inline = type !== 'date' && values.length <= 6 && acc.keys ? hotLeaf(acc.keys, acc.scope === 'event', Check.In, values) : undefined;
  const isIn = inline ?? lift(acc, member);
  if (!e.negated) return leaf(e, isIn, valueDetails(acc));
  const exists = existsTest(acc);
  return leaf(e, (s, i) => exists(s, i) && !isIn(s, i), valueDetails(acc));
}

/** A string leaf; `code`/`text` give the same test as `m` as a hot-leaf check, for plain paths. */
function stringLeaf(env: LeafEnv, expr: Program['expr'], target: PathExpr, m: StringTest, code?: Check, text?: string): Program {
  const { acc } = accessor(env, target);
  const inline = code !== undefined && acc.keys ? hotLeaf(acc.keys, acc.scope === 'event', code, text) : undefined;
  return leaf(expr, inline ?? lift(acc, (v) => typeof v === 'string' && m(v)), valueDetails(acc));
}

const LIKE_CHECKS = { equals: Check.Eq, includes: Check.Includes, startsWith: Check.StartsWith, endsWith: Check.EndsWith } as const;

/** `x like "%a_b%"`. */
export function compileLikeExpr(env: LeafEnv, e: LikeExpr): Program {
  const pattern = String(e.pattern.value);
  const shape = likeShapeOf(pattern);
  return stringLeaf(env, e, e.target, compileLike(pattern), shape && LIKE_CHECKS[shape.kind], shape?.text);
}

/** `x.startsWith(..)`, `x.endsWith(..)`, `x.contains(.., caseSensitive)`, `x.matches(..)`. */
export function compileStringFn(env: LeafEnv, e: StringFnExpr): Program {
  const arg = String(e.argument.value);
  const lower = arg.toLowerCase();
  let m: StringTest;
  let code: Check | undefined;
  let text = arg;
  switch (e.fn) {
    case 'startsWith':
      m = (v) => v.startsWith(arg);
      code = Check.StartsWith;
      break;
    case 'endsWith':
      m = (v) => v.endsWith(arg);
      code = Check.EndsWith;
      break;
    case 'contains':
      m = e.caseSensitive ? (v) => v.includes(arg) : (v) => v.toLowerCase().includes(lower);
      code = e.caseSensitive ? Check.Includes : Check.IncludesLower;
      text = e.caseSensitive ? arg : lower;
      break;
    case 'matches':
      m = compileRegex(arg);
      break;
  }
  return stringLeaf(env, e, e.target, m, code, text);
}

/** `x exists`. */
export function compileExists(env: LeafEnv, e: { kind: 'exists'; target: PathExpr } & Program['expr']): Program {
  const { acc } = accessor(env, e.target);
  return leaf(e, existsTest(acc), valueDetails(acc));
}

/** `x between a and b`, inclusive. */
export function compileBetween(env: LeafEnv, e: BetweenExpr): Program {
  const { acc, type } = accessor(env, e.target);
  const lo = decode(e.low, type);
  const hi = decode(e.high, type);
  const kind = typeof lo;
  const test: ValueTest =
    type === 'date'
      ? (v) => {
          const t = parseInstant(v);
          return t >= (lo as number) && t <= (hi as number);
        }
      : (v) => typeof v === kind && (v as number) >= (lo as number) && (v as number) <= (hi as number);
  return leaf(e, lift(acc, test), valueDetails(acc));
}

/** `x occurs < 7 days before now`: holds-now and next-change come from the same interval. */
export function compileOccurs(env: LeafEnv, e: OccursExpr): Program {
  const { acc } = accessor(env, e.target);
  const rel = compileRelation(e.relation);
  const d = e.relation.distance;
  const one = acc.one;
  let test: Test;
  const fixed = d.kind === 'compare' && d.unit !== 'months' && d.unit !== 'years';
  // An event's own `timestamp`: its instant is the one the state parsed once for every audience.
  const isTimestamp = one !== undefined && e.target.scope === 'event' && e.target.segments.length === 1 && e.target.segments[0] === 'timestamp';
  if (one && fixed && e.relation.direction === 'before' && e.relation.anchor === 'now' && (d.op === '<' || d.op === '<=')) {
    // The window test events use most: t <= now < t + d (or <=), without the generic bounds call.
    const span = d.amount * { seconds: 1e3, minutes: 6e4, hours: 36e5, days: 864e5, weeks: 6048e5, months: 0, years: 0 }[d.unit];
    const strict = d.op === '<';
    test = isTimestamp
      ? strict
        ? (s, i) => {
            const t = s.time(i);
            return t <= s.now && s.now < t + span;
          }
        : (s, i) => {
            const t = s.time(i);
            return t <= s.now && s.now <= t + span;
          }
      : (s, i) => {
          const t = parseInstant(one(s, i));
          return t <= s.now && (strict ? s.now < t + span : s.now <= t + span);
        };
  } else {
    test = one
      ? (s, i) => rel.holds(parseInstant(one(s, i)), s.now, s.today)
      : (s, i) => acc.some(s, i, (v) => rel.holds(parseInstant(v), s.now, s.today));
  }
  // With `one` (no array on the path) the test reads that one value, so next does too, and
  // allocates nothing: it runs per event of every timed audience on each evaluation.
  const next = isTimestamp
    ? (s: EvalState, i: number): number | undefined => rel.next(s.time(i), s.now)
    : one
    ? (s: EvalState, i: number): number | undefined => rel.next(parseInstant(one(s, i)), s.now)
    : (s: EvalState, i: number): number | undefined => {
        let best: number | undefined;
        acc.some(s, i, (v) => {
          best = earliest(best, rel.next(parseInstant(v), s.now));
          return false;
        });
        return best;
      };
  const details = (s: EvalState, i: number): Record<string, unknown> => {
    const vals = one ? [one(s, i)] : acc.all(s, i);
    const windows = vals
      .map((v) => parseInstant(v))
      .filter((t) => t === t)
      .map((t) => rel.window(t))
      .map((w) => ({ from: iso(w.from), until: iso(w.until) }));
    return one ? { value: vals[0] ?? null, holds: windows[0] ?? null } : { values: vals, holds: windows };
  };
  // Before now, `< N` / `<= N units before now` over the event's own timestamp holds from the
  // event's instant t to t + N units, increasing with t: the next change of an event that already
  // happened is that end, or none once it passed. Not for months and years: a calendar shift
  // clamps to the month's last day and keeps the time of day (Jan 30 23:00 + 1 month is after
  // Jan 31 10:00 + 1 month), so an older event can leave later.
  const pastMonotone = isTimestamp && fixed && e.relation.direction === 'before' && e.relation.anchor === 'now' && (d.op === '<' || d.op === '<=');
  return { expr: e, test, next, details, children: [], perEvent: false, ...(pastMonotone ? { pastMonotone: true as const } : {}) };
}

/** ISO text of an instant, or null for ±Infinity. */
export function iso(ms: number): string | null {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : null;
}
