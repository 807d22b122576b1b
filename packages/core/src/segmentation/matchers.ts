/**
 * String matchers that a query cannot turn into a denial of service: `like` patterns run on a
 * linear-time wildcard matcher (never a RegExp), and `matches` patterns are size-limited and
 * refused when they nest unbounded quantifiers or use back-references.
 */

/** Longest `matches` pattern accepted. */
export const MAX_REGEX_LENGTH = 256;
/** Longer values never satisfy `matches` (bounds the regex engine's work per value). */
export const MAX_REGEX_INPUT = 4096;

/** A compiled string test. */
export type StringTest = (value: string) => boolean;

/** Compiles a `like` pattern: `%` any run, `_` one character, `\` escapes the next character. */
export function compileLike(pattern: string): StringTest {
  const { chars, kinds } = likeTokens(pattern);
  const shape = likeShape(chars, kinds);
  if (shape) {
    const text = shape.text;
    switch (shape.kind) {
      case 'equals':
        return (v) => v === text;
      case 'includes':
        return (v) => v.includes(text);
      case 'startsWith':
        return (v) => v.startsWith(text);
      case 'endsWith':
        return (v) => v.endsWith(text);
    }
  }
  return (v) => wildcardMatch(v, chars, kinds);
}

/** A `like` pattern that is one plain string test (the shapes people write most), or undefined. */
export interface LikeShape {
  kind: 'equals' | 'includes' | 'startsWith' | 'endsWith';
  text: string;
}

/** The pattern as characters and kinds: 0 literal, 1 '_', 2 '%' (runs of '%' merged). */
function likeTokens(pattern: string): { chars: string[]; kinds: number[] } {
  const chars: string[] = [];
  const kinds: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charAt(i);
    if (c === '\\' && i + 1 < pattern.length) {
      chars.push(pattern.charAt(++i));
      kinds.push(0);
    } else if (c === '%') {
      if (kinds[kinds.length - 1] !== 2) {
        chars.push('');
        kinds.push(2);
      }
    } else {
      chars.push(c);
      kinds.push(c === '_' ? 1 : 0);
    }
  }
  return { chars, kinds };
}

/** The plain string test a `like` pattern amounts to, if it is one. */
export function likeShapeOf(pattern: string): LikeShape | undefined {
  const { chars, kinds } = likeTokens(pattern);
  return likeShape(chars, kinds);
}

function likeShape(chars: readonly string[], kinds: readonly number[]): LikeShape | undefined {
  const n = kinds.length;
  if (kinds.every((k) => k === 0)) return { kind: 'equals', text: chars.join('') };
  if (n >= 2 && kinds[0] === 2 && kinds[n - 1] === 2 && kinds.slice(1, -1).every((k) => k === 0)) return { kind: 'includes', text: chars.slice(1, -1).join('') };
  if (kinds[n - 1] === 2 && kinds.slice(0, -1).every((k) => k === 0)) return { kind: 'startsWith', text: chars.slice(0, -1).join('') };
  if (kinds[0] === 2 && kinds.slice(1).every((k) => k === 0)) return { kind: 'endsWith', text: chars.slice(1).join('') };
  return undefined;
}

/** Greedy wildcard match with single backtrack point: O(|v| · |pattern|) worst case. */
function wildcardMatch(v: string, chars: readonly string[], kinds: readonly number[]): boolean {
  let i = 0;
  let p = 0;
  let starP = -1;
  let starI = 0;
  while (i < v.length) {
    const k = kinds[p];
    if (k === 2) {
      starP = p++;
      starI = i;
    } else if (k === 1 || (k === 0 && chars[p] === v.charAt(i))) {
      p++;
      i++;
    } else if (starP >= 0) {
      p = starP + 1;
      i = ++starI;
    } else {
      return false;
    }
  }
  while (kinds[p] === 2) p++;
  return p === kinds.length;
}

/** Why a `matches` pattern was refused, or undefined when it is acceptable. */
export function regexProblem(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) return `regular expression is longer than ${MAX_REGEX_LENGTH} characters`;
  try {
    new RegExp(pattern, 'u');
  } catch (err) {
    return `invalid regular expression: ${err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err)}`;
  }
  if (/\\[1-9]|\\k</.test(pattern)) return 'back-references are not allowed in regular expressions';
  // Star height > 1: a quantified group that itself contains an unbounded quantifier, e.g. (a+)+.
  const stack: boolean[] = [];
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charAt(i);
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') stack.push(false);
    else if (c === ')') {
      const inner = stack.pop() ?? false;
      const rest = pattern.slice(i + 1);
      const quantified = /^(\*|\+|\{\d*,\d*\}|\{\d{2,}\})/.test(rest);
      if (inner && quantified) return 'nested unbounded quantifiers (like (a+)+) are not allowed: they can take exponential time';
      if (stack.length > 0 && (inner || quantified)) stack[stack.length - 1] = true;
    } else if ((c === '*' || c === '+' || (c === '{' && /^\{\d*,\d*\}/.test(pattern.slice(i)))) && stack.length > 0) {
      stack[stack.length - 1] = true;
    }
  }
  return undefined;
}

/** Compiles a pattern that passed `regexProblem`. */
export function compileRegex(pattern: string): StringTest {
  const re = new RegExp(pattern, 'u');
  return (v) => v.length <= MAX_REGEX_INPUT && re.test(v);
}
