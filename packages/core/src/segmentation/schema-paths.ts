/**
 * Resolves dotted paths against a class's union schema: the value type a path yields, where it
 * crosses arrays (comparisons then hold if any element matches), and every known path for
 * "did you mean" suggestions.
 */
import type { FieldDef, FieldType } from '../schema/types.js';
import { closest } from '../suggest.js';

/** The kinds of value the checker reasons about (integers are numbers, enums are strings). */
export type ValueType = 'string' | 'number' | 'boolean' | 'date' | 'object' | 'map';

/** A path the checker accepted, with what the compiler needs to read it. */
export interface ResolvedPath {
  segments: readonly string[];
  /** Value type of the leaf (after unwrapping arrays). */
  type: ValueType;
  /** The schema's own type of the leaf (e.g. `date` vs `date-time`, `integer`). */
  fieldType: FieldType;
  /** Allowed values when the leaf is an enum. */
  enumValues: readonly string[] | undefined;
  /**
   * Segment counts after which the value read so far is an array to iterate, ascending;
   * e.g. `[1]` for `productListItems.SKU`. Empty for plain paths.
   */
  arrayAfter: readonly number[];
}

/** Why a path did not resolve. */
export type PathProblem =
  | { kind: 'unknown'; at: number; suggestion: string | undefined }
  | { kind: 'not-an-object'; at: number; parentType: FieldType };

/** Event fields every experience event has even when a schema omits them. */
const IMPLICIT_EVENT_FIELDS: Record<string, FieldDef> = {
  _id: { type: 'string' },
  timestamp: { type: 'date-time' },
  eventType: { type: 'string' },
};

function valueType(t: FieldType): ValueType {
  switch (t) {
    case 'string':
    case 'enum':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'date':
    case 'date-time':
      return 'date';
    case 'object':
      return 'object';
    case 'array':
      return 'object';
    case 'map':
      return 'map';
  }
}

function own<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/** Adds the implicit `_id`, `timestamp`, `eventType` fields to an event root when missing. */
export function withImplicitEventFields(root: FieldDef): FieldDef {
  return { ...root, type: 'object', properties: { ...IMPLICIT_EVENT_FIELDS, ...(root.properties ?? {}) } };
}

/** Resolves `segments` under `root`; either the resolved path or the problem and where it starts. */
export function resolvePath(
  root: FieldDef,
  segments: readonly string[],
  knownPaths: () => readonly string[],
): { ok: true; path: ResolvedPath } | { ok: false; problem: PathProblem } {
  let def: FieldDef = root;
  const arrayAfter: number[] = [];
  for (let i = 0; i < segments.length; i++) {
    while (def.type === 'array' && def.items) {
      arrayAfter.push(i);
      def = def.items;
    }
    const seg = segments[i] ?? '';
    let child: FieldDef | undefined;
    if (def.type === 'object') child = own(def.properties, seg);
    else if (def.type === 'map') child = def.values ?? { type: 'string' };
    else return { ok: false, problem: { kind: 'not-an-object', at: i, parentType: def.type } };
    if (!child) {
      const written = segments.join('.');
      return { ok: false, problem: { kind: 'unknown', at: i, suggestion: closest(written, knownPaths()) } };
    }
    def = child;
  }
  while (def.type === 'array' && def.items) {
    arrayAfter.push(segments.length);
    def = def.items;
  }
  return {
    ok: true,
    path: { segments, type: valueType(def.type), fieldType: def.type, enumValues: def.enum, arrayAfter },
  };
}

/** Every path under `root` (objects and leaves, through arrays, not into map keys), capped. */
export function listPaths(root: FieldDef, limit = 5000): string[] {
  const out: string[] = [];
  const walk = (def: FieldDef, prefix: string, depth: number): void => {
    let d = def;
    while (d.type === 'array' && d.items) d = d.items;
    if (d.type !== 'object' || !d.properties || depth > 16) return;
    for (const [name, child] of Object.entries(d.properties)) {
      if (out.length >= limit) return;
      const path = prefix ? `${prefix}.${name}` : name;
      out.push(path);
      walk(child, path, depth + 1);
    }
  };
  walk(root, '', 0);
  return out;
}
