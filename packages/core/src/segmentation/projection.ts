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
 * full event. `timestamp` is always kept: an evaluation of events given without their parsed
 * times reads it.
 *
 * Kept values are shared with the event, not copied: strings `JSON.parse` makes are strings of
 * their own (not slices of the parsed text), so a kept value keeps nothing else alive.
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
}

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

/** The parts of events that the queries read (see the module's comment). */
export function eventProjection(queries: Iterable<QueryAst | { ast: QueryAst }>): EventProjection {
  let tree: Tree | undefined = new Map([['timestamp', true]]);
  for (const q of queries) {
    const root = 'root' in q ? q.root : q.ast.root;
    walkExpr(root, (e) => {
      for (const p of eventPaths(e)) {
        if (!tree) return;
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
  return { tree, key: tree ? treeKey(tree) : '*' };
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
 * The parts of `event` the projection keeps, as a new object sharing their values (the event
 * itself when the projection keeps everything). Evaluating the projected events of any of the
 * projection's queries gives what evaluating the events would.
 */
export function projectEvent<T>(event: T, projection: EventProjection): T {
  return projection.tree ? (projectValue(event, projection.tree) as T) : event;
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
