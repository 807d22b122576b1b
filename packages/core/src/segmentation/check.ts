/**
 * Type checker: resolves every path against the sandbox's union schemas and checks that each
 * operator gets values it can work with. It collects all problems (not just the first), each
 * with a position, and suggests the closest known path for unknown fields.
 */
import type { FieldDef } from '../schema/types.js';
import type { Distance, Expr, LiteralExpr, Operand, PathExpr, QueryAst, Span } from './ast.js';
import { AudienceQueryError, AudienceTypeError, makeDiagnostic, type AudienceDiagnostic } from './errors.js';
import { regexProblem } from './matchers.js';
import { parseAudience } from './parser.js';
import { listPaths, resolvePath, withImplicitEventFields, type ResolvedPath, type ValueType } from './schema-paths.js';
import { parseInstant } from './time.js';

/** Union schemas of the sandbox, one root object field per class. */
export interface AudienceSchemas {
  profile: FieldDef;
  event: FieldDef;
}

/** A query that passed the checker: the AST plus each path's resolution, ready to compile. */
export interface CheckedAudience {
  readonly ast: QueryAst;
  readonly paths: ReadonlyMap<PathExpr, ResolvedPath>;
}

class Checker {
  readonly diagnostics: AudienceDiagnostic[] = [];
  readonly paths = new Map<PathExpr, ResolvedPath>();
  private readonly roots: Record<'profile' | 'event', FieldDef>;
  private readonly known: Partial<Record<'profile' | 'event', string[]>> = {};
  /** The `select` variable while checking its where clause (for hints about forgotten prefixes). */
  private variable: string | undefined;

  constructor(private readonly source: string, schemas: AudienceSchemas) {
    this.roots = { profile: schemas.profile, event: withImplicitEventFields(schemas.event) };
  }

  private error(span: Span, reason: string, text: string, suggestion?: string): void {
    if (this.diagnostics.length >= 50) return;
    this.diagnostics.push(makeDiagnostic(this.source, span, reason, text, suggestion === undefined ? {} : { suggestion }));
  }

  private knownPaths(scope: 'profile' | 'event'): string[] {
    let k = this.known[scope];
    if (!k) {
      k = listPaths(this.roots[scope]);
      this.known[scope] = k;
    }
    return k;
  }

  path(p: PathExpr): ResolvedPath | undefined {
    const r = resolvePath(this.roots[p.scope], p.segments, () => this.knownPaths(p.scope));
    if (r.ok) {
      this.paths.set(p, r.path);
      return r.path;
    }
    const written = p.segments.join('.');
    const what = p.scope === 'event' ? 'event field' : 'profile field';
    if (r.problem.kind === 'unknown') {
      const prefix = p.segments.slice(0, r.problem.at + 1).join('.');
      const asEvent = p.scope === 'profile' && this.variable !== undefined && resolvePath(this.roots.event, p.segments, () => []).ok;
      const hint = asEvent
        ? `; event fields need the variable: ${this.variable}.${written}`
        : r.problem.suggestion
          ? `; did you mean '${r.problem.suggestion}'?`
          : '';
      if (asEvent) {
        this.error(p.span, 'unknown-field', `unknown ${what} '${prefix}'${hint}`, `${this.variable}.${written}`);
        return undefined;
      }
      this.error(p.span, 'unknown-field', `unknown ${what} '${prefix}'${prefix === written ? '' : ` in '${written}'`}${hint}`, r.problem.suggestion);
    } else {
      const parent = p.segments.slice(0, r.problem.at).join('.');
      this.error(p.span, 'type', `'${parent}' is ${article(r.problem.parentType)} field and has no field '${p.segments[r.problem.at] ?? ''}'`);
    }
    return undefined;
  }

  check(e: Expr, nested: boolean): void {
    switch (e.kind) {
      case 'constant':
      case 'inSegment':
        if (e.kind === 'inSegment' && e.audienceId.trim() === '') this.error(e.span, 'type', 'inSegment needs a non-empty audience id');
        return;
      case 'and':
      case 'or':
        for (const o of e.operands) this.check(o, nested);
        return;
      case 'not':
        this.check(e.operand, nested);
        return;
      case 'compare':
        this.compare(e.op, e.left, e.right, e.span);
        return;
      case 'in': {
        const t = this.comparable(e.target, e.negated ? 'notIn' : 'in');
        if (t) for (const v of e.values) this.literalFits(v, t, e.negated ? 'notIn' : 'in');
        return;
      }
      case 'like':
        this.stringTarget(e.target, 'like');
        return;
      case 'exists':
        this.path(e.target);
        return;
      case 'between': {
        const t = this.comparable(e.target, 'between');
        if (t && this.literalFits(e.low, t, 'between') && this.literalFits(e.high, t, 'between')) {
          const lo = t.type === 'date' ? parseInstant(e.low.value) : e.low.value;
          const hi = t.type === 'date' ? parseInstant(e.high.value) : e.high.value;
          if (lo !== null && hi !== null && lo > hi) this.error(e.span, 'type', 'between: the low bound is greater than the high bound, so this never holds');
        }
        return;
      }
      case 'stringFn': {
        this.stringTarget(e.target, `${e.fn}()`);
        if (e.fn === 'matches' && typeof e.argument.value === 'string') {
          const problem = regexProblem(e.argument.value);
          if (problem) this.error(e.argument.span, 'regex', problem);
        }
        return;
      }
      case 'occurs': {
        const t = this.path(e.target);
        if (t && t.type !== 'date') this.error(e.target.span, 'type', `occurs needs a date or date-time field, but '${e.target.segments.join('.')}' is ${article(t.fieldType)}`);
        this.distance(e.relation.distance, e.span);
        return;
      }
      case 'select':
        if (nested) this.error(e.span, 'nesting', 'event clauses (select, xEvent, chain) cannot be nested inside another event clause');
        this.variable = e.variable;
        if (e.where) this.check(e.where, true);
        this.variable = undefined;
        return;
      case 'aggregate':
        if (nested) this.error(e.span, 'nesting', 'event clauses (select, xEvent, chain) cannot be nested inside another event clause');
        if (e.filter) this.check(e.filter, true);
        if (e.field) {
          const t = this.path(e.field);
          if (t && t.type !== 'number') this.error(e.field.span, 'type', `${e.fn}() needs a number field, but '${e.field.segments.join('.')}' is ${article(t.fieldType)}`);
        }
        return;
      case 'chain': {
        if (nested) this.error(e.span, 'nesting', 'event clauses (select, xEvent, chain) cannot be nested inside another event clause');
        const ts = e.timestampField.segments.join('.');
        if (ts !== 'timestamp') this.error(e.timestampField.span, 'type', `chain orders events by 'timestamp' only, not '${ts}'`);
        const labels = new Set<string>();
        for (const [index, step] of e.steps.entries()) {
          if (labels.has(step.label)) this.error(step.span, 'label', `step label '${step.label}' is used twice`);
          this.check(step.what, true);
          if (step.when?.kind === 'afterStep') {
            if (index === 0) this.error(step.when.span, 'label', 'the first step cannot be timed after another step');
            else if (!labels.has(step.when.label)) {
              this.error(step.when.span, 'label', `WHEN refers to '${step.when.label}', which is not an earlier step (earlier: ${[...labels].join(', ')})`);
            }
          }
          if (step.when) this.distance(step.when.kind === 'afterStep' ? step.when.distance : step.when.relation.distance, step.when.span);
          labels.add(step.label);
        }
        return;
      }
    }
  }

  private distance(d: Distance, span: Span): void {
    if (d.kind === 'compare' && d.op === '!=') this.error(span, 'type', "'!=' is not a time distance; use 'not (... occurs = ...)'");
  }

  /** A path whose leaf can be ordered/compared (not an object or map). */
  private comparable(p: PathExpr, op: string): ResolvedPath | undefined {
    const t = this.path(p);
    if (t && (t.type === 'object' || t.type === 'map')) {
      this.error(p.span, 'type', `${op} cannot be applied to '${p.segments.join('.')}', which is ${article(t.fieldType)}; name one of its fields`);
      return undefined;
    }
    return t;
  }

  private stringTarget(p: PathExpr, op: string): void {
    const t = this.path(p);
    if (t && t.type !== 'string') this.error(p.span, 'type', `${op} needs a string field, but '${p.segments.join('.')}' is ${article(t.fieldType)}`);
  }

  /** Whether literal `v` can be compared with the field `t`; reports the mismatch if not. */
  private literalFits(v: LiteralExpr, t: ResolvedPath, op: string): boolean {
    const name = t.segments.join('.');
    if (v.value === null) {
      if (op === '=' || op === '!=') return true;
      this.error(v.span, 'type', `null can only be used with = and !=`);
      return false;
    }
    const lit = literalType(v);
    if (t.type === 'date') {
      if (typeof v.value === 'string' && !Number.isNaN(parseInstant(v.value))) return true;
      this.error(v.span, 'type', `'${name}' is a ${t.fieldType} field; compare it with a date string like "2024-01-31" or "2024-01-31T12:00:00Z", not ${describeLiteral(v)}`);
      return false;
    }
    if (lit !== t.type) {
      this.error(v.span, 'type', `'${name}' is ${article(t.fieldType)} field and cannot be compared with ${describeLiteral(v)}`);
      return false;
    }
    if (t.enumValues && typeof v.value === 'string' && !t.enumValues.includes(v.value)) {
      this.error(v.span, 'type', `${JSON.stringify(v.value)} is not a value of '${name}' (allowed: ${t.enumValues.map((x) => JSON.stringify(x)).join(', ')})`);
      return false;
    }
    if (t.type === 'boolean' && op !== '=' && op !== '!=' && op !== 'in' && op !== 'notIn') {
      this.error(v.span, 'type', `booleans can only be compared with = and !=`);
      return false;
    }
    return true;
  }

  private compare(op: string, left: Operand, right: Operand, span: Span): void {
    if (left.kind === 'literal' && right.kind === 'path') {
      this.compare(op, right, left, span);
      return;
    }
    if (left.kind === 'path') {
      const t = this.comparable(left, op);
      if (!t) {
        if (right.kind === 'path') this.path(right);
        return;
      }
      if (right.kind === 'literal') {
        this.literalFits(right, t, op);
        return;
      }
      const u = this.comparable(right, op);
      if (u && u.type !== t.type) {
        this.error(span, 'type', `cannot compare '${left.segments.join('.')}' (${t.fieldType}) with '${right.segments.join('.')}' (${u.fieldType})`);
      } else if (u && t.type === 'boolean' && op !== '=' && op !== '!=') {
        this.error(span, 'type', 'booleans can only be compared with = and !=');
      }
      return;
    }
    if (right.kind === 'literal') {
      const a = literalType(left);
      const b = literalType(right);
      if (left.value !== null && right.value !== null && a !== b) {
        this.error(span, 'type', `cannot compare ${describeLiteral(left)} with ${describeLiteral(right)}`);
      }
    }
  }
}

function literalType(v: LiteralExpr): ValueType | 'null' {
  if (v.value === null) return 'null';
  if (typeof v.value === 'string') return 'string';
  if (typeof v.value === 'number') return 'number';
  return 'boolean';
}

function describeLiteral(v: LiteralExpr): string {
  if (v.value === null) return 'null';
  return `${typeof v.value === 'string' ? 'the string' : `the ${typeof v.value}`} ${JSON.stringify(v.value)}`;
}

function article(fieldType: string): string {
  return /^[aeiou]/.test(fieldType) ? `an ${fieldType}` : `a ${fieldType}`;
}

/** Type-checks a parsed query; returns every problem found (empty when it is valid). */
export function diagnoseAst(ast: QueryAst, schemas: AudienceSchemas): { checked: CheckedAudience; diagnostics: AudienceDiagnostic[] } {
  const checker = new Checker(ast.source, schemas);
  checker.check(ast.root, false);
  return { checked: { ast, paths: checker.paths }, diagnostics: checker.diagnostics };
}

/** Type-checks a parsed query; throws `AudienceTypeError` listing every problem. */
export function checkAudience(ast: QueryAst, schemas: AudienceSchemas): CheckedAudience {
  const { checked, diagnostics } = diagnoseAst(ast, schemas);
  if (diagnostics.length > 0) throw new AudienceTypeError(diagnostics);
  return checked;
}

/**
 * Parses and checks without throwing — for editors and the API's validate endpoint. Syntax
 * errors yield one diagnostic; type errors yield all of them.
 */
export function diagnoseAudience(source: string, schemas: AudienceSchemas): { checked: CheckedAudience | undefined; diagnostics: AudienceDiagnostic[] } {
  let ast: QueryAst;
  try {
    ast = parseAudience(source);
  } catch (err) {
    if (err instanceof AudienceQueryError) return { checked: undefined, diagnostics: err.diagnostics };
    throw err;
  }
  const { checked, diagnostics } = diagnoseAst(ast, schemas);
  return { checked: diagnostics.length === 0 ? checked : undefined, diagnostics };
}
