/**
 * Which new events can change an audience's result. An event takes part in an event clause
 * (`select X from xEvent where …`, `xEvent[filter].count() …`, a chain's steps) only if it
 * passes the clause's condition. The conjuncts of that condition that read nothing but the event
 * itself (`X.eventType = "commerce.purchases"`, `X.web.webPageDetails.siteSection in [...]`; not
 * time relations, which move with `now`, nor comparisons with profile attributes) decide alone
 * that an event can never pass: if one of them is false for the event, adding the event leaves
 * the clause — and so the audience — as it was. Attribute-only audiences are untouched by any
 * event; a clause with no such conjunct (no condition, or only timed ones) is touched by every
 * event. The conjuncts are the compiled leaves themselves, run on the new event, so this check
 * and evaluation can never disagree on what a condition means.
 *
 * The segmentation engine uses it to re-evaluate, when events are added to a profile it has
 * evaluated, only the audiences those events can touch.
 */
import type { Expr, Operand, PathExpr } from './ast.js';
import type { Program, Test } from './program.js';
import type { EvalState } from './runtime.js';
import type { ResolvedPath } from './schema-paths.js';

/**
 * Whether some event of a state (bound to a context holding only the new events) can change
 * the audience: `false` for audiences no event can change, `true` for those every event may.
 */
export type EventRelevance = boolean | ((s: EvalState) => boolean);

/**
 * One conjunct that reads only the event: its compiled test, and a key naming what it tests
 * (the leaf's expression and the schema types of its paths), equal for equal tests whichever
 * audience they come from.
 */
export interface EventTerm {
  key: string;
  test: Test;
}

/**
 * The relevance as data: per event clause, per alternative (a chain's steps; one otherwise), the
 * terms an event must all pass; or `true` / `false` as in EventRelevance.
 */
export type RelevanceTerms = boolean | EventTerm[][][];

/** Leaf kinds that read one value of their own scope and nothing else (no time, no other audience). */
const STATIC_LEAVES = new Set<Expr['kind']>(['compare', 'in', 'like', 'exists', 'between', 'stringFn']);

const eventOnly = (o: Operand): boolean => o.kind === 'literal' || o.scope === 'event';

/** Whether a leaf reads only the event under consideration (literals aside). */
function readsOnlyTheEvent(e: Expr): boolean {
  if (!STATIC_LEAVES.has(e.kind)) return false;
  if (e.kind === 'compare') return eventOnly(e.left) && eventOnly(e.right) && (e.left.kind === 'path' || e.right.kind === 'path');
  return 'target' in e && e.target.scope === 'event';
}

/** The terms of a condition's conjuncts that read only the event (none: every event may pass). */
function eventConjuncts(p: Program, key: (e: Expr) => string): EventTerm[] {
  if (p.expr.kind === 'and') return p.children.flatMap((c) => eventConjuncts(c, key));
  return readsOnlyTheEvent(p.expr) ? [{ key: key(p.expr), test: p.test }] : [];
}

/** A leaf's key: its expression without source positions, and the resolved schema path of each path in it. */
function termKey(paths: ReadonlyMap<PathExpr, ResolvedPath>): (e: Expr) => string {
  return (e) => {
    const resolved: Array<ResolvedPath | undefined> = [];
    const text = JSON.stringify(e, (k, v: unknown) => {
      if (k === 'span') return undefined;
      if (typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'path') resolved.push(paths.get(v as PathExpr));
      return v;
    });
    return `${text}|${JSON.stringify(resolved)}`;
  };
}

/** The relevance of new events to a compiled query, as data (see the file comment and RelevanceTerms). */
export function relevanceTerms(root: Program, paths: ReadonlyMap<PathExpr, ResolvedPath>): RelevanceTerms {
  const key = termKey(paths);
  const clauses: EventTerm[][][] = [];
  let every = false;
  const visit = (p: Program): void => {
    if (!p.perEvent) {
      p.children.forEach(visit);
      return;
    }
    // The clause's conditions (a select's where, an aggregate's filter, a chain's steps; the
    // checker allows no event clause inside them).
    if (p.children.length === 0) {
      every = true;
      return;
    }
    const alternatives = p.children.map((c) => eventConjuncts(c, key));
    if (alternatives.some((terms) => terms.length === 0)) every = true;
    else clauses.push(alternatives);
  };
  visit(root);
  if (every) return true;
  if (!clauses.length) return false;
  return clauses;
}

/** The relevance of new events to a compiled query, as one function (see relevanceTerms). */
export function eventRelevance(terms: RelevanceTerms): EventRelevance {
  if (typeof terms === 'boolean') return terms;
  const index = new RelevanceIndex([terms]);
  return (s) => index.touched(s)[0] === 1;
}

/**
 * The relevance of many audiences at once: each distinct term (by key) runs once per new event,
 * however many audiences share it — 150 audiences over a handful of event types and page
 * sections share a few dozen terms.
 */
export class RelevanceIndex {
  /** The distinct terms' tests. */
  private readonly tests: Test[] = [];
  /** Per audience: `true`/`false`, or per clause and alternative the indexes of its terms. */
  private readonly audiences: Array<boolean | number[][][]>;
  /** Per term: 0 not run yet for the event, 1 passes, 2 fails (reused across calls). */
  private readonly memo: Uint8Array;
  private readonly out: Uint8Array;

  constructor(all: readonly RelevanceTerms[]) {
    const ids = new Map<string, number>();
    const id = (t: EventTerm): number => {
      let n = ids.get(t.key);
      if (n === undefined) {
        ids.set(t.key, (n = this.tests.length));
        this.tests.push(t.test);
      }
      return n;
    };
    this.audiences = all.map((terms) => (typeof terms === 'boolean' ? terms : terms.map((alternatives) => alternatives.map((conj) => conj.map(id)))));
    this.memo = new Uint8Array(this.tests.length);
    this.out = new Uint8Array(all.length);
  }

  /**
   * Per audience (in the constructor's order), 1 when an event of the state (bound to the new
   * events only) can change it, else 0. The array is reused by the next call.
   */
  touched(s: EvalState): Uint8Array {
    const out = this.out;
    out.fill(0);
    const n = s.events.length;
    for (let i = 0; i < n; i++) {
      this.memo.fill(0);
      for (let a = 0; a < this.audiences.length; a++) {
        if (out[a]) continue;
        const r = this.audiences[a]!;
        if (typeof r === 'boolean') {
          if (r) out[a] = 1;
          continue;
        }
        if (this.passesSome(r, s, i)) out[a] = 1;
      }
    }
    return out;
  }

  private passesSome(clauses: number[][][], s: EvalState, i: number): boolean {
    const memo = this.memo;
    for (const alternatives of clauses) {
      for (const conj of alternatives) {
        let passes = true;
        for (let k = 0; k < conj.length && passes; k++) {
          const t = conj[k]!;
          let m = memo[t]!;
          if (m === 0) memo[t] = m = this.tests[t]!(s, i) ? 1 : 2;
          passes = m === 1;
        }
        if (passes) return true;
      }
    }
    return false;
  }
}
