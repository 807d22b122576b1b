/**
 * Decides how an audience is evaluated — `edge` (inside the page request), `streaming` (on every
 * profile change) or `batch` (on schedule) — and says why. Starts from Adobe's documented rules
 * and goes further where that is still correct: counts, sums and sequences whose windows fit in
 * the event-retention horizon the streaming evaluator keeps are streaming too.
 */
import type { ChainExpr, Distance, Expr, QueryAst, TimeRelation } from './ast.js';
import { walkExpr } from './dependencies.js';
import { DAY_MS, maxUnitMs } from './time.js';

/** Where an audience is evaluated. */
export type EvaluationMethod = 'edge' | 'streaming' | 'batch';

/** Tuning of the classifier. */
export interface ClassifyOptions {
  /** How far back the streaming evaluator is guaranteed to see events. Default 30 days. */
  eventRetentionMs?: number;
  /** Longest event window evaluated at the edge and by Adobe's streaming rules. Default 24 hours. */
  shortWindowMs?: number;
  /** Evaluation method of audiences referenced by `inSegment`; undefined = unknown (treated as batch). */
  methodOf?: (audienceId: string) => EvaluationMethod | undefined;
}

/** The decision and the reasoning behind it. */
export interface Classification {
  method: EvaluationMethod;
  /** One sentence a user can read in the console. */
  reason: string;
  /** What the classifier found, clause by clause. */
  notes: string[];
}

/** Default event-retention horizon for streaming (30 days). */
export const DEFAULT_EVENT_RETENTION_MS = 30 * DAY_MS;

interface EventClause {
  kind: 'select' | 'aggregate' | 'chain';
  /** How far back in time the clause needs events (Infinity when unbounded). */
  lookbackMs: number;
  /** An existence test (select, count() > 0) not under `not`: true only when an event arrives. */
  positiveExistence: boolean;
  text: string;
}

function distanceReach(d: Distance): number {
  if (d.kind === 'between') return d.high * maxUnitMs(d.unit);
  if (d.op === '>' || d.op === '>=' || d.op === '!=') return Infinity;
  return (d.op === '=' ? d.amount + 1 : d.amount) * maxUnitMs(d.unit);
}

function relationReach(rel: TimeRelation): number {
  // After now: only events to come. After the start of today: as far back as today began.
  if (rel.direction === 'after') return rel.anchor === 'today' ? DAY_MS : 0;
  return distanceReach(rel.distance) + (rel.anchor === 'today' ? DAY_MS : 0);
}

/** How far back an event filter can reach, from its conditions on `timestamp`. */
function lookback(e: Expr | undefined): number {
  if (!e) return Infinity;
  switch (e.kind) {
    case 'and':
      return Math.min(...e.operands.map(lookback));
    case 'or':
      return Math.max(...e.operands.map(lookback));
    case 'occurs':
      return e.target.scope === 'event' && e.target.segments.join('.') === 'timestamp' ? relationReach(e.relation) : Infinity;
    case 'constant':
      return e.value ? Infinity : 0;
    default:
      return Infinity;
  }
}

/** A chain reaches back as far as its first step can lie: some step's window plus the WHEN gaps before it. */
function chainLookback(e: ChainExpr): number {
  let best = Infinity;
  let gaps = 0;
  for (const [idx, st] of e.steps.entries()) {
    if (idx > 0) {
      const w = st.when;
      const prev = e.steps[idx - 1]?.label;
      gaps += w?.kind === 'afterStep' && w.label === prev ? distanceReach(w.distance) : Infinity;
    }
    const own = Math.min(lookback(st.what), st.when?.kind === 'relative' ? relationReach(st.when.relation) : Infinity);
    best = Math.min(best, own + gaps);
  }
  return best;
}

function human(ms: number): string {
  if (ms === Infinity) return 'all time';
  if (ms % DAY_MS === 0) return `${ms / DAY_MS} day(s)`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} hour(s)`;
  return `${Math.round(ms / 60_000)} minute(s)`;
}

function collect(ast: QueryAst): { events: EventClause[]; refs: string[] } {
  const events: EventClause[] = [];
  const refs: string[] = [];
  const visit = (e: Expr, negated: boolean): void => {
    const text = ast.source.slice(e.span.start, e.span.end);
    const short = text.length > 80 ? `${text.slice(0, 77)}...` : text;
    switch (e.kind) {
      case 'not':
        visit(e.operand, !negated);
        return;
      case 'and':
      case 'or':
        for (const o of e.operands) visit(o, negated);
        return;
      case 'select':
        events.push({ kind: 'select', lookbackMs: lookback(e.where), positiveExistence: !negated, text: short });
        walkExpr(e.where ?? { kind: 'constant', value: true, span: e.span }, (x) => x.kind === 'inSegment' && refs.push(x.audienceId));
        return;
      case 'aggregate': {
        const v = e.value.value;
        const existence = e.fn === 'count' && ((e.op === '>' && v === 0) || (e.op === '>=' && v === 1));
        events.push({ kind: 'aggregate', lookbackMs: lookback(e.filter), positiveExistence: existence && !negated, text: short });
        if (e.filter) walkExpr(e.filter, (x) => x.kind === 'inSegment' && refs.push(x.audienceId));
        return;
      }
      case 'chain':
        events.push({ kind: 'chain', lookbackMs: chainLookback(e), positiveExistence: false, text: short });
        walkExpr(e, (x) => x.kind === 'inSegment' && refs.push(x.audienceId));
        return;
      case 'inSegment':
        refs.push(e.audienceId);
        return;
      default:
        return;
    }
  };
  visit(ast.root, false);
  return { events, refs: [...new Set(refs)] };
}

/**
 * How far back in time the query's event conditions reach (ms): the longest of its clauses'
 * reaches, Infinity when one has no time window, 0 when it tests no events. Events older than
 * this cannot change whether a profile is in the audience, now or later.
 */
export function eventLookbackMs(query: QueryAst | { ast: QueryAst }): number {
  const ast = 'root' in query ? query : query.ast;
  let reach = 0;
  // Every event clause, wherever it is (inside another's filter too).
  walkExpr(ast.root, (e) => {
    if (e.kind === 'select') reach = Math.max(reach, lookback(e.where));
    else if (e.kind === 'aggregate') reach = Math.max(reach, lookback(e.filter));
    else if (e.kind === 'chain') reach = Math.max(reach, chainLookback(e));
  });
  return reach;
}

/** Classifies a parsed (ideally checked) query. */
export function classifyAudience(query: QueryAst | { ast: QueryAst }, options: ClassifyOptions = {}): Classification {
  const ast = 'root' in query ? query : query.ast;
  const retention = options.eventRetentionMs ?? DEFAULT_EVENT_RETENTION_MS;
  const short = options.shortWindowMs ?? DAY_MS;
  const { events, refs } = collect(ast);
  const notes: string[] = [];
  let ceiling: EvaluationMethod = 'edge';
  for (const id of refs) {
    const m = options.methodOf?.(id);
    notes.push(`inSegment("${id}") refers to ${m ? `a ${m}` : 'an unknown (assumed batch)'} audience`);
    if (m === undefined || m === 'batch') ceiling = 'batch';
    else if (m === 'streaming' && ceiling === 'edge') ceiling = 'streaming';
  }
  for (const c of events) {
    notes.push(`${c.kind} \`${c.text}\` needs events from the last ${human(c.lookbackMs)}${c.positiveExistence ? ' (existence)' : ''}`);
  }
  const cap = (m: EvaluationMethod, reason: string): Classification => {
    if (ceiling === 'batch' && m !== 'batch') {
      return { method: 'batch', reason: 'it refers (inSegment) to an audience that is batch or unknown, whose membership only changes when the batch job runs', notes };
    }
    if (ceiling === 'streaming' && m === 'edge') {
      return { method: 'streaming', reason: 'it would fit the edge, but refers (inSegment) to a streaming audience the edge cannot evaluate in-request', notes };
    }
    return { method: m, reason, notes };
  };

  if (events.length === 0) return cap('edge', 'it uses profile attributes only');

  const only = events[0];
  if (events.length === 1 && only && only.kind !== 'chain' && (only.kind === 'select' || only.positiveExistence) && (only.lookbackMs <= short || (only.positiveExistence && only.lookbackMs === Infinity))) {
    const windowText = only.lookbackMs <= short ? `within ${human(only.lookbackMs)}` : 'with no time window (the incoming hit; Adobe edge rule)';
    return cap('edge', `it tests a single event ${windowText}, optionally with profile attributes`);
  }
  const unbounded = events.filter((c) => c.lookbackMs > retention && !(c.positiveExistence && events.length === 1 && c.lookbackMs === Infinity));
  if (unbounded.length > 0) {
    const first = unbounded[0] as EventClause;
    const why = first.lookbackMs === Infinity ? 'has no upper time window' : `looks back ${human(first.lookbackMs)}`;
    return cap('batch', `\`${first.text}\` ${why}, beyond the ${human(retention)} of events streaming keeps`);
  }
  if (events.every((c) => c.lookbackMs <= short && c.kind !== 'aggregate')) {
    return cap('streaming', `all its event conditions fall within ${human(short)} (Adobe's streaming rules)`);
  }
  return cap('streaming', `every event condition (counts, sums, sequences) has a window within the ${human(retention)} event-retention horizon, so each profile change can re-evaluate it exactly`);
}
