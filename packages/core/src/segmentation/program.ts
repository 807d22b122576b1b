/**
 * The compiled form of a query: a tree of programs mirroring the AST. Each program carries the
 * closure that evaluates it, the closure that says when its result could next change by the
 * passage of time, and the closure that reports the values it saw — so evaluation, nextChange
 * and explain can never disagree.
 */
import type { Expr } from './ast.js';
import type { EvalState } from './runtime.js';

/** Evaluates a clause for the state (and event index `i`, -1 outside event clauses). */
export type Test = (s: EvalState, i: number) => boolean;

/** Earliest instant after `s.now` at which the clause's result could change with no new data. */
export type Next = (s: EvalState, i: number) => number | undefined;

/** One compiled clause. */
export interface Program {
  expr: Expr;
  test: Test;
  next: Next;
  /** Values seen while evaluating (attribute values, counts, matching event ids…). */
  details: (s: EvalState, i: number) => Record<string, unknown>;
  children: Program[];
  /** For event clauses: the children are evaluated per event, not once. */
  perEvent: boolean;
  /**
   * Set on a clause over an event's own `timestamp` whose `next`, for events at or before
   * `s.now`, is undefined or non-decreasing in the event's time (`occurs < N units before now`:
   * such an event leaves the window N units after it happened, so older ones leave first).
   */
  pastMonotone?: true;
}

/** `next` of a clause that does not depend on time. */
export const NEVER: Next = () => undefined;

/** Compiles a sub-expression (passed to the event compilers to avoid an import cycle). */
export type CompileExpr = (e: Expr) => Program;
