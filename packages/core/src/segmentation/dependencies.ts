/** Audience-of-audience references (`inSegment`) and cycle detection across audiences. */
import type { Expr, QueryAst } from './ast.js';

/** Calls `visit` on every node of an expression, depth first. */
export function walkExpr(e: Expr, visit: (e: Expr) => void): void {
  visit(e);
  switch (e.kind) {
    case 'and':
    case 'or':
      for (const o of e.operands) walkExpr(o, visit);
      return;
    case 'not':
      walkExpr(e.operand, visit);
      return;
    case 'select':
      if (e.where) walkExpr(e.where, visit);
      return;
    case 'aggregate':
      if (e.filter) walkExpr(e.filter, visit);
      return;
    case 'chain':
      for (const st of e.steps) walkExpr(st.what, visit);
      return;
    case 'constant':
    case 'compare':
    case 'in':
    case 'like':
    case 'exists':
    case 'between':
    case 'stringFn':
    case 'occurs':
    case 'inSegment':
      return;
  }
}

/** The distinct audience ids a query references through `inSegment`, in order of appearance. */
export function dependencies(ast: QueryAst | { ast: QueryAst }): string[] {
  const root = 'root' in ast ? ast.root : ast.ast.root;
  const ids = new Set<string>();
  walkExpr(root, (e) => {
    if (e.kind === 'inSegment') ids.add(e.audienceId);
  });
  return [...ids];
}

/**
 * A cycle in an audience dependency graph (audience id → ids it references), returned as the path
 * `[a, b, …, a]`, or undefined when there is none. Iterative, so deep graphs cannot overflow the stack.
 */
export function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 1 | 2>(); // 1 = on the current path, 2 = fully explored
  for (const start of graph.keys()) {
    if (state.has(start)) continue;
    const path: string[] = [start];
    const cursors: number[] = [0];
    state.set(start, 1);
    while (path.length > 0) {
      const top = path.length - 1;
      const id = path[top] as string;
      const next = graph.get(id) ?? [];
      const cursor = cursors[top] ?? 0;
      if (cursor >= next.length) {
        state.set(id, 2);
        path.pop();
        cursors.pop();
        continue;
      }
      cursors[top] = cursor + 1;
      const dep = next[cursor] as string;
      const st = state.get(dep);
      if (st === 1) return [...path.slice(path.indexOf(dep)), dep];
      if (st === undefined) {
        state.set(dep, 1);
        path.push(dep);
        cursors.push(0);
      }
    }
  }
  return undefined;
}
