/**
 * Compiles a checked query into closures (never `eval`: query text cannot execute code) and
 * wraps them in a `CompiledAudience` that evaluates, predicts the next time-driven change and
 * explains itself.
 */
import type { Expr, InSegmentExpr, LogicalExpr, NotExpr, QueryAst } from './ast.js';
import { checkAudience, type AudienceSchemas, type CheckedAudience } from './check.js';
import { compileAggregate, compileChain, compileSelect } from './compile-events.js';
import {
  compileBetween, compileCompare, compileExists, compileIn, compileLikeExpr, compileOccurs, compileStringFn, type LeafEnv,
} from './compile-leaves.js';
import { parseAudience } from './parser.js';
import { NEVER, type Next, type Program, type Test } from './program.js';
import { eventRelevance, relevanceTerms, type EventRelevance, type RelevanceTerms } from './relevance.js';
import { EvalState, type AudienceContext } from './runtime.js';
import { earliest } from './time-relation.js';

// Textually identical copies on purpose (see hot-leaves.ts): V8 keeps call feedback per function
// literal, so one shared `a(s, i) && b(s, i)` sees every audience's leaves and calls them
// megamorphically (never inlined); spreading two-operand nodes over a few literals keeps most calls
// monomorphic.
type Pair = (a: Test, b: Test) => Test;
const AND2: Pair[] = [
  (a, b) => (s, i) => a(s, i) && b(s, i),
  (a, b) => (s, i) => a(s, i) && b(s, i),
  (a, b) => (s, i) => a(s, i) && b(s, i),
  (a, b) => (s, i) => a(s, i) && b(s, i),
];
const OR2: Pair[] = [
  (a, b) => (s, i) => a(s, i) || b(s, i),
  (a, b) => (s, i) => a(s, i) || b(s, i),
  (a, b) => (s, i) => a(s, i) || b(s, i),
  (a, b) => (s, i) => a(s, i) || b(s, i),
];
let nextPair = 0;
const pick = (copies: Pair[]): Pair => copies[nextPair++ % copies.length] as Pair;

function compileAnd(e: LogicalExpr, children: Program[]): Program {
  const tests = children.map((c) => c.test);
  const [a, b, c] = tests;
  let test: Test;
  if (tests.length === 2 && a && b) test = pick(AND2)(a, b);
  else if (tests.length === 3 && a && b && c) test = (s, i) => a(s, i) && b(s, i) && c(s, i);
  else {
    test = (s, i) => {
      for (let k = 0; k < tests.length; k++) if (!(tests[k] as Test)(s, i)) return false;
      return true;
    };
  }
  return { expr: e, test, next: logicalNext(children, false), details: () => ({}), children, perEvent: false };
}

function compileOr(e: LogicalExpr, children: Program[]): Program {
  const tests = children.map((c) => c.test);
  const [a, b, c] = tests;
  let test: Test;
  if (tests.length === 2 && a && b) test = pick(OR2)(a, b);
  else if (tests.length === 3 && a && b && c) test = (s, i) => a(s, i) || b(s, i) || c(s, i);
  else {
    test = (s, i) => {
      for (let k = 0; k < tests.length; k++) if ((tests[k] as Test)(s, i)) return true;
      return false;
    };
  }
  return { expr: e, test, next: logicalNext(children, true), details: () => ({}), children, perEvent: false };
}

/**
 * An `and` that has a child false forever stays false forever (an `or` with a child true forever
 * stays true); otherwise it can change no earlier than its earliest child. The children that never
 * change by themselves are tested first: one of them holding the deciding value settles it
 * without asking the timed children when they change (the common case over events: a page view of
 * another section, an event of another type).
 */
function logicalNext(children: Program[], decidingValue: boolean): Next {
  const moving = children.filter((c) => c.next !== NEVER);
  if (!moving.length) return NEVER;
  const fixed = children.filter((c) => c.next === NEVER).map((c) => c.test);
  return (s, i) => {
    for (let k = 0; k < fixed.length; k++) if ((fixed[k] as Test)(s, i) === decidingValue) return undefined;
    let best: number | undefined;
    for (let k = 0; k < moving.length; k++) {
      const c = moving[k] as Program;
      const n = c.next(s, i);
      if (n === undefined && c.test(s, i) === decidingValue) return undefined;
      best = earliest(best, n);
    }
    return best;
  };
}

function compileNot(e: NotExpr, child: Program): Program {
  const t = child.test;
  return { expr: e, test: (s, i) => !t(s, i), next: child.next, details: () => ({}), children: [child], perEvent: false };
}

function compileInSegment(e: InSegmentExpr): Program {
  const id = e.audienceId;
  return {
    expr: e,
    test: (s) => s.inSegment(id) === true,
    next: NEVER,
    details: () => ({ audienceId: id }),
    children: [],
    perEvent: false,
  };
}

/** Compiles every node of a checked query into its program tree. */
export function compileProgram(checked: CheckedAudience): Program {
  const env: LeafEnv = { checked };
  const compile = (e: Expr): Program => {
    switch (e.kind) {
      case 'constant': {
        const v = e.value;
        return { expr: e, test: () => v, next: NEVER, details: () => ({}), children: [], perEvent: false };
      }
      case 'and':
        return compileAnd(e, e.operands.map(compile));
      case 'or':
        return compileOr(e, e.operands.map(compile));
      case 'not':
        return compileNot(e, compile(e.operand));
      case 'compare':
        return compileCompare(env, e);
      case 'in':
        return compileIn(env, e);
      case 'like':
        return compileLikeExpr(env, e);
      case 'exists':
        return compileExists(env, e);
      case 'between':
        return compileBetween(env, e);
      case 'stringFn':
        return compileStringFn(env, e);
      case 'occurs':
        return compileOccurs(env, e);
      case 'inSegment':
        return compileInSegment(e);
      case 'select':
        return compileSelect(compile, e);
      case 'aggregate':
        return compileAggregate(env, compile, e);
      case 'chain':
        return compileChain(compile, e);
    }
  };
  return compile(checked.ast.root);
}

/** A compiled audience: call `evaluate` in hot loops; `nextChange`/`explain` reuse the same closures. */
export interface CompiledAudience {
  readonly ast: QueryAst;
  readonly checked: CheckedAudience;
  readonly program: Program;
  /** Whether the profile belongs to the audience at `ctx.now`. */
  evaluate(ctx: AudienceContext): boolean;
  /** The program's `next` at `ctx` (see nextChange, which clamps it after `ctx.now`); allocation-free like evaluate. */
  nextAt(ctx: AudienceContext): number | undefined;
  /**
   * `evaluate` on a state already bound to the context (`new EvalState().bind(ctx)`): the
   * audiences of one profile share one binding, so what the state learns of the context once
   * (whether the events are an array, where their times come from, whether they are sorted) is
   * not learnt again per audience. The engine evaluates this way.
   */
  holds(s: EvalState): boolean;
  /** `nextAt` on a bound state (see holds). */
  nextOf(s: EvalState): number | undefined;
  /** Runs `fn` with a state bound to `ctx` (for nextChange/explain); safe against re-entry. */
  withState<T>(ctx: AudienceContext, fn: (s: EvalState) => T): T;
  /** Which new events can change the result (see relevance.ts). */
  readonly relevance: EventRelevance;
  /** The same as data, for evaluating many audiences' relevance together (RelevanceIndex). */
  readonly relevanceTerms: RelevanceTerms;
}

/** Compiles a checked query. No code is generated from query text; the result is reusable and allocation-free per call. */
export function compileAudience(checked: CheckedAudience): CompiledAudience {
  const program = compileProgram(checked);
  const test = program.test;
  const terms = relevanceTerms(program, checked.paths);
  let spare: EvalState | undefined = new EvalState();
  const withState = <T>(ctx: AudienceContext, fn: (s: EvalState) => T): T => {
    const s = spare ?? new EvalState();
    spare = undefined;
    try {
      return fn(s.bind(ctx));
    } finally {
      spare = s;
    }
  };
  return {
    ast: checked.ast,
    checked,
    program,
    // No try/finally on the hot path (it kept this closure out of the caller's optimised code): the
    // state is taken out while in use, so a re-entrant call or one after a throw gets a fresh state,
    // and the next evaluation that completes puts its state back.
    evaluate: (ctx) => {
      const s = spare ?? new EvalState();
      spare = undefined;
      const r = test(s.bind(ctx), -1);
      spare = s;
      return r;
    },
    holds: (s) => test(s, -1),
    nextOf: (s) => program.next(s, -1),
    nextAt: (ctx) => {
      const s = spare ?? new EvalState();
      spare = undefined;
      const r = program.next(s.bind(ctx), -1);
      spare = s;
      return r;
    },
    withState,
    relevance: eventRelevance(terms),
    relevanceTerms: terms,
  };
}

/** Parses, checks and compiles query text in one step; throws `AudienceSyntaxError` or `AudienceTypeError`. */
export function compileQuery(source: string, schemas: AudienceSchemas): CompiledAudience {
  return compileAudience(checkAudience(parseAudience(source), schemas));
}
