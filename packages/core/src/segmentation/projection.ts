/**
 * The parts of an event that a set of audiences reads. A profile's events kept in memory for
 * evaluation (the engine's hot profile views) need only those: a web page view of a kilobyte
 * whose audiences test its `eventType` and `web.webPageDetails.siteSection` is kept as an object
 * of those two fields and its `timestamp`, a fraction of the memory.
 *
 * The projection is taken from the queries' syntax, not from the schemas: every path an event
 * clause names (comparisons, lists, patterns, `exists`, string tests, time relations, aggregate
 * fields, a chain's timestamp field) is kept, down to its last key. Where a path meets anything
 * but a plain object in the data (an array, a string, null), the value is kept whole from there,
 * so whatever the evaluation does with arrays and mistyped data, it finds what it found in the
 * full event. `timestamp` is kept unless the projection is told that the events will always be
 * evaluated with their parsed times (`timesGiven`): an evaluation without them reads it. With
 * them, a clause reading the event's `timestamp` itself (a time relation, a chain's time) is
 * served from the parsed times (accessorFor in runtime.ts: every event schema has `timestamp`, a
 * date-time), so it is not kept for those either.
 *
 * Kept values are shared with the event, not copied: strings `JSON.parse` makes are strings of
 * their own (not slices of the parsed text), so a kept value keeps nothing else alive.
 *
 * Projected events of equal content are one object: without their timestamp, the page views a
 * profile keeps are mostly a few distinct bodies (an event type, a site section), and a body of
 * its own per event was, with its nested objects and its own copy of each string, most of the
 * objects a full garbage collection of the engine's hot profiles had to mark (3.9M objects
 * after the edge benchmark's closed rounds; 2.8M with sharing). A projection keeps up to
 * MAX_SHARED such bodies and starts over when full (high-cardinality fields then share little,
 * and cost a lookup). The shared bodies are read only: nothing may change a projected event in
 * place.
 */
import type { Expr, PathExpr, QueryAst } from './ast.js';
import { walkExpr } from './dependencies.js';
import { isPlainObject } from '../json.js';

/** Per key, what to keep of its value: `true`, all of it; a tree, only those keys of it. */
type Tree = Map<string, Tree | true>;

/** What `projectEvent` keeps of each event (build with `eventProjection`). */
export interface EventProjection {
  /** Undefined when some clause needs the whole event: events are then kept as they are. */
  readonly tree: Tree | undefined;
  /** Equal for projections that keep the same parts (the key order aside). */
  readonly key: string;
  /** Projected events by their content (see shareKey), for sharing equal ones. */
  readonly shared: Map<string, unknown>;
  /**
   * How many projected events `shared` answered so far: compared around a `projectEvent` call, it
   * tells a body shared with earlier events (whose memory they already account for) from a new one.
   */
  hits: number;
}

/**
 * The distinct projected events a projection keeps for sharing before it starts over: a few
 * dozen are the rule (event types by site sections); the bound keeps a projection of
 * high-cardinality fields under ~0.5 MB (keys and bodies), and the engine keeps a few projections.
 */
const MAX_SHARED = 1024;
/** Longer projected events are not shared (a long key costs more than the copy saves). */
const MAX_SHARE_KEY = 256;

/** The event paths one expression node reads (leaves read their `target`). */
function eventPaths(e: Expr): PathExpr[] {
  const operands = e.kind === 'compare' ? [e.left, e.right] : e.kind === 'aggregate' ? [e.field] : e.kind === 'chain' ? [e.timestampField] : 'target' in e ? [e.target] : [];
  return operands.filter((o): o is PathExpr => o?.kind === 'path' && o.scope === 'event');
}

function treeKey(t: Tree): string {
  return `{${[...t.keys()]
    .sort()
    .map((k) => {
      const c = t.get(k)!;
      return `${JSON.stringify(k)}:${c === true ? '*' : treeKey(c)}`;
    })
    .join(',')}}`;
}

/**
 * The parts of events that the queries read (see the module's comment). With `timesGiven`, the
 * events are always evaluated with their parsed times (`eventTimes`), so `timestamp` is kept only
 * if a query reads it.
 */
export function eventProjection(queries: Iterable<QueryAst | { ast: QueryAst }>, opts: { timesGiven?: boolean } = {}): EventProjection {
  let tree: Tree | undefined = new Map(opts.timesGiven ? [] : [['timestamp', true]]);
  for (const q of queries) {
    const root = 'root' in q ? q.root : q.ast.root;
    walkExpr(root, (e) => {
      for (const p of eventPaths(e)) {
        if (!tree) return;
        if (opts.timesGiven && p.segments.length === 1 && p.segments[0] === 'timestamp') continue;
        if (p.segments.length === 0) {
          tree = undefined;
          return;
        }
        let node: Tree = tree;
        for (let k = 0; k < p.segments.length; k++) {
          const key = p.segments[k]!;
          const last = k === p.segments.length - 1;
          const child = node.get(key);
          if (child === true) break;
          if (last) node.set(key, true);
          else if (child) node = child;
          else {
            const next: Tree = new Map();
            node.set(key, next);
            node = next;
          }
        }
      }
    });
  }
  return { tree, key: tree ? treeKey(tree) : '*', shared: new Map(), hits: 0 };
}

const hasOwn = Object.prototype.hasOwnProperty;

function projectValue(v: unknown, tree: Tree): unknown {
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [key, child] of tree) {
    if (!hasOwn.call(v, key)) continue;
    const value = child === true ? v[key] : projectValue(v[key], child);
    // An own `__proto__` key (JSON.parse makes one) stays an own property, as in the event.
    if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  return out;
}

/**
 * What identifies a JSON value's content, key order included (two values with one key are
 * interchangeable in every evaluation); undefined past MAX_SHARE_KEY characters or for anything
 * but JSON data (plain objects, dense arrays, strings, finite numbers, booleans, null). Unlike
 * JSON.stringify, it tells -0 from 0.
 */
function shareKey(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return v.length > MAX_SHARE_KEY ? undefined : JSON.stringify(v);
    case 'number':
      return Object.is(v, -0) ? '-0' : Number.isFinite(v) ? String(v) : undefined;
    case 'boolean':
      return String(v);
    case 'object': {
      if (v === null) return 'null';
      const array = Array.isArray(v);
      if (!array && Object.getPrototypeOf(v) !== Object.prototype) return undefined;
      const keys = array ? undefined : Object.keys(v);
      const n = keys ? keys.length : (v as unknown[]).length;
      let out = array ? '[' : '{';
      for (let i = 0; i < n; i++) {
        if (array && !(i in v)) return undefined;
        const part = shareKey(keys ? (v as Record<string, unknown>)[keys[i]!] : (v as unknown[])[i]);
        if (part === undefined) return undefined;
        out += `${i ? ',' : ''}${keys ? `${JSON.stringify(keys[i])}:` : ''}${part}`;
        if (out.length > MAX_SHARE_KEY) return undefined;
      }
      return out + (array ? ']' : '}');
    }
    default:
      return undefined;
  }
}

/**
 * The parts of `event` the projection keeps, as an object sharing their values (the event
 * itself when the projection keeps everything): one object for projected events of equal
 * content (see the module's comment), never to be changed. Evaluating the projected events of
 * any of the projection's queries gives what evaluating the events would.
 */
export function projectEvent<T>(event: T, projection: EventProjection): T {
  if (!projection.tree) return event;
  const out = projectValue(event, projection.tree);
  const key = shareKey(out);
  if (key === undefined) return out as T;
  const shared = projection.shared.get(key);
  if (shared !== undefined) {
    projection.hits++;
    return shared as T;
  }
  if (projection.shared.size >= MAX_SHARED) projection.shared.clear();
  projection.shared.set(key, out);
  return out as T;
}

/** A character V8 cannot store in a one-byte string (past Latin-1): the string then takes two bytes a character. */
const TWO_BYTE = /[^\u0000-\u00ff]/;

/**
 * An estimate of the heap a JSON value takes (V8, 64-bit, strings not shared): for bounding the
 * memory of values kept, not an exact figure. A string takes one byte a character, or two when
 * one of its characters is past Latin-1 (a Japanese page name, an emoji), as V8 stores it.
 */
export function approxJsonBytes(v: unknown): number {
  switch (typeof v) {
    case 'string':
      return 16 + ((v.length * (TWO_BYTE.test(v) ? 2 : 1) + 7) & ~7);
    case 'number':
      return Number.isInteger(v) && Math.abs(v) < 2 ** 30 ? 0 : 16;
    case 'object': {
      if (v === null) return 0;
      if (Array.isArray(v)) {
        let n = 32 + 8 * v.length;
        for (const x of v) n += approxJsonBytes(x);
        return n;
      }
      let n = 24;
      for (const k in v) if (hasOwn.call(v, k)) n += 8 + approxJsonBytes((v as Record<string, unknown>)[k]);
      return n;
    }
    default:
      return 0;
  }
}
