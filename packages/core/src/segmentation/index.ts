/**
 * Audient's audience language: parse → check against the sandbox schemas → compile to closures →
 * evaluate / nextChange / explain; plus the evaluation-method classifier and dependency helpers.
 * Pure: no I/O, no clock but the `now` in the context.
 */
export type * from './ast.js';
export { AudienceQueryError, AudienceSyntaxError, AudienceTypeError, caretExcerpt, type AudienceDiagnostic } from './errors.js';
export { tokenize, MAX_QUERY_LENGTH, type Token, type TokenKind } from './lexer.js';
export { parseAudience, MAX_NESTING } from './parser.js';
export { checkAudience, diagnoseAudience, diagnoseAst, type AudienceSchemas, type CheckedAudience } from './check.js';
export type { ResolvedPath, ValueType } from './schema-paths.js';
export { compileAudience, compileQuery, type CompiledAudience } from './compile.js';
export { RelevanceIndex, type EventRelevance, type EventTerm, type RelevanceTerms } from './relevance.js';
export { EvalState, eventTimesFrom, eventTimesOf, type AudienceContext } from './runtime.js';
export { changeAfter, explain, nextChange, evaluateAudience, timeIndependent, type ExplainNode } from './explain.js';
export {
  classifyAudience, eventLookbackMs, DEFAULT_EVENT_RETENTION_MS, type Classification, type ClassifyOptions, type EvaluationMethod,
} from './classify.js';
export { dependencies, findCycle, walkExpr } from './dependencies.js';
export { approxJsonBytes, eventProjection, projectEvent, type EventProjection } from './projection.js';
export { parseInstant } from './time.js';
export { MAX_REGEX_LENGTH, MAX_REGEX_INPUT } from './matchers.js';
