/**
 * The hottest leaf shape — read a plain path of one to three keys and test the value — written as
 * several identical closures on purpose. V8 keeps inline-cache feedback per function literal: a
 * single shared literal reading `o[key]` for every leaf of every audience sees many keys and goes
 * megamorphic (a hash lookup per read), while a literal used by one leaf keeps a monomorphic
 * cache, as a hand-written predicate does. Leaves take the copies round-robin. This roughly halves
 * attribute evaluation time without generating code from query text.
 */
import type { Test } from './program.js';
import { internalize } from './runtime.js';

/** What the leaf does with the value it read. */
export const enum Check {
  Eq,
  Lt,
  Le,
  Gt,
  Ge,
  NeNumber,
  /** Calls the value test passed as `fn`. */
  Custom,
}

type Obj = Record<string, unknown>;
type ValueTest = (v: unknown) => boolean;

function finish(code: Check, v: unknown, lit: unknown, fn: ValueTest): boolean {
  switch (code) {
    case Check.Eq:
      return v === lit;
    case Check.Lt:
      return typeof v === 'number' && v < (lit as number);
    case Check.Le:
      return typeof v === 'number' && v <= (lit as number);
    case Check.Gt:
      return typeof v === 'number' && v > (lit as number);
    case Check.Ge:
      return typeof v === 'number' && v >= (lit as number);
    case Check.NeNumber:
      return v !== undefined && v !== null && v !== lit;
    case Check.Custom:
      return fn(v);
  }
}

/** Arguments of a hot leaf: up to three keys (n of them used), the check, its literal or test, the scope. */
interface Leaf {
  k0: string;
  k1: string;
  k2: string;
  n: number;
  code: Check;
  lit: unknown;
  fn: ValueTest;
  event: boolean;
}

type Factory = (a: Leaf) => Test;

// Eight textually identical copies; see the file comment for why they must stay separate literals.
const COPIES: Factory[] = [
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
    o = (o as Obj)[k0];
    if (n > 1) {
      if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
      o = (o as Obj)[k1];
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return finish(code, o, lit, fn);
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
    o = (o as Obj)[k0];
    if (n > 1) {
      if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
      o = (o as Obj)[k1];
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return finish(code, o, lit, fn);
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
    o = (o as Obj)[k0];
    if (n > 1) {
      if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
      o = (o as Obj)[k1];
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return finish(code, o, lit, fn);
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
    o = (o as Obj)[k0];
    if (n > 1) {
      if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
      o = (o as Obj)[k1];
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return finish(code, o, lit, fn);
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
    o = (o as Obj)[k0];
    if (n > 1) {
      if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
      o = (o as Obj)[k1];
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return finish(code, o, lit, fn);
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
    o = (o as Obj)[k0];
    if (n > 1) {
      if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
      o = (o as Obj)[k1];
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return finish(code, o, lit, fn);
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
    o = (o as Obj)[k0];
    if (n > 1) {
      if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
      o = (o as Obj)[k1];
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return finish(code, o, lit, fn);
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
    o = (o as Obj)[k0];
    if (n > 1) {
      if (typeof o !== 'object' || o === null) return finish(code, undefined, lit, fn);
      o = (o as Obj)[k1];
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return finish(code, o, lit, fn);
  },
];

let nextCopy = 0;
const NO_TEST: ValueTest = () => false;

/**
 * A leaf reading `keys` (1–3 keys, all safe for plain reads: see `isSafeKey`) in the profile or
 * the current event, then applying `code` with `lit` (or `fn` for `Check.Custom`).
 */
export function hotLeaf(keys: readonly string[], event: boolean, code: Check, lit: unknown, fn: ValueTest = NO_TEST): Test | undefined {
  const [k0, k1 = '', k2 = ''] = keys;
  if (k0 === undefined || keys.length > 3) return undefined;
  const factory = COPIES[nextCopy++ % COPIES.length] as Factory;
  return factory({ k0: internalize(k0), k1: internalize(k1), k2: internalize(k2), n: keys.length, code, lit: typeof lit === 'string' ? internalize(lit) : lit, fn, event });
}
