/**
 * Recursive-descent parser of the audience language. It tracks what it would have accepted at
 * the furthest token so errors read "expected ')' or 'and' but found 'ecid' at line 2, column 14".
 */
import type {
  AggregateExpr, AggregateFn, ChainExpr, ChainStep, CompareOp, Distance, Expr, LiteralExpr, Operand,
  PathExpr, PathScope, QueryAst, SelectExpr, Span, StepWhen, StringFn, TimeRelation, TimeUnit,
} from './ast.js';
import { AudienceSyntaxError, makeDiagnostic } from './errors.js';
import { describeToken, tokenize, type Token } from './lexer.js';

/** Deepest nesting of parentheses / clauses accepted (keeps recursion far from the stack limit). */
export const MAX_NESTING = 64;

const COMPARE_OPS: readonly string[] = ['=', '!=', '<', '<=', '>', '>='];
const STRING_FNS: readonly StringFn[] = ['startsWith', 'endsWith', 'contains', 'matches'];
const AGGREGATE_FNS: readonly AggregateFn[] = ['count', 'sum', 'avg', 'min', 'max'];
const UNIT_LIST: readonly TimeUnit[] = ['seconds', 'minutes', 'hours', 'days', 'weeks', 'months', 'years'];
/** Singular and plural unit words. */
const UNITS: Record<string, TimeUnit> = Object.fromEntries(UNIT_LIST.flatMap((u) => [[u, u], [u.slice(0, -1), u]]));

/** How unqualified paths resolve where they appear. */
type PathContext = { kind: 'profile' } | { kind: 'event' } | { kind: 'variable'; name: string };

class Parser {
  private pos = 0;
  private depth = 0;
  private expected = new Set<string>();
  private expectedAt = -1;
  private context: PathContext = { kind: 'profile' };

  constructor(private readonly source: string, private readonly tokens: Token[]) {}

  parseQuery(): QueryAst {
    const root = this.parseOr();
    this.expectEnd();
    return { source: this.source, root };
  }

  // ---- token helpers -------------------------------------------------------------------------

  private peek(offset = 0): Token {
    const t = this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)];
    if (!t) throw new Error('token stream is empty');
    return t;
  }

  private note(what: string): void {
    if (this.expectedAt !== this.pos) {
      this.expected = new Set();
      this.expectedAt = this.pos;
    }
    this.expected.add(what);
  }

  private next(): Token {
    const t = this.peek();
    if (this.pos < this.tokens.length - 1) this.pos++;
    return t;
  }

  private isPunct(value: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'punct' && t.value === value;
  }

  private isWord(word: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'ident' && t.value === word;
  }

  private acceptPunct(value: string): Token | undefined {
    if (this.isPunct(value)) return this.next();
    this.note(`'${value}'`);
    return undefined;
  }

  private acceptWord(word: string): Token | undefined {
    if (this.isWord(word)) return this.next();
    this.note(`'${word}'`);
    return undefined;
  }

  private expectPunct = (value: string): Token => this.acceptPunct(value) ?? this.fail();
  private expectWord = (word: string): Token => this.acceptWord(word) ?? this.fail();

  private expectEnd(): void {
    if (this.peek().kind !== 'eof') {
      this.note('end of query');
      this.fail();
    }
  }

  /** Throws the syntax error for the current token, listing everything that would have fitted. */
  private fail(text?: string): never {
    const t = this.peek();
    const expected = this.expectedAt === this.pos ? [...this.expected] : [];
    const found = describeToken(t);
    const list = expected.length <= 1 ? expected.join('') : `${expected.slice(0, -1).join(', ')} or ${expected.at(-1) ?? ''}`;
    const message = text ?? `expected ${list || 'something else'} but found ${found}`;
    const span = t.kind === 'eof' ? { ...t.span, end: t.span.start + 1 } : t.span;
    throw new AudienceSyntaxError(makeDiagnostic(this.source, span, 'syntax', message, { expected, found }));
  }

  private failAt(span: Span, text: string): never {
    throw new AudienceSyntaxError(makeDiagnostic(this.source, span, 'syntax', text));
  }

  private spanFrom(first: Span): Span {
    const last = this.tokens[this.pos - 1]?.span ?? first;
    return { start: first.start, end: Math.max(first.end, last.end), line: first.line, column: first.column };
  }

  private nest<T>(fn: () => T): T {
    if (++this.depth > MAX_NESTING) this.fail(`query nests deeper than ${MAX_NESTING} levels`);
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  private withContext<T>(context: PathContext, fn: () => T): T {
    const saved = this.context;
    this.context = context;
    try {
      return fn();
    } finally {
      this.context = saved;
    }
  }

  // ---- boolean structure ---------------------------------------------------------------------

  private parseOr(): Expr {
    return this.nest(() => this.parseLogical('or', () => this.parseLogical('and', () => this.parseNot())));
  }

  private parseLogical(word: 'and' | 'or', operand: () => Expr): Expr {
    const first = operand();
    const operands = [first];
    while (this.acceptWord(word)) operands.push(operand());
    if (operands.length === 1) return first;
    const last = operands[operands.length - 1] ?? first;
    return { kind: word, operands, span: { ...first.span, end: last.span.end } };
  }

  private parseNot(): Expr {
    const t = this.acceptWord('not');
    if (!t) return this.parsePrimary();
    const operand = this.nest(() => this.parseNot());
    return { kind: 'not', operand, span: this.spanFrom(t.span) };
  }

  private parsePrimary(): Expr {
    const t = this.peek();
    const open = this.acceptPunct('(');
    if (open) {
      const inner = this.parseOr();
      this.expectPunct(')');
      return { ...inner, span: this.spanFrom(open.span) };
    }
    if ((this.isWord('true') || this.isWord('false')) && !this.isPunct('.', 1)) {
      this.next();
      return { kind: 'constant', value: t.value === 'true', span: t.span };
    }
    if (this.isWord('inSegment') && this.isPunct('(', 1)) {
      this.next();
      this.next();
      const id = this.expectString('an audience id string');
      this.expectPunct(')');
      return { kind: 'inSegment', audienceId: id.value, span: this.spanFrom(t.span) };
    }
    if (this.isWord('select')) return this.parseSelect();
    if (this.isWord('chain') && this.isPunct('(', 1)) return this.parseChain();
    if (this.isWord('xEvent')) return this.parseAggregate();
    if (t.kind !== 'ident' && t.kind !== 'quoted' && t.kind !== 'string' && t.kind !== 'number' && !this.isPunct('-')) {
      this.note('a condition');
      this.fail();
    }
    return this.parseCondition();
  }

  // ---- attribute conditions ------------------------------------------------------------------

  private parseCondition(): Expr {
    const start = this.peek().span;
    const left = this.parseOperand();
    if (left.kind === 'path' && left.method) return this.parseStringFn(left.path, left.method, start);
    const leftOperand: Operand = left.kind === 'path' ? left.path : left.literal;
    const op = this.acceptCompareOp();
    if (op) {
      const right = this.parseOperand();
      if (right.kind === 'path' && right.method) this.failAt(right.method.span, `a string function cannot be compared; write it as its own condition`);
      const rightOperand: Operand = right.kind === 'path' ? right.path : right.literal;
      return { kind: 'compare', op, left: leftOperand, right: rightOperand, span: this.spanFrom(start) };
    }
    if (leftOperand.kind !== 'path') this.fail();
    const target = leftOperand;
    if (this.acceptWord('in')) return this.parseInList(target, false, start);
    if (this.acceptWord('notIn')) return this.parseInList(target, true, start);
    if (this.acceptWord('like')) {
      const pattern = this.expectString('a like pattern string');
      return { kind: 'like', target, pattern: this.stringLiteral(pattern), span: this.spanFrom(start) };
    }
    if (this.acceptWord('exists')) return { kind: 'exists', target, span: this.spanFrom(start) };
    if (this.acceptWord('between')) {
      const low = this.parseLiteral();
      this.expectWord('and');
      const high = this.parseLiteral();
      return { kind: 'between', target, low, high, span: this.spanFrom(start) };
    }
    if (this.acceptWord('occurs')) {
      const relation = this.parseRelation();
      return { kind: 'occurs', target, relation, span: this.spanFrom(start) };
    }
    this.note("'.'");
    return this.fail();
  }

  private parseInList(target: PathExpr, negated: boolean, start: Span): Expr {
    this.expectPunct('[');
    const values: LiteralExpr[] = [];
    if (!this.isPunct(']')) {
      do values.push(this.parseLiteral());
      while (this.acceptPunct(','));
    }
    this.expectPunct(']');
    return { kind: 'in', negated, target, values, span: this.spanFrom(start) };
  }

  private parseStringFn(target: PathExpr, method: Token, start: Span): Expr {
    const fn = STRING_FNS.find((f) => f === method.value);
    if (!fn) this.failAt(method.span, `unknown function '${method.value}'; expected one of ${STRING_FNS.join(', ')}`);
    this.expectPunct('(');
    const argument = this.stringLiteral(this.expectString(`a string argument to ${fn}()`));
    let caseSensitive = true;
    if (fn === 'contains' && this.acceptPunct(',')) {
      if (this.acceptWord('true')) caseSensitive = true;
      else if (this.acceptWord('false')) caseSensitive = false;
      else this.fail();
    }
    this.expectPunct(')');
    return { kind: 'stringFn', fn, target, argument, caseSensitive, span: this.spanFrom(start) };
  }

  private acceptCompareOp(): CompareOp | undefined {
    const t = this.peek();
    if (t.kind === 'punct' && COMPARE_OPS.includes(t.value)) {
      this.next();
      return t.value as CompareOp;
    }
    this.note('a comparison operator');
    return undefined;
  }

  /** A literal, or a path possibly ending in `.method(`. */
  private parseOperand():
    | { kind: 'literal'; literal: LiteralExpr }
    | { kind: 'path'; path: PathExpr; method: Token | undefined } {
    const t = this.peek();
    if (t.kind === 'string' || t.kind === 'number' || this.isPunct('-') || ((this.isWord('true') || this.isWord('false') || this.isWord('null')) && !this.isPunct('.', 1))) {
      return { kind: 'literal', literal: this.parseLiteral() };
    }
    return this.parsePath(true);
  }

  private parseLiteral(): LiteralExpr {
    const t = this.peek();
    if (t.kind === 'string') return this.stringLiteral(this.next());
    if (this.isWord('true') || this.isWord('false')) {
      this.next();
      return { kind: 'literal', value: t.value === 'true', span: t.span };
    }
    if (this.isWord('null')) {
      this.next();
      return { kind: 'literal', value: null, span: t.span };
    }
    const value = this.parseNumber();
    return { kind: 'literal', value, span: this.spanFrom(t.span) };
  }

  private parseNumber(): number {
    const minus = this.acceptPunct('-');
    const t = this.peek();
    if (t.kind !== 'number') {
      this.note('a number');
      if (!minus) {
        this.note('a string');
        this.note("'true', 'false' or 'null'");
      }
      this.fail();
    }
    this.next();
    const n = Number(t.value);
    if (!Number.isFinite(n)) this.failAt(t.span, `number ${t.value} is out of range`);
    return minus ? -n : n;
  }

  private stringLiteral(t: Token): LiteralExpr {
    return { kind: 'literal', value: t.value, span: t.span };
  }

  private expectString(what: string): Token {
    const t = this.peek();
    if (t.kind === 'string') return this.next();
    this.note(what);
    return this.fail();
  }

  private parsePath(allowMethod: boolean): { kind: 'path'; path: PathExpr; method: Token | undefined } {
    const first = this.peek();
    if (first.kind !== 'ident' && first.kind !== 'quoted') {
      this.note('a field path');
      this.fail();
    }
    const segments: string[] = [this.next().value];
    let method: Token | undefined;
    while (this.isPunct('.')) {
      const seg = this.peek(1);
      if (seg.kind !== 'ident' && seg.kind !== 'quoted') {
        this.next();
        this.note('a field name');
        this.fail();
      }
      if (allowMethod && seg.kind === 'ident' && this.isPunct('(', 2)) {
        this.next();
        method = this.next();
        break;
      }
      this.next();
      segments.push(this.next().value);
    }
    const span = this.spanFrom(first.span);
    const pathSpan = method ? { ...span, end: this.tokens[this.pos - 2]?.span.end ?? span.end } : span;
    return { kind: 'path', path: this.scopePath(segments, pathSpan), method };
  }

  private scopePath(segments: string[], span: Span): PathExpr {
    const ctx = this.context;
    let scope: PathScope = ctx.kind === 'event' ? 'event' : 'profile';
    if (ctx.kind === 'variable' && segments[0] === ctx.name) {
      if (segments.length === 1) this.failAt(span, `'${ctx.name}' is the event itself; name one of its fields, e.g. ${ctx.name}.eventType`);
      segments = segments.slice(1);
      scope = 'event';
    }
    return { kind: 'path', scope, segments, span };
  }

  // ---- time relations ------------------------------------------------------------------------

  private parseDistance(): Distance {
    if (this.acceptWord('between')) {
      const low = this.parseNumber();
      this.expectWord('and');
      const high = this.parseNumber();
      const unit = this.parseUnit([low, high]);
      if (low > high) this.failAt(this.tokens[this.pos - 1]?.span ?? this.peek().span, `between ${low} and ${high}: the first bound must not exceed the second`);
      return { kind: 'between', low, high, unit };
    }
    const op = (this.acceptCompareOp() ?? this.fail());
    const amount = this.parseNumber();
    const unit = this.parseUnit([amount]);
    return { kind: 'compare', op, amount, unit };
  }

  private parseUnit(amounts: number[]): TimeUnit {
    const t = this.peek();
    const unit = t.kind === 'ident' && Object.prototype.hasOwnProperty.call(UNITS, t.value) ? UNITS[t.value] : undefined;
    if (!unit) {
      this.note('a time unit (seconds, minutes, hours, days, weeks, months, years)');
      this.fail();
    }
    this.next();
    for (const a of amounts) {
      if (a < 0) this.failAt(t.span, 'a time distance cannot be negative');
      if ((unit === 'months' || unit === 'years') && !Number.isInteger(a)) this.failAt(t.span, `${unit} must be counted in whole numbers`);
    }
    return unit;
  }

  private parseAnchor(): TimeRelation['anchor'] {
    if (this.acceptWord('now')) return 'now';
    if (this.acceptWord('today')) return 'today';
    return this.fail();
  }

  private parseRelation(): TimeRelation {
    const distance = this.parseDistance();
    const direction = this.acceptWord('before') ? 'before' : this.acceptWord('after') ? 'after' : this.fail();
    return { distance, direction, anchor: this.parseAnchor() };
  }

  // ---- events --------------------------------------------------------------------------------

  private parseSelect(): SelectExpr {
    const start = this.expectWord('select').span;
    const variable = this.peek();
    if (variable.kind !== 'ident') {
      this.note('an event variable name (e.g. X)');
      this.fail();
    }
    this.next();
    this.expectWord('from');
    this.expectWord('xEvent');
    let where: Expr | undefined;
    if (this.acceptWord('where')) {
      where = this.withContext({ kind: 'variable', name: variable.value }, () => this.parseOr());
    }
    return { kind: 'select', variable: variable.value, where, span: this.spanFrom(start) };
  }

  private parseAggregate(): AggregateExpr {
    const start = this.expectWord('xEvent').span;
    let filter: Expr | undefined;
    if (this.acceptPunct('[')) {
      filter = this.withContext({ kind: 'event' }, () => this.parseOr());
      this.expectPunct(']');
    }
    this.expectPunct('.');
    const fnToken = this.peek();
    const fn = AGGREGATE_FNS.find((f) => fnToken.kind === 'ident' && f === fnToken.value);
    if (!fn) {
      this.note(`an aggregate (${AGGREGATE_FNS.map((f) => `${f}()`).join(', ')})`);
      this.fail();
    }
    this.next();
    this.expectPunct('(');
    let field: PathExpr | undefined;
    if (fn !== 'count') field = this.withContext({ kind: 'event' }, () => this.parsePath(false).path);
    this.expectPunct(')');
    const op = (this.acceptCompareOp() ?? this.fail());
    const valueStart = this.peek().span;
    const value: LiteralExpr = { kind: 'literal', value: this.parseNumber(), span: valueStart };
    value.span = this.spanFrom(valueStart);
    return { kind: 'aggregate', filter, fn, field, op, value, span: this.spanFrom(start) };
  }

  private parseChain(): ChainExpr {
    const start = this.expectWord('chain').span;
    this.expectPunct('(');
    this.expectWord('xEvent');
    this.expectPunct(',');
    const timestampField = this.withContext({ kind: 'event' }, () => this.parsePath(false).path);
    this.expectPunct(',');
    this.expectPunct('[');
    const steps: ChainStep[] = [];
    do steps.push(this.parseStep());
    while (this.acceptPunct(','));
    this.expectPunct(']');
    this.expectPunct(')');
    return { kind: 'chain', timestampField, steps, span: this.spanFrom(start) };
  }

  /** `WHEN(distance after LABEL)` or `WHEN(distance before|after now|today)`. */
  private parseWhen(start: Span): StepWhen {
    this.expectPunct('(');
    const distance = this.parseDistance();
    let when: StepWhen;
    const direction = this.acceptWord('before') ? 'before' : this.expectWord('after') && 'after';
    if (direction === 'before' || this.isWord('now') || this.isWord('today')) {
      when = { kind: 'relative', relation: { distance, direction, anchor: this.parseAnchor() }, span: start };
    } else {
      const ref = this.peek();
      if (ref.kind !== 'ident') {
        this.note('a step label, now or today');
        this.fail();
      }
      this.next();
      when = { kind: 'afterStep', distance, label: ref.value, span: ref.span };
    }
    this.expectPunct(')');
    if (when.kind === 'relative') when.span = this.spanFrom(start);
    return when;
  }

  private parseStep(): ChainStep {
    const label = this.peek();
    if (label.kind !== 'ident' || label.value === 'now' || label.value === 'today') {
      this.note('a step label (e.g. A)');
      this.fail();
    }
    this.next();
    this.expectPunct(':');
    this.expectWord('WHAT');
    this.expectPunct('(');
    const what = this.withContext({ kind: 'event' }, () => this.parseOr());
    this.expectPunct(')');
    const whenToken = this.acceptWord('WHEN');
    const when = whenToken ? this.parseWhen(whenToken.span) : undefined;
    return { label: label.value, what, when, span: this.spanFrom(label.span) };
  }
}

/** Parses query text into an AST; throws `AudienceSyntaxError` (line, column, caret, expected) on bad input. */
export function parseAudience(source: string): QueryAst {
  return new Parser(source, tokenize(source)).parseQuery();
}
