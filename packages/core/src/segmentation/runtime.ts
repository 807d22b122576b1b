/**
 * What compiled audiences run on: the evaluation context, the reusable per-query evaluation state
 * (event times parsed once per context, no allocation per evaluation) and own-property path
 * readers, so that no query path can reach `constructor`, `__proto__` or anything inherited.
 */
import type { PathExpr } from './ast.js';
import type { ResolvedPath } from './schema-paths.js';
import { hotRead } from './hot-leaves.js';
import { parseInstant, startOfDay } from './time.js';

/** Everything an audience is evaluated against. Pure data plus one callback; no clock but `now`. */
export interface AudienceContext {
  /** Merged profile attributes, plain JSON. */
  profile: Readonly<Record<string, unknown>>;
  /** The profile's experience events as plain XDM JSON, sorted by `timestamp` ascending. */
  events: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** The evaluation instant, epoch ms. */
  now: number;
  /** Current membership of another audience (for `inSegment`). */
  inSegment: (audienceId: string) => boolean;
  /** Optional precomputed `events[i].timestamp` as epoch ms (NaN when absent), e.g. from `eventTimesOf`. */
  eventTimes?: Float64Array;
}

/**
 * What `eventTimesOf` returns: the times plus whether they are non-decreasing, found once here
 * rather than by every audience on every evaluation. Treat it as read-only.
 */
class EventTimes extends Float64Array {
  sorted = false;
}

/** Parses every event's `timestamp` once; pass the result as `eventTimes` when evaluating many audiences. */
export function eventTimesOf(events: ReadonlyArray<Readonly<Record<string, unknown>>>): Float64Array {
  return eventTimesFrom(
    events.map((e) => (e !== undefined && Object.prototype.hasOwnProperty.call(e, 'timestamp') ? parseInstant(e['timestamp']) : NaN)),
  );
}

/**
 * Event times already known as epoch ms (stored events keep the time ingestion parsed from their
 * `timestamp`), in event order: as `eventTimesOf` would give, without parsing a string per event.
 */
export function eventTimesFrom(times: ArrayLike<number>): Float64Array {
  const out = new EventTimes(times.length);
  let sorted = true;
  let prev = -Infinity;
  for (let i = 0; i < times.length; i++) {
    const t = times[i]!;
    out[i] = t;
    if (!(t >= prev)) sorted = false;
    prev = t;
  }
  out.sorted = sorted;
  return out;
}

const enum Times {
  Unknown,
  Parsed,
  Given,
}

/** Mutable evaluation state, reused across evaluations of one compiled audience. */
export class EvalState {
  // Binding keeps the context itself and looks at nothing else: the events and their times are
  // checked on first use, so attribute-only audiences never touch them (each is a likely cache
  // miss per profile). One pointer store per evaluation instead of five, too (stores into this
  // long-lived object pay the GC write barrier); numbers and flags are stored in place.
  private ctx: AudienceContext = UNBOUND;
  /** Whether `ctx.events` is an array: 0 not yet checked, 1 yes, 2 no. */
  private eventsOk = 0;
  now = 0;
  /** Start of the UTC day of `now`. */
  today = 0;
  /** Where event times come from: the context's `eventTimes` (when long enough) or `scratch`; decided on first use. */
  private timesFrom = Times.Unknown;
  /** Whether event times are non-decreasing: 0 not yet known, 1 yes, 2 no. Checked only when asked. */
  private order = 0;
  private scratch = new Float64Array(16);

  bind(ctx: AudienceContext): this {
    this.ctx = ctx;
    this.eventsOk = 0;
    this.now = ctx.now;
    this.today = startOfDay(ctx.now);
    this.timesFrom = Times.Unknown;
    this.order = 0;
    return this;
  }

  get profile(): unknown {
    return this.ctx.profile;
  }

  /** The context's events, or none when they are not an array. */
  get events(): ReadonlyArray<unknown> {
    if (this.eventsOk === 0) this.eventsOk = Array.isArray(this.ctx.events) ? 1 : 2;
    return this.eventsOk === 1 ? this.ctx.events : NO_EVENTS;
  }

  get inSegment(): (audienceId: string) => boolean {
    return this.ctx.inSegment;
  }

  /** Epoch ms of event `i`'s timestamp, NaN when missing or malformed. */
  time(i: number): number {
    if (this.timesFrom === Times.Unknown) this.loadTimes();
    if (this.timesFrom === Times.Given) return (this.ctx.eventTimes as Float64Array)[i] ?? NaN;
    return this.scratch[i] ?? NaN;
  }

  /** True when event times are non-decreasing (no NaN): later events never come earlier. */
  get sorted(): boolean {
    if (this.order === 0) this.order = this.checkOrder();
    return this.order === 1;
  }

  private checkOrder(): number {
    if (this.timesFrom === Times.Unknown) this.loadTimes();
    const given = this.ctx.eventTimes;
    if (this.timesFrom === Times.Given && given instanceof EventTimes && given.length === this.events.length) return given.sorted ? 1 : 2;
    const n = this.events.length;
    let prev = -Infinity;
    for (let i = 0; i < n; i++) {
      const t = this.time(i);
      if (!(t >= prev)) return 2;
      prev = t;
    }
    return 1;
  }

  /** Uses the context's times when long enough, else parses every event's timestamp into the reusable scratch array. */
  private loadTimes(): void {
    const events = this.events;
    const n = events.length;
    const given = this.ctx.eventTimes;
    if (given !== undefined && given.length >= n) {
      this.timesFrom = Times.Given;
      return;
    }
    if (this.scratch.length < n) this.scratch = new Float64Array(Math.max(n, this.scratch.length * 2));
    const times = this.scratch;
    for (let i = 0; i < n; i++) times[i] = parseInstant(readKey(events[i], 'timestamp'));
    this.timesFrom = Times.Parsed;
  }
}

const NO_EVENTS: ReadonlyArray<unknown> = Object.freeze([]);
const UNBOUND: AudienceContext = { profile: {}, events: NO_EVENTS as AudienceContext['events'], now: 0, inSegment: () => false };

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The same text as an internalized string (V8's string table), i.e. the very string object a
 * literal property name or a JSON key is. Query paths and literals come from slicing the query
 * text, which yields fresh strings: used as a key (`o[k]`) such a string misses the inline cache
 * on every read (a string-table lookup each time), and compared with `===` it is compared
 * character by character. Internalized once at compile time, both become pointer checks.
 * Content is unchanged, so this cannot change any result.
 */
export function internalize(s: string): string {
  const k = Object.keys({ [s]: 0 })[0];
  return k === s ? k : s;
}

/** Own, non-array property `key` of `o`, or undefined. */
export function readKey(o: unknown, key: string): unknown {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  const v = (o as Record<string, unknown>)[key];
  return v !== undefined && hasOwn.call(o, key) ? v : undefined;
}

/** Reads one value for the path in the scope's record of state `s` (event `i` for event paths). */
export type ReadOne = (s: EvalState, i: number) => unknown;

/** How compiled leaves read a path. `one` exists for paths that cross no array. */
export interface Accessor {
  one: ReadOne | undefined;
  /** For plain paths of one to three safe keys: the keys, so leaves can inline the reads. */
  keys: readonly string[] | undefined;
  /** For paths crossing one array, all keys safe: the keys to the array (1–2) and inside each element (0–2). */
  arrayKeys?: { before: readonly string[]; after: readonly string[] } | undefined;
  scope: PathExpr['scope'];
  /** Calls `visit` on each leaf value (arrays flattened); true as soon as one visit returns true. */
  some: (s: EvalState, i: number, visit: (v: unknown) => boolean) => boolean;
  /** Every leaf value, for explanations. */
  all: (s: EvalState, i: number) => unknown[];
}

/**
 * Whether a plain read `o[key]` on JSON data (objects and arrays with the standard prototypes) can
 * only ever find an own property: true unless the key is inherited from Object.prototype or
 * Array.prototype (`constructor`, `__proto__`, `toString`, `map`…), an array index or `length`.
 * Such keys are read through `hasOwnProperty`; all others skip that check on the hot path.
 */
export function isSafeKey(key: string): boolean {
  return !(key in Object.prototype) && !(key in Array.prototype) && key !== '__proto__' && key !== 'length' && !/^\d+$/.test(key);
}

type Obj = Record<string, unknown>;

function plainReader(keys: readonly string[]): (o: unknown) => unknown {
  const [k0, k1, k2] = keys;
  if (keys.every(isSafeKey)) {
    if (keys.length === 1 && k0 !== undefined) {
      return (o) => (typeof o === 'object' && o !== null ? (o as Obj)[k0] : undefined);
    }
    if (keys.length === 2 && k0 !== undefined && k1 !== undefined) {
      return (o) => {
        if (typeof o !== 'object' || o === null) return undefined;
        const a = (o as Obj)[k0];
        return typeof a === 'object' && a !== null ? (a as Obj)[k1] : undefined;
      };
    }
    if (keys.length === 3 && k0 !== undefined && k1 !== undefined && k2 !== undefined) {
      return (o) => {
        if (typeof o !== 'object' || o === null) return undefined;
        const a = (o as Obj)[k0];
        if (typeof a !== 'object' || a === null) return undefined;
        const b = (a as Obj)[k1];
        return typeof b === 'object' && b !== null ? (b as Obj)[k2] : undefined;
      };
    }
  }
  return (o) => {
    let v = o;
    for (let k = 0; k < keys.length; k++) {
      v = readKey(v, keys[k] as string);
      if (v === undefined) return undefined;
    }
    return v;
  };
}

/** Builds the accessor of a checked path (with the event `timestamp` served from parsed times). */
export function accessorFor(path0: PathExpr, resolved: ResolvedPath): Accessor {
  const path = { ...path0, segments: path0.segments.map(internalize) };
  const root: ReadOne = path.scope === 'profile' ? (s) => s.profile : (s, i) => s.events[i];
  if (path.scope === 'event' && path.segments.length === 1 && path.segments[0] === 'timestamp' && resolved.arrayAfter.length === 0) {
    const one: ReadOne = (s, i) => {
      const t = s.time(i);
      return t === t ? t : undefined;
    };
    return { one, keys: undefined, scope: 'event', some: (s, i, visit) => visit(one(s, i)), all: (s, i) => [one(s, i)] };
  }
  // Split the path into plain runs separated by array crossings.
  const runs: Array<(o: unknown) => unknown> = [];
  let from = 0;
  for (const cut of resolved.arrayAfter) {
    runs.push(from === cut ? (o) => o : plainReader(path.segments.slice(from, cut)));
    from = cut;
  }
  const lastRun = from === path.segments.length ? (o: unknown) => o : plainReader(path.segments.slice(from));
  if (runs.length === 0) {
    const read = lastRun;
    const keys = path.segments.length <= 3 && path.segments.every(isSafeKey) ? path.segments : undefined;
    // A read of its own per path where possible (a shared reader's key loads go megamorphic).
    const one: ReadOne =
      (keys && hotRead(keys, path.scope === 'event')) ?? (path.scope === 'profile' ? (s) => read(s.profile) : (s, i) => read(s.events[i]));
    return { one, keys, scope: path.scope, some: (s, i, visit) => visit(one(s, i)), all: (s, i) => [one(s, i)] };
  }
  const [run0] = runs;
  if (runs.length === 1 && run0) {
    const cut = resolved.arrayAfter[0] ?? 0;
    const before = path.segments.slice(0, cut);
    const after = path.segments.slice(cut);
    const arrayKeys =
      before.length >= 1 && before.length <= 2 && after.length <= 2 && path.segments.every(isSafeKey) ? { before, after } : undefined;
    // One array crossing (`productListItems.SKU`), the usual shape: a flat loop, no recursion.
    const each = (o: unknown, visit: (v: unknown) => boolean): boolean => {
      const arr = run0(o);
      if (!Array.isArray(arr)) return false;
      for (let k = 0; k < arr.length; k++) if (visit(lastRun(arr[k]))) return true;
      return false;
    };
    const some: Accessor['some'] = path.scope === 'profile' ? (s, _i, visit) => each(s.profile, visit) : (s, i, visit) => each(s.events[i], visit);
    return {
      one: undefined,
      keys: undefined,
      arrayKeys,
      scope: path.scope,
      some,
      all: (s, i) => {
        const out: unknown[] = [];
        some(s, i, (v) => {
          if (v !== undefined) out.push(v);
          return false;
        });
        return out;
      },
    };
  }
  const walk = (v: unknown, depth: number, visit: (v: unknown) => boolean): boolean => {
    const run = runs[depth];
    if (run === undefined) return visit(lastRun(v));
    const arr = run(v);
    if (!Array.isArray(arr)) return false;
    for (const el of arr) if (walk(el, depth + 1, visit)) return true;
    return false;
  };
  return {
    one: undefined,
    keys: undefined,
    scope: path.scope,
    some: (s, i, visit) => walk(root(s, i), 0, visit),
    all: (s, i) => {
      const out: unknown[] = [];
      walk(root(s, i), 0, (v) => {
        if (v !== undefined) out.push(v);
        return false;
      });
      return out;
    },
  };
}
