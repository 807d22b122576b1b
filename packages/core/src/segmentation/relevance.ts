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
import type { Expr, Operand } from './ast.js';
import type { Program, Test } from './program.js';
import type { EvalState } from './runtime.js';

/**
 * Whether some event of a state (bound to a context holding only the new events) can change
 * the audience: `false` for audiences no event can change, `true` for those every event may.
 */
export type EventRelevance = boolean | ((s: EvalState) => boolean);

/** Leaf kinds that read one value of their own scope and nothing else (no time, no other audience). */
const STATIC_LEAVES = new Set<Expr['kind']>(['compare', 'in', 'like', 'exists', 'between', 'stringFn']);

const eventOnly = (o: Operand): boolean => o.kind === 'literal' || o.scope === 'event';

/** Whether a leaf reads only the event under consideration (literals aside). */
function readsOnlyTheEvent(e: Expr): boolean {
  if (!STATIC_LEAVES.has(e.kind)) return false;
  if (e.kind === 'compare') return eventOnly(e.left) && eventOnly(e.right) && (e.left.kind === 'path' || e.right.kind === 'path');
  return 'target' in e && e.target.scope === 'event';
}

/** The tests of a condition's conjuncts that read only the event (none: every event may pass). */
function eventConjuncts(p: Program): Test[] {
  if (p.expr.kind === 'and') return p.children.flatMap(eventConjuncts);
  return readsOnlyTheEvent(p.expr) ? [p.test] : [];
}

/** The relevance of new events to a compiled query (see the file comment). */
export function eventRelevance(root: Program): EventRelevance {
  /** Per event clause, the conditions (one per step for chains) an event must pass one of. */
  const clauses: Test[][][] = [];
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
    const alternatives = p.children.map(eventConjuncts);
    if (alternatives.some((tests) => tests.length === 0)) every = true;
    else clauses.push(alternatives);
  };
  visit(root);
  if (every) return true;
  if (!clauses.length) return false;
  return (s) => {
    const n = s.events.length;
    for (let i = 0; i < n; i++) {
      for (const alternatives of clauses) {
        for (const tests of alternatives) {
          let passes = true;
          for (let k = 0; k < tests.length && passes; k++) passes = (tests[k] as Test)(s, i);
          if (passes) return true;
        }
      }
    }
    return false;
  };
}
