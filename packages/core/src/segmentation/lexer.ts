/**
 * Tokenizer of the audience language. Keywords are contextual (the parser decides), so a field
 * may be named like a keyword after a dot; backticks quote any other field name.
 */
import type { Span } from './ast.js';
import { AudienceSyntaxError, makeDiagnostic } from './errors.js';

/** Token kinds: bare identifiers, `quoted` (backtick) identifiers, literals, punctuation, end. */
export type TokenKind = 'ident' | 'quoted' | 'string' | 'number' | 'punct' | 'eof';

/** One token with its decoded value (strings unescaped, numbers as text). */
export interface Token {
  kind: TokenKind;
  value: string;
  span: Span;
}

/** Longest query accepted; protects parsing and error formatting from pathological input. */
export const MAX_QUERY_LENGTH = 100_000;

const PUNCT2 = ['!=', '<=', '>=', '<>', '=='];
const PUNCT1 = '()[],.:=<>-';

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === '$';
}

function isIdentPart(c: string): boolean {
  return isIdentStart(c) || (c >= '0' && c <= '9');
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** Describes a token for "found …" in messages. */
export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of query';
    case 'string':
      return `string ${JSON.stringify(t.value.length > 30 ? `${t.value.slice(0, 27)}...` : t.value)}`;
    case 'quoted':
      return `\`${t.value}\``;
    case 'ident':
    case 'number':
    case 'punct':
      return `'${t.value.length > 30 ? `${t.value.slice(0, 27)}...` : t.value}'`;
  }
}

/** Splits query text into tokens; throws `AudienceSyntaxError` on an unknown character or unterminated literal. */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  let line = 1;
  let lineStart = 0;
  const span = (start: number, end: number, startLine: number, startCol: number): Span => ({
    start,
    end,
    line: startLine,
    column: startCol,
  });
  const fail = (start: number, end: number, text: string, found?: string): never => {
    const s = span(start, end, line, start - lineStart + 1);
    throw new AudienceSyntaxError(makeDiagnostic(source, s, 'syntax', text, found === undefined ? {} : { found }));
  };
  if (source.length > MAX_QUERY_LENGTH) {
    fail(MAX_QUERY_LENGTH, MAX_QUERY_LENGTH + 1, `query is longer than ${MAX_QUERY_LENGTH} characters`);
  }
  while (pos < source.length) {
    const c = source.charAt(pos);
    if (c === '\n') {
      pos++;
      line++;
      lineStart = pos;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      pos++;
      continue;
    }
    const start = pos;
    const col = pos - lineStart + 1;
    if (isIdentStart(c)) {
      while (pos < source.length && isIdentPart(source.charAt(pos))) pos++;
      tokens.push({ kind: 'ident', value: source.slice(start, pos), span: span(start, pos, line, col) });
      continue;
    }
    if (isDigit(c)) {
      while (isDigit(source[pos])) pos++;
      if (source[pos] === '.' && isDigit(source[pos + 1])) {
        pos++;
        while (isDigit(source[pos])) pos++;
      }
      if ((source[pos] === 'e' || source[pos] === 'E') && (isDigit(source[pos + 1]) || ((source[pos + 1] === '+' || source[pos + 1] === '-') && isDigit(source[pos + 2])))) {
        pos += 2;
        while (isDigit(source[pos])) pos++;
      }
      if (pos < source.length && isIdentStart(source.charAt(pos))) {
        fail(start, pos + 1, 'a number must be followed by a space or an operator', source.slice(start, pos + 1));
      }
      tokens.push({ kind: 'number', value: source.slice(start, pos), span: span(start, pos, line, col) });
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      pos++;
      let value = '';
      for (;;) {
        if (pos >= source.length || source[pos] === '\n') {
          fail(start, pos, c === '`' ? 'unterminated quoted field name' : 'unterminated string');
        }
        const ch = source.charAt(pos);
        if (ch === c) {
          pos++;
          break;
        }
        if (ch === '\\') {
          const esc = source.charAt(pos + 1);
          const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", '`': '`', '/': '/' };
          if (Object.prototype.hasOwnProperty.call(simple, esc)) {
            value += simple[esc];
            pos += 2;
            continue;
          }
          if (esc === 'u' && /^[0-9a-fA-F]{4}$/.test(source.slice(pos + 2, pos + 6))) {
            value += String.fromCharCode(parseInt(source.slice(pos + 2, pos + 6), 16));
            pos += 6;
            continue;
          }
          fail(pos, pos + 2, `unknown escape '\\${esc}' in string`);
        }
        value += ch;
        pos++;
      }
      if (c === '`' && value.length === 0) fail(start, pos, 'empty quoted field name');
      tokens.push({ kind: c === '`' ? 'quoted' : 'string', value, span: span(start, pos, line, col) });
      continue;
    }
    const two = source.slice(pos, pos + 2);
    if (PUNCT2.includes(two)) {
      pos += 2;
      const value = two === '<>' ? '!=' : two === '==' ? '=' : two;
      tokens.push({ kind: 'punct', value, span: span(start, pos, line, col) });
      continue;
    }
    if (PUNCT1.includes(c)) {
      pos++;
      tokens.push({ kind: 'punct', value: c, span: span(start, pos, line, col) });
      continue;
    }
    const code = source.codePointAt(pos) ?? 0;
    const shown = code > 0xffff ? String.fromCodePoint(code) : c;
    fail(start, start + shown.length, `unexpected character ${JSON.stringify(shown)}`, shown);
  }
  tokens.push({ kind: 'eof', value: '', span: span(pos, pos, line, pos - lineStart + 1) });
  return tokens;
}
