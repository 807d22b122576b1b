/**
 * Schemas, datasets and identity namespaces of a sandbox, with the resolved forms ingestion needs
 * cached per sandbox (invalidated on every write through this service).
 */
import {
  AudientError,
  NamespaceRegistry,
  STANDARD_NAMESPACES,
  checkEvolution,
  checkNamespaceCode,
  resolveSchema,
  type DatasetDef,
  type NamespaceDef,
  type NamespaceType,
  type ResolvedSchema,
  type SchemaDef,
} from '@audient/core';
import type { Store } from '@audient/storage';
import { sameSet } from '../collections.js';
import { SandboxCache } from '../sandbox-cache.js';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function checkId(kind: string, id: string): void {
  if (!ID_RE.test(id)) {
    throw new AudientError('VALIDATION_FAILED', `${kind} id ${JSON.stringify(id)} is not valid`, [
      { path: 'id', reason: 'format', message: 'ids are 1-128 letters, digits, _ . or -, starting with a letter or digit' },
    ]);
  }
}

/** Schema, dataset and namespace management for all sandboxes. */
export class Catalog {
  private readonly resolved = new Map<string, Map<string, ResolvedSchema>>();
  private readonly registries = new Map<string, NamespaceRegistry>();
  /** Datasets per sandbox; read on every ingestion and evaluation, so kept for a few seconds. */
  private readonly datasets = new SandboxCache<DatasetDef[]>();
  /** Per sandbox: the dataset list the enabled ids were last taken from, and those ids (see profileEnabledIds). */
  private readonly enabledIds = new Map<string, { datasets: readonly DatasetDef[]; ids: ReadonlySet<string> }>();

  private readonly listeners: Array<(sandboxId: string) => void> = [];

  constructor(private readonly store: Store) {}

  /** Calls `fn` whenever a sandbox's schemas change (compiled audiences depend on them). */
  onSchemasChanged(fn: (sandboxId: string) => void): void {
    this.listeners.push(fn);
  }

  /** Creates a schema; its definition must resolve (valid fields, known field groups). */
  async createSchema(sandboxId: string, input: Omit<SchemaDef, 'version'>): Promise<SchemaDef> {
    checkId('schema', input.id);
    if (await this.store.getSchema(sandboxId, input.id)) {
      throw new AudientError('CONFLICT', `schema ${input.id} already exists; use PUT to evolve it`);
    }
    const schema: SchemaDef = { ...input, version: 1 };
    resolveSchema(schema);
    await this.store.putSchema(sandboxId, schema);
    this.resolved.delete(sandboxId);
    return schema;
  }

  /** Replaces a schema with an additive evolution of it; breaking changes are refused with reasons. */
  async evolveSchema(sandboxId: string, id: string, input: Omit<SchemaDef, 'version' | 'id'>): Promise<SchemaDef> {
    const before = await this.store.getSchema(sandboxId, id);
    if (!before) throw new AudientError('NOT_FOUND', `no schema ${id} in this sandbox`);
    const after: SchemaDef = { ...input, id, version: before.version + 1 };
    checkEvolution(before, after);
    await this.store.putSchema(sandboxId, after);
    this.resolved.delete(sandboxId);
    for (const fn of this.listeners) fn(sandboxId);
    return after;
  }

  async getSchema(sandboxId: string, id: string): Promise<SchemaDef> {
    const s = await this.store.getSchema(sandboxId, id);
    if (!s) throw new AudientError('NOT_FOUND', `no schema ${id} in this sandbox`);
    return s;
  }

  listSchemas(sandboxId: string): Promise<SchemaDef[]> {
    return this.store.listSchemas(sandboxId);
  }

  /** The resolved schema, cached. */
  async resolvedSchema(sandboxId: string, id: string): Promise<ResolvedSchema> {
    let perSandbox = this.resolved.get(sandboxId);
    if (!perSandbox) this.resolved.set(sandboxId, (perSandbox = new Map()));
    let r = perSandbox.get(id);
    if (!r) {
      r = resolveSchema(await this.getSchema(sandboxId, id));
      perSandbox.set(id, r);
    }
    return r;
  }

  async createDataset(sandboxId: string, input: DatasetDef): Promise<DatasetDef> {
    checkId('dataset', input.id);
    if (await this.store.getDataset(sandboxId, input.id)) throw new AudientError('CONFLICT', `dataset ${input.id} already exists`);
    await this.getSchema(sandboxId, input.schemaId);
    await this.store.putDataset(sandboxId, input);
    this.datasets.drop(sandboxId);
    return input;
  }

  /** Changes a dataset's name or profile flag (its schema is fixed). */
  async updateDataset(sandboxId: string, id: string, patch: { name?: string; profileEnabled?: boolean }): Promise<DatasetDef> {
    const d = await this.getDataset(sandboxId, id);
    const next = { ...d, ...patch };
    await this.store.putDataset(sandboxId, next);
    this.datasets.drop(sandboxId);
    return next;
  }

  async getDataset(sandboxId: string, id: string): Promise<DatasetDef> {
    const d = (await this.listDatasets(sandboxId)).find((x) => x.id === id);
    if (!d) throw new AudientError('NOT_FOUND', `no dataset ${id} in this sandbox`);
    return d;
  }

  /** Datasets of a sandbox (cached for 5 s; writes through this service refresh it at once). */
  listDatasets(sandboxId: string): Promise<DatasetDef[]> {
    return this.datasets.get(sandboxId, () => this.store.listDatasets(sandboxId));
  }

  /**
   * Ids of the sandbox's profile-enabled datasets: the same set object for as long as they stay
   * the same, even when the dataset list is read again (every 5 s), so what is kept per enabled
   * set (hot profiles' merged attributes, the edge's consents) survives those re-reads.
   */
  async profileEnabledIds(sandboxId: string): Promise<ReadonlySet<string>> {
    const datasets = await this.listDatasets(sandboxId);
    const last = this.enabledIds.get(sandboxId);
    if (last?.datasets === datasets) return last.ids;
    const fresh = new Set(datasets.filter((d) => d.profileEnabled).map((d) => d.id));
    const ids = last && sameSet(last.ids, fresh) ? last.ids : fresh;
    this.enabledIds.set(sandboxId, { datasets, ids });
    return ids;
  }

  /** Adds a custom namespace; standard codes and duplicates are refused. */
  async createNamespace(sandboxId: string, input: { code: string; name: string; type: NamespaceType; pattern?: string }): Promise<NamespaceDef> {
    const problem = checkNamespaceCode(input.code);
    if (problem) throw new AudientError('VALIDATION_FAILED', problem, [{ path: 'code', reason: 'format', message: problem }]);
    if (input.pattern !== undefined) {
      try {
        new RegExp(input.pattern);
      } catch {
        throw new AudientError('VALIDATION_FAILED', 'pattern is not a valid regular expression', [
          { path: 'pattern', reason: 'format', message: 'not a valid regular expression' },
        ]);
      }
    }
    const registry = await this.namespaces(sandboxId);
    if (registry.get(input.code)) throw new AudientError('CONFLICT', `namespace ${input.code} already exists`);
    const ns: NamespaceDef = { ...input, standard: false };
    await this.store.putNamespace(sandboxId, ns);
    this.registries.delete(sandboxId);
    return ns;
  }

  /** Standard and custom namespaces of a sandbox. */
  async namespaces(sandboxId: string): Promise<NamespaceRegistry> {
    let r = this.registries.get(sandboxId);
    if (!r) {
      r = new NamespaceRegistry(await this.store.listNamespaces(sandboxId));
      this.registries.set(sandboxId, r);
    }
    return r;
  }

  /** Every namespace, standard first. */
  async listNamespaces(sandboxId: string): Promise<NamespaceDef[]> {
    return [...STANDARD_NAMESPACES, ...(await this.store.listNamespaces(sandboxId))];
  }
}
