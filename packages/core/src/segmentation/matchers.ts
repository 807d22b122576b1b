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
  const chars: string[] = [];
  const kinds: number[] = []; // 0 literal, 1 '_', 2 '%'
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
  const literal = chars.join('');
  const innerLiteral = kinds.slice(1, -1).every((k) => k === 0);
  const n = kinds.length;
  // Fast paths for the shapes people write most.
  if (kinds.every((k) => k === 0)) return (v) => v === literal;
  if (n >= 2 && kinds[0] === 2 && kinds[n - 1] === 2 && innerLiteral) {
    const mid = chars.slice(1, -1).join('');
    return (v) => v.includes(mid);
  }
  if (kinds[n - 1] === 2 && kinds.slice(0, -1).every((k) => k === 0)) {
    const head = chars.slice(0, -1).join('');
    return (v) => v.startsWith(head);
  }
  if (kinds[0] === 2 && kinds.slice(1).every((k) => k === 0)) {
    const tail = chars.slice(1).join('');
    return (v) => v.endsWith(tail);
  }
  return (v) => wildcardMatch(v, chars, kinds);
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
