/**
 * Audiences: definitions in the audience language, checked against the sandbox's union schemas,
 * classified (edge / streaming / batch, with the reason), guarded by per-sandbox limits and
 * inSegment cycle detection, and compiled once per sandbox for the evaluators.
 */
import {
  AudientError,
  DEFAULT_MERGE_POLICY,
  checkAudience,
  classifyAudience,
  compileAudience,
  dependencies,
  diagnoseAudience,
  findCycle,
  parseAudience,
  unionRoots,
  type AudienceDiagnostic,
  type AudienceSchemas,
  type Classification,
  type CompiledAudience,
  type EvaluationMethod,
  type MergePolicy,
} from '@audient/core';
import type { AudienceRow, Store } from '@audient/storage';
import type { SegmentationConfig } from '../config.js';
import type { Catalog } from './catalog.js';

/** What a caller gives to create or replace an audience. */
export interface AudienceInput {
  id?: string | undefined;
  name: string;
  description?: string | undefined;
  query: string;
  mergePolicy?: MergePolicy | undefined;
}

/** An audience ready to evaluate. */
export interface CompiledEntry {
  row: AudienceRow;
  compiled: CompiledAudience;
}

/** The result of validating a query. */
export interface Validation {
  valid: boolean;
  diagnostics: AudienceDiagnostic[];
  classification?: Classification;
  dependsOn?: string[];
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Audience definitions for every sandbox. */
export class AudienceService {
  private readonly compiledCache = new Map<string, Promise<CompiledEntry[]>>();
  private readonly changeListeners: Array<(sandboxId: string) => void> = [];

  constructor(private readonly deps: { store: Store; catalog: Catalog; config: SegmentationConfig; newId: () => string }) {
    deps.catalog.onSchemasChanged((sandboxId) => this.invalidate(sandboxId));
  }

  /** Called after an audience is created, replaced or removed, or the compiled ones are dropped (the edge cache listens). */
  onChanged(fn: (sandboxId: string) => void): void {
    this.changeListeners.push(fn);
  }

  /** The sandbox's union schemas as queries see them. */
  async schemas(sandboxId: string): Promise<AudienceSchemas> {
    const { catalog } = this.deps;
    const all = await catalog.listSchemas(sandboxId);
    const resolved = await Promise.all(all.map((s) => catalog.resolvedSchema(sandboxId, s.id)));
    return {
      profile: unionRoots(resolved.filter((r) => r.class === 'profile').map((r) => r.root)).root,
      event: unionRoots(resolved.filter((r) => r.class === 'event').map((r) => r.root)).root,
    };
  }

  private methodOf(rows: readonly AudienceRow[]): (id: string) => EvaluationMethod | undefined {
    const byId = new Map(rows.map((r) => [r.id, r.method]));
    return (id) => byId.get(id);
  }

  /** Checks a query without saving it: diagnostics with positions, the method it would get and why. */
  async validate(sandboxId: string, query: string, selfId?: string): Promise<Validation> {
    const { checked, diagnostics } = diagnoseAudience(query, await this.schemas(sandboxId));
    if (!checked || diagnostics.length) return { valid: false, diagnostics };
    const rows = await this.deps.store.listAudiences(sandboxId);
    const dependsOn = dependencies(checked.ast);
    const known = new Set(rows.map((r) => r.id));
    const unknown = dependsOn.filter((d) => !known.has(d) && d !== selfId);
    if (unknown.length) {
      return {
        valid: false,
        diagnostics: unknown.map((id) => ({ message: `inSegment refers to unknown audience ${JSON.stringify(id)}`, line: 1, column: 1 }) as AudienceDiagnostic),
      };
    }
    const classification = classifyAudience(checked.ast, {
      eventRetentionMs: this.deps.config.eventRetentionMs,
      methodOf: this.methodOf(rows),
    });
    return { valid: true, diagnostics: [], classification, dependsOn };
  }

  private async build(sandboxId: string, input: AudienceInput, existing: AudienceRow | undefined): Promise<AudienceRow> {
    const { store, config } = this.deps;
    const ast = parseAudience(input.query);
    checkAudience(ast, await this.schemas(sandboxId));
    const rows = (await store.listAudiences(sandboxId)).filter((r) => r.id !== existing?.id);
    const id = existing?.id ?? input.id ?? this.deps.newId();
    if (!ID_RE.test(id)) throw new AudientError('VALIDATION_FAILED', `audience id ${JSON.stringify(id)} is not valid`);
    const dependsOn = dependencies(ast);
    const known = new Set(rows.map((r) => r.id));
    const unknown = dependsOn.filter((d) => !known.has(d));
    if (unknown.includes(id)) throw new AudientError('VALIDATION_FAILED', `audience ${id} cannot contain itself (inSegment("${id}"))`);
    if (unknown.length) throw new AudientError('VALIDATION_FAILED', `inSegment refers to unknown audiences: ${unknown.join(', ')}`);
    const graph = new Map<string, string[]>(rows.map((r) => [r.id, r.dependsOn]));
    graph.set(id, dependsOn);
    const cycle = findCycle(graph);
    if (cycle) throw new AudientError('VALIDATION_FAILED', `inSegment references form a cycle: ${cycle.join(' → ')}`);
    const classification = classifyAudience(ast, { eventRetentionMs: config.eventRetentionMs, methodOf: this.methodOf(rows) });
    const count = (m: EvaluationMethod): number => rows.filter((r) => r.method === m).length;
    if (!existing && rows.length >= config.maxAudiences) {
      throw new AudientError('CONFLICT', `a sandbox holds at most ${config.maxAudiences} audiences`);
    }
    if (classification.method === 'streaming' && existing?.method !== 'streaming' && count('streaming') >= config.maxStreamingAudiences) {
      throw new AudientError('CONFLICT', `a sandbox holds at most ${config.maxStreamingAudiences} streaming audiences; this one would be streaming (${classification.reason})`);
    }
    if (classification.method === 'edge' && existing?.method !== 'edge' && count('edge') >= config.maxEdgeAudiences) {
      throw new AudientError('CONFLICT', `a sandbox holds at most ${config.maxEdgeAudiences} edge audiences; this one would be edge (${classification.reason})`);
    }
    const at = new Date().toISOString();
    return {
      id,
      name: input.name,
      description: input.description ?? '',
      query: input.query,
      mergePolicy: input.mergePolicy ?? DEFAULT_MERGE_POLICY,
      method: classification.method,
      methodReason: classification.reason,
      dependsOn,
      version: (existing?.version ?? 0) + 1,
      createdAt: existing?.createdAt ?? at,
      updatedAt: at,
    };
  }

  async create(sandboxId: string, input: AudienceInput): Promise<AudienceRow> {
    if (input.id && (await this.deps.store.getAudience(sandboxId, input.id))) {
      throw new AudientError('CONFLICT', `audience ${input.id} already exists; use PUT to change it`);
    }
    const row = await this.build(sandboxId, input, undefined);
    await this.deps.store.putAudience(sandboxId, row);
    this.invalidate(sandboxId);
    return row;
  }

  async update(sandboxId: string, id: string, input: AudienceInput): Promise<AudienceRow> {
    const row = await this.build(sandboxId, input, await this.get(sandboxId, id));
    await this.deps.store.putAudience(sandboxId, row);
    this.invalidate(sandboxId);
    return row;
  }

  async delete(sandboxId: string, id: string): Promise<void> {
    await this.get(sandboxId, id);
    const users = (await this.deps.store.listAudiences(sandboxId)).filter((r) => r.dependsOn.includes(id));
    if (users.length) {
      throw new AudientError('CONFLICT', `audience ${id} is used by inSegment in: ${users.map((u) => u.id).join(', ')}`);
    }
    await this.deps.store.deleteAudience(sandboxId, id);
    this.invalidate(sandboxId);
  }

  async get(sandboxId: string, id: string): Promise<AudienceRow> {
    const row = await this.deps.store.getAudience(sandboxId, id);
    if (!row) throw new AudientError('NOT_FOUND', `no audience ${id} in this sandbox`);
    return row;
  }

  list(sandboxId: string): Promise<AudienceRow[]> {
    return this.deps.store.listAudiences(sandboxId);
  }

  /** Every audience of a sandbox compiled, dependencies before dependants. */
  compiledAll(sandboxId: string): Promise<CompiledEntry[]> {
    let p = this.compiledCache.get(sandboxId);
    if (!p) {
      p = this.compileAll(sandboxId);
      this.compiledCache.set(sandboxId, p);
      p.catch(() => this.compiledCache.delete(sandboxId));
    }
    return p;
  }

  /** Forgets compiled audiences (an audience or a schema changed). */
  invalidate(sandboxId: string): void {
    this.compiledCache.delete(sandboxId);
    for (const fn of this.changeListeners) fn(sandboxId);
  }

  private async compileAll(sandboxId: string): Promise<CompiledEntry[]> {
    const rows = await this.deps.store.listAudiences(sandboxId);
    const schemas = await this.schemas(sandboxId);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const ordered: AudienceRow[] = [];
    const seen = new Set<string>();
    const visit = (r: AudienceRow): void => {
      if (seen.has(r.id)) return;
      seen.add(r.id);
      for (const d of r.dependsOn) {
        const dep = byId.get(d);
        if (dep) visit(dep);
      }
      ordered.push(r);
    };
    rows.forEach(visit);
    return ordered.map((row) => ({ row, compiled: compileAudience(checkAudience(parseAudience(row.query), schemas)) }));
  }
}
