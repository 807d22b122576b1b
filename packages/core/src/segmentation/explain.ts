/**
 * `explain` and `nextChange`: both walk the compiled program tree, so they use exactly the
 * closures `evaluate` uses and can never disagree with it.
 */
import type { Expr, Span } from './ast.js';
import type { CheckedAudience } from './check.js';
import { compileAudience, type CompiledAudience } from './compile.js';
import { NEVER, type Program } from './program.js';
import type { AudienceContext, EvalState } from './runtime.js';
import { readKey } from './runtime.js';

/** One clause of an explained query. */
export interface ExplainNode {
  kind: Expr['kind'];
  /** The clause's source text. */
  clause: string;
  line: number;
  column: number;
  /** Whether the clause held (inside event clauses: held for at least one event). */
  result: boolean;
  /** What was seen: attribute values, counts, matching event ids, windows… */
  values: Record<string, unknown>;
  children: ExplainNode[];
}

const compiledCache = new WeakMap<CheckedAudience, CompiledAudience>();

function compiledOf(query: CompiledAudience | CheckedAudience): CompiledAudience {
  if ('evaluate' in query) return query;
  let c = compiledCache.get(query);
  if (!c) {
    c = compileAudience(query);
    compiledCache.set(query, c);
  }
  return c;
}

function clauseText(source: string, span: Span): string {
  const text = source.slice(span.start, span.end);
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}

function node(source: string, p: Program, result: boolean, values: Record<string, unknown>, children: ExplainNode[]): ExplainNode {
  const span = p.expr.span;
  return { kind: p.expr.kind, clause: clauseText(source, span), line: span.line, column: span.column, result, values, children };
}

function explainAt(source: string, p: Program, s: EvalState, i: number): ExplainNode {
  const children = p.perEvent
    ? p.children.map((c) => explainAcrossEvents(source, c, s))
    : p.children.map((c) => explainAt(source, c, s, i));
  return node(source, p, p.test(s, i), p.details(s, i), children);
}

/** A clause inside an event clause: held if it held for some event; lists how many and which. */
function explainAcrossEvents(source: string, p: Program, s: EvalState): ExplainNode {
  let count = 0;
  const ids: unknown[] = [];
  let sample: Record<string, unknown> | undefined;
  for (let i = 0; i < s.events.length; i++) {
    if (!p.test(s, i)) continue;
    count++;
    if (ids.length < 10) ids.push(readKey(s.events[i], '_id') ?? null);
    sample ??= p.children.length === 0 ? p.details(s, i) : undefined;
  }
  const values: Record<string, unknown> = { matchingEvents: count, matchingEventIds: ids };
  if (sample) values['firstMatch'] = sample;
  return node(source, p, count > 0, values, p.children.map((c) => explainAcrossEvents(source, c, s)));
}

/** A tree mirroring the query's clauses: source text, whether each held and the values seen. */
export function explain(query: CompiledAudience | CheckedAudience, ctx: AudienceContext): ExplainNode {
  const compiled = compiledOf(query);
  return compiled.withState(ctx, (s) => explainAt(compiled.ast.source, compiled.program, s, -1));
}

/**
 * The earliest instant after `ctx.now` at which the result could change with no new data (a
 * window expiring, a birthday arriving), or undefined. Never later than the true change; may be
 * earlier, in which case re-evaluating simply finds the same result.
 */
export function nextChange(query: CompiledAudience | CheckedAudience, ctx: AudienceContext): number | undefined {
  return changeAfter(compiledOf(query).nextAt(ctx), ctx.now);
}

/** A raw `next` (CompiledAudience.nextAt / nextOf) as nextChange gives it: strictly after `now`. */
export function changeAfter(next: number | undefined, now: number): number | undefined {
  return next === undefined ? undefined : Math.max(next, now + 1);
}

/**
 * True when the audience's result can never change by the passage of time alone (no `now`,
 * `today` or event window anywhere in it): `nextChange` is then always undefined and need not
 * be asked.
 */
export function timeIndependent(query: CompiledAudience | CheckedAudience): boolean {
  return compiledOf(query).program.next === NEVER;
}

/** Evaluates a compiled or checked audience (checked ones are compiled once and cached). */
export function evaluateAudience(query: CompiledAudience | CheckedAudience, ctx: AudienceContext): boolean {
  return compiledOf(query).evaluate(ctx);
}
