/**
 * Typed errors of the audience language. A query is user input, so every problem is reported with
 * its line, column and a caret excerpt of the source, and is an `AudientError` (code
 * `VALIDATION_FAILED`, never retried) so the API returns it like any other validation failure.
 */
import { AudientError } from '../errors.js';
import type { Span } from './ast.js';

/** One problem found in a query. */
export interface AudienceDiagnostic {
  /** Machine-readable kind, e.g. `syntax`, `unknown-field`, `type`, `regex`, `label`. */
  reason: string;
  /** One sentence, ending with `at line L, column C`. */
  message: string;
  line: number;
  column: number;
  /** Character offsets `[start, end)` in the query text. */
  start: number;
  end: number;
  /** For syntax errors: what the parser would have accepted. */
  expected?: string[];
  /** For syntax errors: the token that was found. */
  found?: string;
  /** For unknown fields: the closest known path. */
  suggestion?: string;
  /** The message followed by the source line and a caret under the spot. */
  formatted: string;
}

/** Renders the source line of `span` with carets under it, prefixed by the line number. */
export function caretExcerpt(source: string, span: Span): string {
  const lines = source.split('\n');
  const text = (lines[span.line - 1] ?? '').replace(/\t/g, ' ').replace(/\r$/, '');
  const gutter = String(span.line);
  const pad = ' '.repeat(gutter.length);
  const width = Math.max(1, Math.min(span.end - span.start, text.length - span.column + 1));
  return `${gutter} | ${text}\n${pad} | ${' '.repeat(Math.max(0, span.column - 1))}${'^'.repeat(width)}`;
}

/** Builds a diagnostic whose message ends with the position and whose `formatted` adds the excerpt. */
export function makeDiagnostic(
  source: string,
  span: Span,
  reason: string,
  text: string,
  extra: Pick<AudienceDiagnostic, 'expected' | 'found' | 'suggestion'> = {},
): AudienceDiagnostic {
  const message = `${text} at line ${span.line}, column ${span.column}`;
  return {
    reason,
    message,
    line: span.line,
    column: span.column,
    start: span.start,
    end: span.end,
    ...extra,
    formatted: `${message}\n${caretExcerpt(source, span)}`,
  };
}

/** Base class of the language's errors; `diagnostics` holds every problem found (at least one). */
export class AudienceQueryError extends AudientError {
  readonly diagnostics: AudienceDiagnostic[];

  constructor(kind: string, diagnostics: AudienceDiagnostic[]) {
    const first = diagnostics[0];
    const head = first ? first.formatted : kind;
    const more = diagnostics.length > 1 ? `\n(and ${diagnostics.length - 1} more problem(s))` : '';
    super(
      'VALIDATION_FAILED',
      `${kind}: ${head}${more}`,
      diagnostics.map((d) => ({ path: `${d.line}:${d.column}`, reason: d.reason, message: d.message })),
    );
    this.name = 'AudienceQueryError';
    this.diagnostics = diagnostics;
  }

  /** Line of the first problem (1-based). */
  get line(): number {
    return this.diagnostics[0]?.line ?? 1;
  }

  /** Column of the first problem (1-based). */
  get column(): number {
    return this.diagnostics[0]?.column ?? 1;
  }
}

/** The query text is not well formed (lexing or parsing); carries exactly one diagnostic. */
export class AudienceSyntaxError extends AudienceQueryError {
  constructor(diagnostic: AudienceDiagnostic) {
    super('invalid audience query', [diagnostic]);
    this.name = 'AudienceSyntaxError';
  }
}

/** The query is well formed but does not fit the schemas (unknown fields, wrong types…). */
export class AudienceTypeError extends AudienceQueryError {
  constructor(diagnostics: AudienceDiagnostic[]) {
    super('audience query does not match the schemas', diagnostics);
    this.name = 'AudienceTypeError';
  }
}
