/**
 * The CSV header: which schema field each column fills (from dot paths in the header or from a
 * mapping), checked once before any row, and how a cell becomes a typed value.
 */
import { AudientError, fieldAt, type ErrorDetail, type FieldDef } from '@audient/core';
import { formatPath, parsePath, type PathSegment } from './set-path.js';

/**
 * Maps a CSV file whose header holds source column names (e.g. `Email`, `First Name`) to schema
 * paths. Without a mapping, header cells must be the dot paths themselves.
 */
export interface CsvMapping {
  /** Source column name (as in the header, surrounding spaces ignored) → target dot path. */
  columns: Record<string, string>;
  /** Target dot path → value set on every record, e.g. `{ "loyalty.program": "gold-club" }`. */
  constants?: Record<string, unknown>;
  /** Drop header columns the mapping does not name, instead of refusing the file. */
  ignoreUnmapped?: boolean;
}

/** Where one column's cells go. */
export interface ColumnTarget {
  path: string;
  segments: PathSegment[];
  /** The schema field at `path`; undefined for paths the schema lacks (kept as text for the validator). */
  field: FieldDef | undefined;
}

/** One column of the file: its header cell and its target, or none when the mapping ignores it. */
export interface ColumnPlan {
  name: string;
  target?: ColumnTarget;
}

/** A constant set on every record. */
export interface ConstantPlan {
  segments: PathSegment[];
  value: unknown;
}

/** The resolved header: column targets in file order plus constants. */
export interface CsvPlan {
  columns: ColumnPlan[];
  constants: ConstantPlan[];
}

/** Field definition at a path with array indexes (`productListItems[1].SKU`), or undefined. */
export function fieldAtSegments(root: FieldDef, segments: readonly PathSegment[]): FieldDef | undefined {
  let cur: FieldDef | undefined = root;
  for (const seg of segments) {
    if (!cur) return undefined;
    if ('index' in seg) cur = cur.type === 'array' ? cur.items : undefined;
    else cur = fieldAt(cur, [seg.key]);
  }
  return cur;
}

interface TrieNode {
  label?: string;
  firstLabel: string;
  keys?: Map<string, TrieNode>;
  indexes?: Map<number, TrieNode>;
}

/**
 * Detects targets that cannot all be set on one record: the same path twice, a path inside
 * another (`a.b` and `a.b.c`), or one place used both as object and as array (`a.b`, `a[0]`).
 */
class TargetTrie {
  private readonly root: TrieNode = { firstLabel: '' };

  /** Adds a target; returns the label of the target it clashes with, if any. */
  insert(segments: readonly PathSegment[], label: string): string | undefined {
    let node = this.root;
    for (const seg of segments) {
      if (node.label !== undefined) return node.label;
      let child: TrieNode | undefined;
      if ('index' in seg) {
        if (node.keys) return node.firstLabel;
        node.indexes ??= new Map();
        child = node.indexes.get(seg.index);
        if (!child) node.indexes.set(seg.index, (child = { firstLabel: label }));
      } else {
        if (node.indexes) return node.firstLabel;
        node.keys ??= new Map();
        child = node.keys.get(seg.key);
        if (!child) node.keys.set(seg.key, (child = { firstLabel: label }));
      }
      node = child;
    }
    if (node.label !== undefined || node.keys || node.indexes) return node.label ?? node.firstLabel;
    node.label = label;
    return undefined;
  }
}

function pathProblem(name: string, label: string, err: unknown): ErrorDetail {
  const message = err instanceof AudientError ? (err.details[0]?.message ?? err.message) : String(err);
  return { path: name, reason: 'path-syntax', message: `${label}: ${message}` };
}

/** "(and 2 more problems)" when a list has more than the item shown. */
export function andMore(count: number, noun: string): string {
  if (count <= 1) return '';
  return ` (and ${count - 1} more ${noun}${count - 1 === 1 ? '' : 's'})`;
}

/**
 * Resolves the header row against the schema (and the mapping, if any). Throws
 * `AudientError('MALFORMED_CSV')` listing every problem: duplicate columns, invalid paths,
 * clashing targets, columns the mapping does not name, mapped columns the file lacks.
 */
export function planColumns(header: readonly string[], root: FieldDef, mapping?: CsvMapping): CsvPlan {
  const details: ErrorDetail[] = [];
  const trie = new TargetTrie();
  const seen = new Set<string>();
  const columns: ColumnPlan[] = [];
  const constants: ConstantPlan[] = [];

  const target = (name: string, label: string, path: string): ColumnTarget | undefined => {
    let segments: PathSegment[];
    try {
      segments = parsePath(path);
    } catch (err) {
      details.push(pathProblem(name, label, err));
      return undefined;
    }
    const clash = trie.insert(segments, label);
    if (clash !== undefined) {
      details.push({
        path: name,
        reason: 'path-conflict',
        message: `${label} (${formatPath(segments)}) clashes with ${clash}: both cannot be set on one record`,
      });
    }
    return { path: formatPath(segments), segments, field: fieldAtSegments(root, segments) };
  };

  for (const [path, value] of Object.entries(mapping?.constants ?? {})) {
    const t = target(path, `constant ${JSON.stringify(path)}`, path);
    if (t) constants.push({ segments: t.segments, value });
  }
  const mapped = new Map(Object.entries(mapping?.columns ?? {}).map(([name, path]) => [name.trim(), path]));
  const unmapped: string[] = [];
  header.forEach((cell, i) => {
    const name = cell.trim();
    if (name === '') {
      details.push({ path: `column ${i + 1}`, reason: 'empty-header', message: `column ${i + 1} has an empty header` });
      columns.push({ name });
      return;
    }
    if (seen.has(name)) {
      details.push({ path: name, reason: 'duplicate-column', message: `column ${JSON.stringify(name)} appears more than once` });
      columns.push({ name });
      return;
    }
    seen.add(name);
    if (!mapping) {
      const t = target(name, `column ${JSON.stringify(name)}`, name);
      columns.push(t ? { name, target: t } : { name });
    } else if (mapped.has(name)) {
      const t = target(name, `column ${JSON.stringify(name)}`, mapped.get(name) as string);
      columns.push(t ? { name, target: t } : { name });
    } else {
      if (!mapping.ignoreUnmapped) unmapped.push(name);
      columns.push({ name });
    }
  });
  for (const name of unmapped) {
    details.push({
      path: name,
      reason: 'unmapped-column',
      message: `column ${JSON.stringify(name)} is not in the mapping (map it, or set ignoreUnmapped)`,
    });
  }
  for (const name of mapped.keys()) {
    if (!seen.has(name)) {
      details.push({ path: name, reason: 'missing-column', message: `mapped column ${JSON.stringify(name)} is not in the file's header` });
    }
  }
  if (details.length > 0) {
    const first = details[0] as ErrorDetail;
    throw new AudientError('MALFORMED_CSV', `invalid CSV header: ${first.message}${andMore(details.length, 'problem')}`, details);
  }
  return { columns, constants };
}

/** A converted cell: absent (empty), a value, or what was expected instead. */
export type CellResult = { absent: true } | { absent?: false; value: unknown } | { absent?: false; expected: string };

const INTEGER_RE = /^[+-]?[0-9]+$/;
const NUMBER_RE = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ['true', true], ['false', false], ['1', true], ['0', false], ['yes', true], ['no', false],
]);

/**
 * Converts one cell by the type of its schema field. Numbers and booleans are parsed strictly
 * (`12abc` is refused, not read as 12); text types stay strings for the validator to check.
 */
export function convertCell(cell: string, field: FieldDef | undefined): CellResult {
  if (cell === '') return { absent: true };
  if (!field) return { value: cell };
  const text = cell.trim();
  switch (field.type) {
    case 'integer': {
      if (text === '') return { absent: true };
      const n = Number(text);
      return INTEGER_RE.test(text) && Number.isSafeInteger(n) ? { value: n } : { expected: 'an integer' };
    }
    case 'number': {
      if (text === '') return { absent: true };
      const n = Number(text);
      return NUMBER_RE.test(text) && Number.isFinite(n) ? { value: n } : { expected: 'a number' };
    }
    case 'boolean': {
      if (text === '') return { absent: true };
      const b = BOOLEANS.get(text.toLowerCase());
      return b === undefined ? { expected: 'a boolean (true/false, yes/no, 1/0)' } : { value: b };
    }
    case 'string':
    case 'date':
    case 'date-time':
    case 'enum':
    case 'object':
    case 'array':
    case 'map':
      return { value: cell };
    default: {
      const never: never = field.type;
      return { value: never };
    }
  }
}
