/**
 * The hottest leaf shape — read a plain path of one to three keys and test the value — written as
 * several identical closures on purpose. V8 keeps inline-cache feedback per function literal (all
 * closures of one literal share it): a single shared literal reading `o[key]` for every leaf of
 * every audience sees many keys and goes megamorphic (a hash lookup per read), while a literal
 * used by one leaf keeps a monomorphic cache, as a hand-written predicate does. The check is
 * written out in each copy rather than called through a shared helper, whose inlined code would
 * carry that helper's shared (polluted) feedback. Leaves doing the same check on the same path get
 * the same copy, so a copy shared between leaves (queries of the same shape) keeps its feedback.
 * The same holds for the "some array element" leaf and the plain read below. This roughly halves
 * attribute evaluation time without generating code from query text.
 */
import type { Test } from './program.js';
import { internalize, type EvalState } from './runtime.js';

/** What the leaf does with the value it read. */
export const enum Check {
  Eq,
  Lt,
  Le,
  Gt,
  Ge,
  NeNumber,
  /** The value is neither undefined nor null. */
  Exists,
  /** The value is one of the array `lit` (`===`). Plain paths only, like the string checks below. */
  In,
  StartsWith,
  EndsWith,
  Includes,
  /** The lower-cased value includes `lit` (already lower case). */
  IncludesLower,
  /** Calls the value test passed as `fn`. */
  Custom,
}

type Obj = Record<string, unknown>;
type ValueTest = (v: unknown) => boolean;

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

// Textually identical copies; see the file comment for why they must stay separate literals.
const COPIES: Factory[] = [
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
  ({ k0, k1, k2, n, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o === 'object' && o !== null) {
      o = (o as Obj)[k0];
      if (n > 1) {
        o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
        if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
      }
    } else o = undefined;
    switch (code) {
      case Check.Eq: return o === lit;
      case Check.Lt: return typeof o === 'number' && o < (lit as number);
      case Check.Le: return typeof o === 'number' && o <= (lit as number);
      case Check.Gt: return typeof o === 'number' && o > (lit as number);
      case Check.Ge: return typeof o === 'number' && o >= (lit as number);
      case Check.NeNumber: return o !== undefined && o !== null && o !== lit;
      case Check.Exists: return o !== undefined && o !== null;
      case Check.In: {
        const list = lit as readonly unknown[];
        for (let k = 0; k < list.length; k++) if (list[k] === o) return true;
        return false;
      }
      case Check.StartsWith: return typeof o === 'string' && o.startsWith(lit as string);
      case Check.EndsWith: return typeof o === 'string' && o.endsWith(lit as string);
      case Check.Includes: return typeof o === 'string' && o.includes(lit as string);
      case Check.IncludesLower: return typeof o === 'string' && o.toLowerCase().includes(lit as string);
      case Check.Custom: return fn(o);
    }
  },
];

/** Arguments of a leaf testing the elements of one array: keys to the array (1–2), keys inside each element (0–2). */
interface ArrayLeaf {
  a0: string;
  a1: string;
  na: number;
  b0: string;
  b1: string;
  nb: number;
  code: Check;
  lit: unknown;
  fn: ValueTest;
  event: boolean;
}

// Copies of the "some element" leaf (`productListItems.SKU = "x"`), for the same reason as above.
const ARRAY_COPIES: Array<(a: ArrayLeaf) => Test> = [
  ({ a0, a1, na, b0, b1, nb, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return false;
    o = (o as Obj)[a0];
    if (na > 1) o = typeof o === 'object' && o !== null ? (o as Obj)[a1] : undefined;
    if (!Array.isArray(o)) return false;
    for (let k = 0; k < o.length; k++) {
      let v: unknown = o[k];
      if (nb > 0) {
        v = typeof v === 'object' && v !== null ? (v as Obj)[b0] : undefined;
        if (nb > 1) v = typeof v === 'object' && v !== null ? (v as Obj)[b1] : undefined;
      }
      switch (code) {
        case Check.Eq: if (v === lit) return true; break;
        case Check.Lt: if (typeof v === 'number' && v < (lit as number)) return true; break;
        case Check.Le: if (typeof v === 'number' && v <= (lit as number)) return true; break;
        case Check.Gt: if (typeof v === 'number' && v > (lit as number)) return true; break;
        case Check.Ge: if (typeof v === 'number' && v >= (lit as number)) return true; break;
        case Check.Exists: if (v !== undefined && v !== null) return true; break;
        default: if (fn(v)) return true;
      }
    }
    return false;
  },
  ({ a0, a1, na, b0, b1, nb, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return false;
    o = (o as Obj)[a0];
    if (na > 1) o = typeof o === 'object' && o !== null ? (o as Obj)[a1] : undefined;
    if (!Array.isArray(o)) return false;
    for (let k = 0; k < o.length; k++) {
      let v: unknown = o[k];
      if (nb > 0) {
        v = typeof v === 'object' && v !== null ? (v as Obj)[b0] : undefined;
        if (nb > 1) v = typeof v === 'object' && v !== null ? (v as Obj)[b1] : undefined;
      }
      switch (code) {
        case Check.Eq: if (v === lit) return true; break;
        case Check.Lt: if (typeof v === 'number' && v < (lit as number)) return true; break;
        case Check.Le: if (typeof v === 'number' && v <= (lit as number)) return true; break;
        case Check.Gt: if (typeof v === 'number' && v > (lit as number)) return true; break;
        case Check.Ge: if (typeof v === 'number' && v >= (lit as number)) return true; break;
        case Check.Exists: if (v !== undefined && v !== null) return true; break;
        default: if (fn(v)) return true;
      }
    }
    return false;
  },
  ({ a0, a1, na, b0, b1, nb, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return false;
    o = (o as Obj)[a0];
    if (na > 1) o = typeof o === 'object' && o !== null ? (o as Obj)[a1] : undefined;
    if (!Array.isArray(o)) return false;
    for (let k = 0; k < o.length; k++) {
      let v: unknown = o[k];
      if (nb > 0) {
        v = typeof v === 'object' && v !== null ? (v as Obj)[b0] : undefined;
        if (nb > 1) v = typeof v === 'object' && v !== null ? (v as Obj)[b1] : undefined;
      }
      switch (code) {
        case Check.Eq: if (v === lit) return true; break;
        case Check.Lt: if (typeof v === 'number' && v < (lit as number)) return true; break;
        case Check.Le: if (typeof v === 'number' && v <= (lit as number)) return true; break;
        case Check.Gt: if (typeof v === 'number' && v > (lit as number)) return true; break;
        case Check.Ge: if (typeof v === 'number' && v >= (lit as number)) return true; break;
        case Check.Exists: if (v !== undefined && v !== null) return true; break;
        default: if (fn(v)) return true;
      }
    }
    return false;
  },
  ({ a0, a1, na, b0, b1, nb, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return false;
    o = (o as Obj)[a0];
    if (na > 1) o = typeof o === 'object' && o !== null ? (o as Obj)[a1] : undefined;
    if (!Array.isArray(o)) return false;
    for (let k = 0; k < o.length; k++) {
      let v: unknown = o[k];
      if (nb > 0) {
        v = typeof v === 'object' && v !== null ? (v as Obj)[b0] : undefined;
        if (nb > 1) v = typeof v === 'object' && v !== null ? (v as Obj)[b1] : undefined;
      }
      switch (code) {
        case Check.Eq: if (v === lit) return true; break;
        case Check.Lt: if (typeof v === 'number' && v < (lit as number)) return true; break;
        case Check.Le: if (typeof v === 'number' && v <= (lit as number)) return true; break;
        case Check.Gt: if (typeof v === 'number' && v > (lit as number)) return true; break;
        case Check.Ge: if (typeof v === 'number' && v >= (lit as number)) return true; break;
        case Check.Exists: if (v !== undefined && v !== null) return true; break;
        default: if (fn(v)) return true;
      }
    }
    return false;
  },
  ({ a0, a1, na, b0, b1, nb, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return false;
    o = (o as Obj)[a0];
    if (na > 1) o = typeof o === 'object' && o !== null ? (o as Obj)[a1] : undefined;
    if (!Array.isArray(o)) return false;
    for (let k = 0; k < o.length; k++) {
      let v: unknown = o[k];
      if (nb > 0) {
        v = typeof v === 'object' && v !== null ? (v as Obj)[b0] : undefined;
        if (nb > 1) v = typeof v === 'object' && v !== null ? (v as Obj)[b1] : undefined;
      }
      switch (code) {
        case Check.Eq: if (v === lit) return true; break;
        case Check.Lt: if (typeof v === 'number' && v < (lit as number)) return true; break;
        case Check.Le: if (typeof v === 'number' && v <= (lit as number)) return true; break;
        case Check.Gt: if (typeof v === 'number' && v > (lit as number)) return true; break;
        case Check.Ge: if (typeof v === 'number' && v >= (lit as number)) return true; break;
        case Check.Exists: if (v !== undefined && v !== null) return true; break;
        default: if (fn(v)) return true;
      }
    }
    return false;
  },
  ({ a0, a1, na, b0, b1, nb, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return false;
    o = (o as Obj)[a0];
    if (na > 1) o = typeof o === 'object' && o !== null ? (o as Obj)[a1] : undefined;
    if (!Array.isArray(o)) return false;
    for (let k = 0; k < o.length; k++) {
      let v: unknown = o[k];
      if (nb > 0) {
        v = typeof v === 'object' && v !== null ? (v as Obj)[b0] : undefined;
        if (nb > 1) v = typeof v === 'object' && v !== null ? (v as Obj)[b1] : undefined;
      }
      switch (code) {
        case Check.Eq: if (v === lit) return true; break;
        case Check.Lt: if (typeof v === 'number' && v < (lit as number)) return true; break;
        case Check.Le: if (typeof v === 'number' && v <= (lit as number)) return true; break;
        case Check.Gt: if (typeof v === 'number' && v > (lit as number)) return true; break;
        case Check.Ge: if (typeof v === 'number' && v >= (lit as number)) return true; break;
        case Check.Exists: if (v !== undefined && v !== null) return true; break;
        default: if (fn(v)) return true;
      }
    }
    return false;
  },
  ({ a0, a1, na, b0, b1, nb, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return false;
    o = (o as Obj)[a0];
    if (na > 1) o = typeof o === 'object' && o !== null ? (o as Obj)[a1] : undefined;
    if (!Array.isArray(o)) return false;
    for (let k = 0; k < o.length; k++) {
      let v: unknown = o[k];
      if (nb > 0) {
        v = typeof v === 'object' && v !== null ? (v as Obj)[b0] : undefined;
        if (nb > 1) v = typeof v === 'object' && v !== null ? (v as Obj)[b1] : undefined;
      }
      switch (code) {
        case Check.Eq: if (v === lit) return true; break;
        case Check.Lt: if (typeof v === 'number' && v < (lit as number)) return true; break;
        case Check.Le: if (typeof v === 'number' && v <= (lit as number)) return true; break;
        case Check.Gt: if (typeof v === 'number' && v > (lit as number)) return true; break;
        case Check.Ge: if (typeof v === 'number' && v >= (lit as number)) return true; break;
        case Check.Exists: if (v !== undefined && v !== null) return true; break;
        default: if (fn(v)) return true;
      }
    }
    return false;
  },
  ({ a0, a1, na, b0, b1, nb, code, lit, fn, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return false;
    o = (o as Obj)[a0];
    if (na > 1) o = typeof o === 'object' && o !== null ? (o as Obj)[a1] : undefined;
    if (!Array.isArray(o)) return false;
    for (let k = 0; k < o.length; k++) {
      let v: unknown = o[k];
      if (nb > 0) {
        v = typeof v === 'object' && v !== null ? (v as Obj)[b0] : undefined;
        if (nb > 1) v = typeof v === 'object' && v !== null ? (v as Obj)[b1] : undefined;
      }
      switch (code) {
        case Check.Eq: if (v === lit) return true; break;
        case Check.Lt: if (typeof v === 'number' && v < (lit as number)) return true; break;
        case Check.Le: if (typeof v === 'number' && v <= (lit as number)) return true; break;
        case Check.Gt: if (typeof v === 'number' && v > (lit as number)) return true; break;
        case Check.Ge: if (typeof v === 'number' && v >= (lit as number)) return true; break;
        case Check.Exists: if (v !== undefined && v !== null) return true; break;
        default: if (fn(v)) return true;
      }
    }
    return false;
  },
];

/** A plain read of up to three keys (for accessors: aggregated fields, dates, explanations). */
export type HotRead = (s: EvalState, i: number) => unknown;

// Copies of the plain read, for the same reason as above.
const READ_COPIES: Array<(a: Pick<Leaf, 'k0' | 'k1' | 'k2' | 'n' | 'event'>) => HotRead> = [
  ({ k0, k1, k2, n, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Obj)[k0];
    if (n > 1) {
      o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return o;
  },
  ({ k0, k1, k2, n, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Obj)[k0];
    if (n > 1) {
      o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return o;
  },
  ({ k0, k1, k2, n, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Obj)[k0];
    if (n > 1) {
      o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return o;
  },
  ({ k0, k1, k2, n, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Obj)[k0];
    if (n > 1) {
      o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return o;
  },
  ({ k0, k1, k2, n, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Obj)[k0];
    if (n > 1) {
      o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return o;
  },
  ({ k0, k1, k2, n, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Obj)[k0];
    if (n > 1) {
      o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return o;
  },
  ({ k0, k1, k2, n, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Obj)[k0];
    if (n > 1) {
      o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return o;
  },
  ({ k0, k1, k2, n, event }) => (s, i) => {
    let o: unknown = event ? s.events[i] : s.profile;
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Obj)[k0];
    if (n > 1) {
      o = typeof o === 'object' && o !== null ? (o as Obj)[k1] : undefined;
      if (n > 2) o = typeof o === 'object' && o !== null ? (o as Obj)[k2] : undefined;
    }
    return o;
  },
];

const NO_TEST: ValueTest = () => false;

/**
 * Copy index per check, scope and path, so leaves doing the same on one path share a copy (a copy
 * seeing a second check or key sequence would be deoptimised and recompiled); bounded for
 * long-lived processes.
 */
const copyOfPath = new Map<string, number>();
const MAX_TRACKED_PATHS = 10_000;
let nextCopy = 0;

function copyFor<T>(copies: readonly T[], pathKey: string): T {
  let k = copyOfPath.get(pathKey);
  if (k === undefined) {
    k = nextCopy++;
    if (copyOfPath.size < MAX_TRACKED_PATHS) copyOfPath.set(pathKey, k);
  }
  return copies[k % copies.length] as T;
}

const pathKey = (kind: string, event: boolean, keys: readonly string[]): string => `${kind}\u0000${event ? 'e' : 'p'}\u0000${keys.join('\u0000')}`;

/**
 * A leaf reading `keys` (1–3 keys, all safe for plain reads: see `isSafeKey`) in the profile or
 * the current event, then applying `code` with `lit` (or `fn` for `Check.Custom`).
 */
export function hotLeaf(keys: readonly string[], event: boolean, code: Check, lit: unknown, fn: ValueTest = NO_TEST): Test | undefined {
  const [k0, k1 = '', k2 = ''] = keys;
  if (k0 === undefined || keys.length > 3) return undefined;
  const factory = copyFor(COPIES, pathKey(`leaf${code}`, event, keys));
  return factory({ k0: internalize(k0), k1: internalize(k1), k2: internalize(k2), n: keys.length, code, lit: typeof lit === 'string' ? internalize(lit) : lit, fn, event });
}

/**
 * A leaf true when some element of the array at `before` (1–2 keys) has, at `after` (0–2 keys), a
 * value passing `code` (comparisons, `Exists` or `Custom`; undefined for other checks). All keys safe.
 */
export function hotArrayLeaf(before: readonly string[], after: readonly string[], event: boolean, code: Check, lit: unknown, fn: ValueTest = NO_TEST): Test | undefined {
  const [a0, a1 = ''] = before;
  const [b0 = '', b1 = ''] = after;
  const anyElement = code === Check.Eq || code === Check.Lt || code === Check.Le || code === Check.Gt || code === Check.Ge || code === Check.Exists || code === Check.Custom;
  if (a0 === undefined || before.length > 2 || after.length > 2 || !anyElement) return undefined;
  const factory = copyFor(ARRAY_COPIES, pathKey(`array${code}`, event, [...before, '[]', ...after]));
  const i = internalize;
  return factory({ a0: i(a0), a1: i(a1), na: before.length, b0: i(b0), b1: i(b1), nb: after.length, code, lit: typeof lit === 'string' ? i(lit) : lit, fn, event });
}

/** A read of `keys` (1–3 safe keys) in the profile or the current event; undefined when a step is missing. */
export function hotRead(keys: readonly string[], event: boolean): HotRead | undefined {
  const [k0, k1 = '', k2 = ''] = keys;
  if (k0 === undefined || keys.length > 3) return undefined;
  const factory = copyFor(READ_COPIES, pathKey('read', event, keys));
  return factory({ k0: internalize(k0), k1: internalize(k1), k2: internalize(k2), n: keys.length, event });
}
