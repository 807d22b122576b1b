/**
 * Dot/bracket paths (`identityMap.email[0].id`): parsing and safe assignment into nested plain
 * objects and arrays. Shared by the CSV parser (header cells and mappings name target fields so).
 */
import { AudientError } from '@audient/core';

/** One step of a path: an object key or an array index. */
export type PathSegment = { key: string } | { index: number };

/** Largest array index a path may name, so `a[99999999]` cannot allocate a huge array. */
export const MAX_ARRAY_INDEX = 1000;

/** Keys that would reach an object's prototype; refused anywhere in a path. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

// A key is anything but the path punctuation, whitespace and control characters.
const KEY_RE = /^[^.[\]\s\u0000-\u001f]+/u;
const INDEX_RE = /^\[(0|[1-9][0-9]*)\]/;

/** A path as the caller gave it: text, or segments formatted only when an error needs it. */
type AnyPath = string | readonly PathSegment[];

const pathText = (path: AnyPath): string => (typeof path === 'string' ? path : formatPath(path));

function syntaxError(given: AnyPath, message: string): AudientError {
  const path = pathText(given);
  return new AudientError('BAD_REQUEST', `invalid path ${JSON.stringify(path)}: ${message}`, [
    { path, reason: 'path-syntax', message },
  ]);
}

/**
 * Parses `a.b[2].c` into segments. Throws `AudientError('BAD_REQUEST')` with reason `path-syntax`
 * on empty keys, stray punctuation, prototype keys or indexes above {@link MAX_ARRAY_INDEX}.
 */
export function parsePath(path: string): PathSegment[] {
  const segments: PathSegment[] = [];
  let rest = path;
  let expectKey = true;
  while (rest.length > 0) {
    if (expectKey) {
      const m = KEY_RE.exec(rest);
      if (!m) throw syntaxError(path, `expected a field name at offset ${path.length - rest.length}`);
      if (FORBIDDEN_KEYS.has(m[0])) throw syntaxError(path, `segment ${JSON.stringify(m[0])} is not allowed`);
      segments.push({ key: m[0] });
      rest = rest.slice(m[0].length);
      expectKey = false;
    } else if (rest.startsWith('.')) {
      rest = rest.slice(1);
      expectKey = true;
      if (rest.length === 0) throw syntaxError(path, 'path ends with "."');
    } else {
      const m = INDEX_RE.exec(rest);
      if (!m) throw syntaxError(path, `expected ".", or "[n]" at offset ${path.length - rest.length}`);
      const index = Number(m[1]);
      if (index > MAX_ARRAY_INDEX) throw syntaxError(path, `array index ${index} is above ${MAX_ARRAY_INDEX}`);
      segments.push({ index });
      rest = rest.slice(m[0].length);
    }
  }
  if (segments.length === 0) throw syntaxError(path, 'path is empty');
  return segments;
}

/** Writes segments back as a path string (the inverse of {@link parsePath}). */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const seg of segments) {
    if ('index' in seg) out += `[${seg.index}]`;
    else out += out ? `.${seg.key}` : seg.key;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Sets `value` at `path` inside `target`, creating objects for keys and arrays for indexes on the
 * way. Only own properties are followed, so inherited members (`toString`) are never reached.
 * Throws `AudientError('BAD_REQUEST')` when the path is invalid or crosses a value of another kind
 * (e.g. `a.b` where `a` is already a string or an array).
 */
export function setPath(target: Record<string, unknown>, path: AnyPath, value: unknown): void {
  const segments = typeof path === 'string' ? parsePath(path) : path;
  let cur: Record<string, unknown> | unknown[] = target;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as PathSegment;
    const next = segments[i + 1];
    const last = next === undefined;
    if ('index' in seg) {
      if (!Array.isArray(cur)) throw conflict(path, segments, i);
      if (seg.index > MAX_ARRAY_INDEX) throw syntaxError(path, `array index ${seg.index} is above ${MAX_ARRAY_INDEX}`);
      if (last) {
        cur[seg.index] = value;
        return;
      }
      cur = descend(cur[seg.index], next, (fresh) => (cur as unknown[])[seg.index] = fresh, path, segments, i);
    } else {
      if (Array.isArray(cur)) throw conflict(path, segments, i);
      if (FORBIDDEN_KEYS.has(seg.key)) throw syntaxError(path, `segment ${JSON.stringify(seg.key)} is not allowed`);
      const obj: Record<string, unknown> = cur;
      if (last) {
        obj[seg.key] = value;
        return;
      }
      const existing = Object.hasOwn(obj, seg.key) ? obj[seg.key] : undefined;
      cur = descend(existing, next, (fresh) => (obj[seg.key] = fresh), path, segments, i);
    }
  }
}

/** Returns the container to step into, creating it when absent; refuses one of the wrong kind. */
function descend(
  existing: unknown,
  next: PathSegment,
  store: (fresh: Record<string, unknown> | unknown[]) => void,
  path: AnyPath,
  segments: readonly PathSegment[],
  i: number,
): Record<string, unknown> | unknown[] {
  const wantArray = 'index' in next;
  if (existing === undefined) {
    const fresh: Record<string, unknown> | unknown[] = wantArray ? [] : {};
    store(fresh);
    return fresh;
  }
  if (wantArray ? Array.isArray(existing) : isPlainObject(existing)) {
    return existing as Record<string, unknown> | unknown[];
  }
  throw conflict(path, segments, i + 1);
}

function conflict(path: AnyPath, segments: readonly PathSegment[], upTo: number): AudientError {
  const shown = pathText(path);
  const at = formatPath(segments.slice(0, upTo)) || '(root)';
  const message = `cannot set ${JSON.stringify(shown)}: ${JSON.stringify(at)} already holds a value of another kind`;
  return new AudientError('BAD_REQUEST', message, [{ path: shown, reason: 'path-conflict', message }]);
}
