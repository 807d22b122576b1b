/**
 * The audience language's syntax tree. Every node carries its source span so that type errors,
 * `explain` output and editors can point at the exact clause.
 */

/** A half-open character range `[start, end)` in the query text, with the 1-based line/column of `start`. */
export interface Span {
  start: number;
  end: number;
  line: number;
  column: number;
}

/** Comparison operators shared by attributes, aggregates and time windows. */
export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

/** Units of a relative duration. Seconds to weeks are fixed lengths; months and years follow the UTC calendar. */
export type TimeUnit = 'seconds' | 'minutes' | 'hours' | 'days' | 'weeks' | 'months' | 'years';

/** Which record a path reads: the merged profile or the event currently being looked at. */
export type PathScope = 'profile' | 'event';

/** A dotted field path, e.g. `person.name.lastName`; event paths have the `X.` variable already stripped. */
export interface PathExpr {
  kind: 'path';
  scope: PathScope;
  segments: string[];
  span: Span;
}

/** A literal value written in the query. */
export interface LiteralExpr {
  kind: 'literal';
  value: string | number | boolean | null;
  span: Span;
}

/** Either side of a comparison. */
export type Operand = PathExpr | LiteralExpr;

/** The anchor of a relative time: the current instant or the start of the current UTC day. */
export type TimeAnchor = 'now' | 'today';

/** `OP N unit` or `between A and B unit`: how far a time lies from its anchor. */
export type Distance =
  | { kind: 'compare'; op: CompareOp; amount: number; unit: TimeUnit }
  | { kind: 'between'; low: number; high: number; unit: TimeUnit };

/** `occurs < 7 days before now` and friends, relative to now/today. */
export interface TimeRelation {
  distance: Distance;
  direction: 'before' | 'after';
  anchor: TimeAnchor;
}

/** A boolean expression: the whole query and every clause inside it. */
export type Expr =
  | ConstantExpr
  | LogicalExpr
  | NotExpr
  | CompareExpr
  | InListExpr
  | LikeExpr
  | ExistsExpr
  | BetweenExpr
  | StringFnExpr
  | OccursExpr
  | InSegmentExpr
  | SelectExpr
  | AggregateExpr
  | ChainExpr;

export interface ConstantExpr {
  kind: 'constant';
  value: boolean;
  span: Span;
}

/** `a and b and c` / `a or b` — kept n-ary so evaluation need not recurse per pair. */
export interface LogicalExpr {
  kind: 'and' | 'or';
  operands: Expr[];
  span: Span;
}

export interface NotExpr {
  kind: 'not';
  operand: Expr;
  span: Span;
}

export interface CompareExpr {
  kind: 'compare';
  op: CompareOp;
  left: Operand;
  right: Operand;
  span: Span;
}

/** `x in [..]` / `x notIn [..]`. */
export interface InListExpr {
  kind: 'in';
  negated: boolean;
  target: PathExpr;
  values: LiteralExpr[];
  span: Span;
}

/** `x like "%foo_"` with SQL wildcards `%` (any run) and `_` (one character). */
export interface LikeExpr {
  kind: 'like';
  target: PathExpr;
  pattern: LiteralExpr;
  span: Span;
}

/** `x exists`: present and not null. */
export interface ExistsExpr {
  kind: 'exists';
  target: PathExpr;
  span: Span;
}

/** `x between a and b`, inclusive at both ends. */
export interface BetweenExpr {
  kind: 'between';
  target: PathExpr;
  low: LiteralExpr;
  high: LiteralExpr;
  span: Span;
}

/** Names of the string methods. */
export type StringFn = 'startsWith' | 'endsWith' | 'contains' | 'matches';

/** `x.startsWith("a")`, `x.contains("c", false)`, `x.matches("re")`. */
export interface StringFnExpr {
  kind: 'stringFn';
  fn: StringFn;
  target: PathExpr;
  argument: LiteralExpr;
  caseSensitive: boolean;
  span: Span;
}

/** `x occurs < 7 days before now`. */
export interface OccursExpr {
  kind: 'occurs';
  target: PathExpr;
  relation: TimeRelation;
  span: Span;
}

/** `inSegment("audience-id")`. */
export interface InSegmentExpr {
  kind: 'inSegment';
  audienceId: string;
  span: Span;
}

/** `select X from xEvent where ...`: at least one event satisfies the condition. */
export interface SelectExpr {
  kind: 'select';
  variable: string;
  where: Expr | undefined;
  span: Span;
}

/** Aggregate functions over the events a filter keeps. */
export type AggregateFn = 'count' | 'sum' | 'avg' | 'min' | 'max';

/** `xEvent[filter].count() >= 3`, `xEvent[filter].sum(commerce.order.priceTotal) > 500`. */
export interface AggregateExpr {
  kind: 'aggregate';
  filter: Expr | undefined;
  fn: AggregateFn;
  field: PathExpr | undefined;
  op: CompareOp;
  value: LiteralExpr;
  span: Span;
}

/** One step's time constraint: relative to an earlier step's event or to now/today. */
export type StepWhen =
  | { kind: 'afterStep'; distance: Distance; label: string; span: Span }
  | { kind: 'relative'; relation: TimeRelation; span: Span };

/** `A: WHAT(cond) WHEN(< 1 hour after B)`. */
export interface ChainStep {
  label: string;
  what: Expr;
  when: StepWhen | undefined;
  span: Span;
}

/** `chain(xEvent, timestamp, [steps])`: events matching the steps in order. */
export interface ChainExpr {
  kind: 'chain';
  timestampField: PathExpr;
  steps: ChainStep[];
  span: Span;
}

/** A parsed query together with its text (needed to quote clauses back). */
export interface QueryAst {
  source: string;
  root: Expr;
}
