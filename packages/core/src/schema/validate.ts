/**
 * Validates one record against a resolved schema and reports every problem precisely: the path,
 * what was expected and what came. Unknown fields are errors (with a "did you mean").
 */
import { describeValue, type ErrorDetail } from '../errors.js';
import { closest } from '../suggest.js';
import type { FieldDef } from './types.js';
import { isPlainObject } from '../json.js';

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
const MAX_DETAILS = 20;
const regexCache = new WeakMap<FieldDef, RegExp>();

/** True when `s` is a real calendar date `YYYY-MM-DD`. */
export function isValidDate(s: string): boolean {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

/** True when `s` is an RFC 3339 date-time with a time zone. */
export function isValidDateTime(s: string): boolean {
  return DATE_TIME_RE.test(s) && !Number.isNaN(Date.parse(s)) && isValidDate(s.slice(0, 10));
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

class Collector {
  readonly details: ErrorDetail[] = [];
  full(): boolean {
    return this.details.length >= MAX_DETAILS;
  }
  add(path: string, reason: string, message: string, expected?: string, received?: string): void {
    if (this.full()) return;
    this.details.push({
      path,
      reason,
      message,
      ...(expected !== undefined ? { expected } : {}),
      ...(received !== undefined ? { received } : {}),
    });
  }
}

function expectedOf(def: FieldDef): string {
  if (def.type === 'enum') return `one of ${(def.enum ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
  if (def.type === 'date') return 'date YYYY-MM-DD';
  if (def.type === 'date-time') return 'date-time with time zone, e.g. 2024-05-25T21:24:39Z';
  return def.type;
}

function checkString(def: FieldDef, v: string, path: string, c: Collector): void {
  if (def.minLength !== undefined && v.length < def.minLength) {
    c.add(path, 'minLength', `must be at least ${def.minLength} characters`, `length >= ${def.minLength}`, `length ${v.length}`);
  }
  if (def.maxLength !== undefined && v.length > def.maxLength) {
    c.add(path, 'maxLength', `must be at most ${def.maxLength} characters`, `length <= ${def.maxLength}`, `length ${v.length}`);
  }
  if (def.pattern !== undefined) {
    let re = regexCache.get(def);
    if (!re) {
      re = new RegExp(def.pattern);
      regexCache.set(def, re);
    }
    if (!re.test(v)) c.add(path, 'pattern', `does not match ${def.pattern}`, `pattern ${def.pattern}`, describeValue(v));
  }
}

function checkNumber(def: FieldDef, v: number, path: string, c: Collector): void {
  if (def.minimum !== undefined && v < def.minimum) c.add(path, 'minimum', `must be >= ${def.minimum}`, `>= ${def.minimum}`, String(v));
  if (def.maximum !== undefined && v > def.maximum) c.add(path, 'maximum', `must be <= ${def.maximum}`, `<= ${def.maximum}`, String(v));
}

function wrongType(def: FieldDef, v: unknown, path: string, c: Collector): void {
  c.add(path, 'type', `expected ${expectedOf(def)}, got ${describeValue(v)}`, expectedOf(def), describeValue(v));
}

/**
 * Checks `v` at `parent`.`key` (`key` undefined: `v` is at `parent` itself). The path string is
 * only built where it is needed: on a problem, or to descend into a container.
 */
function checkValue(def: FieldDef, v: unknown, parent: string, key: string | undefined, c: Collector): void {
  if (c.full()) return;
  switch (def.type) {
    case 'string':
      if (typeof v !== 'string') return wrongType(def, v, at(parent, key), c);
      if (def.minLength !== undefined || def.maxLength !== undefined || def.pattern !== undefined) checkString(def, v, at(parent, key), c);
      return;
    case 'integer':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return wrongType(def, v, at(parent, key), c);
      if (def.minimum !== undefined || def.maximum !== undefined) checkNumber(def, v, at(parent, key), c);
      return;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) return wrongType(def, v, at(parent, key), c);
      if (def.minimum !== undefined || def.maximum !== undefined) checkNumber(def, v, at(parent, key), c);
      return;
    case 'boolean':
      if (typeof v !== 'boolean') return wrongType(def, v, at(parent, key), c);
      return;
    case 'date':
      if (typeof v !== 'string' || !isValidDate(v)) return wrongType(def, v, at(parent, key), c);
      return;
    case 'date-time':
      if (typeof v !== 'string' || !isValidDateTime(v)) return wrongType(def, v, at(parent, key), c);
      return;
    case 'enum':
      if (typeof v !== 'string' || !(def.enum ?? []).includes(v)) {
        c.add(at(parent, key), 'enum', `expected ${expectedOf(def)}, got ${describeValue(v)}`, expectedOf(def), describeValue(v));
      }
      return;
    case 'object':
      if (!isPlainObject(v)) return wrongType(def, v, at(parent, key), c);
      return checkObject(def, v, at(parent, key), c);
    case 'array': {
      if (!Array.isArray(v)) return wrongType(def, v, at(parent, key), c);
      if (def.items) {
        const path = at(parent, key);
        for (let i = 0; i < v.length && !c.full(); i++) checkValue(def.items, v[i], `${path}[${i}]`, undefined, c);
      }
      return;
    }
    case 'map': {
      if (!isPlainObject(v)) return wrongType(def, v, at(parent, key), c);
      if (def.values) {
        const path = at(parent, key);
        for (const k of Object.keys(v)) {
          if (k.length === 0) c.add(path, 'key', 'map keys must not be empty');
          else checkValue(def.values, v[k], path, k, c);
        }
      }
      return;
    }
    default: {
      const never: never = def.type;
      throw new Error(`unhandled field type ${String(never)}`);
    }
  }
}

function at(parent: string, key: string | undefined): string {
  return key === undefined ? parent : join(parent, key);
}

/** Required property names of an object definition, computed once per definition. */
const requiredCache = new WeakMap<FieldDef, readonly string[]>();
function requiredOf(def: FieldDef): readonly string[] {
  let r = requiredCache.get(def);
  if (!r) {
    const props = def.properties ?? {};
    r = Object.keys(props).filter((k) => props[k]!.required);
    requiredCache.set(def, r);
  }
  return r;
}

const hasOwn = Object.prototype.hasOwnProperty;
const NO_PROPS: Record<string, FieldDef> = {};

function checkObject(def: FieldDef, v: Record<string, unknown>, path: string, c: Collector): void {
  const props = def.properties ?? NO_PROPS;
  for (const key of Object.keys(v)) {
    const child = hasOwn.call(props, key) ? props[key] : undefined;
    const value = v[key];
    if (!child) {
      const guess = closest(key, Object.keys(props));
      c.add(
        join(path, key),
        'unknown-field',
        `unknown field${guess ? `; did you mean ${join(path, guess)}?` : ''}`,
        guess ? join(path, guess) : 'a field declared in the schema',
        describeValue(value),
      );
      continue;
    }
    // null means "no value" in XDM payloads; required-ness is checked below.
    if (value === null || value === undefined) continue;
    checkValue(child, value, path, key, c);
  }
  for (const key of requiredOf(def)) {
    if (v[key] === undefined || v[key] === null) {
      c.add(join(path, key), 'required', 'required field is missing', expectedOf(props[key]!), 'nothing');
    }
  }
}

/**
 * Where `value` holds text that no store keeps, in a key or a string (at most 20 places; keys
 * shown JSON-escaped in the paths): the NUL character (U+0000), which PostgreSQL keeps in neither
 * text nor JSONB, and unpaired UTF-16 surrogates, which are not Unicode text (PostgreSQL refuses
 * them, SQLite would store U+FFFD instead). Such a record is refused on every store alike, with
 * where it is, instead of failing its write or being changed.
 * `json` is `value` as JSON text when the caller has it: JSON.stringify writes both as `\u`
 * escapes, so without one nothing is looked at.
 */
export function unstorableText(value: unknown, json?: string): ErrorDetail[] {
  const c = new Collector();
  if (json === undefined || (json.includes('\\u') && ESCAPED_UNSTORABLE.test(json))) findUnstorable(value, '', c);
  return c.details;
}

const ESCAPED_UNSTORABLE = /\\u(?:0000|d[89a-f])/i;
/** NUL, or a surrogate code point: with the u flag a well-formed pair reads as one other code point. */
const UNSTORABLE = /[\0\p{Cs}]/u;
/** An object as JSON.parse makes them (not a stream or another class's instance, which is not looked into). */
const isJsonObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

function problem(s: string): { reason: string; what: string } | undefined {
  if (!UNSTORABLE.test(s)) return undefined;
  return s.includes('\0') ? { reason: 'nul', what: 'the NUL character (U+0000)' } : { reason: 'surrogate', what: 'an unpaired UTF-16 surrogate (not Unicode text)' };
}

/** Walks `root` with a stack of its own: a body nested thousands deep must not exhaust the call stack. */
function findUnstorable(root: unknown, rootPath: string, c: Collector): void {
  const stack: Array<[unknown, string]> = [[root, rootPath]];
  while (stack.length && !c.full()) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const p = problem(v);
      if (p) c.add(path, p.reason, `must not contain ${p.what}`, 'Unicode text without U+0000', describeValue(v));
    } else if (Array.isArray(v)) {
      // Pushed last to first, so places are reported in document order.
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
    } else if (isJsonObject(v)) {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const k = keys[i]!;
        const p = problem(k);
        // A key holding such text is shown JSON-escaped in the paths.
        const keyPath = join(path, p ? JSON.stringify(k).slice(1, -1) : k);
        stack.push([v[k], keyPath]);
        if (p) stack.push([new KeyProblem(k, p), keyPath]);
      }
    } else if (v instanceof KeyProblem) {
      c.add(path, v.problem.reason, `field names must not contain ${v.problem.what}`, 'a name of Unicode text without U+0000', describeValue(v.key));
    }
  }
}

/** A key found to hold unstorable text, reported when the walk reaches it (in document order). */
class KeyProblem {
  constructor(
    readonly key: string,
    readonly problem: { reason: string; what: string },
  ) {}
}

/** Every problem of `record` against the schema's root (empty when valid; at most 20). */
export function validateRecord(root: FieldDef, record: unknown): ErrorDetail[] {
  const c = new Collector();
  if (!isPlainObject(record)) {
    c.add('', 'type', `a record must be a JSON object, got ${describeValue(record)}`, 'object', describeValue(record));
    return c.details;
  }
  checkObject(root, record, '', c);
  return c.details;
}
