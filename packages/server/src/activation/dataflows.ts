/**
 * Dataflows: a connection, the audiences sent through it and the mapping step. Saving refuses a
 * dataflow whose required identity is not mapped or whose source paths do not exist.
 */
import { AudientError, checkMapping, namespaceKey, type DestinationDefinition, type IdentityRequirement, type MappingEntry } from '@audient/core';
import type { Store } from '@audient/storage';
import { sortableId } from '../ids.js';
import type { AudienceService } from '../services/audiences.js';
import type { Catalog } from '../services/catalog.js';
import type { Connections } from './connections.js';

const KIND = 'dataflow';

/**
 * The identity requirement the mapping must meet: the destination's, less the target that
 * activation fills from the ID-sync table (`idSync`).
 */
export function mappedIdentities(def: DestinationDefinition): IdentityRequirement {
  const synced = def.idSync?.target;
  if (synced === undefined) return def.identities;
  const { targets, required, oneOf } = def.identities;
  const others = oneOf?.filter((t) => t !== synced) ?? [];
  return {
    targets: targets.filter((t) => t !== synced),
    ...(required ? { required: required.filter((t) => t !== synced) } : {}),
    // One of them coming from the syncs satisfies a one-of: the mapping owes nothing then.
    ...(oneOf && others.length === oneOf.length ? { oneOf } : {}),
  };
}

/** A dataflow as stored and shown. */
export interface Dataflow {
  id: string;
  name: string;
  connectionId: string;
  destinationId: string;
  audienceIds: string[];
  mapping: MappingEntry[];
  status: 'active' | 'paused';
  /** Most requests per second to the destination for this dataflow (0: no limit). */
  rateLimitPerSecond: number;
  createdAt: string;
  updatedAt: string;
}

/** What a caller gives. */
export interface DataflowInput {
  name: string;
  connectionId: string;
  audienceIds: string[];
  mapping: MappingEntry[];
  status?: 'active' | 'paused' | undefined;
  rateLimitPerSecond?: number | undefined;
}

/** Dataflow management. */
export class Dataflows {
  private readonly listeners: Array<(sandboxId: string, flow: Dataflow, addedAudiences: string[]) => Promise<void> | void> = [];

  private readonly changeListeners: Array<(sandboxId: string) => void> = [];

  constructor(private readonly deps: { store: Store; catalog: Catalog; audiences: AudienceService; connections: Connections }) {}

  /** Called after every change of a dataflow in a sandbox (the edge configuration cache listens). */
  onChanged(fn: (sandboxId: string) => void): void {
    this.changeListeners.push(fn);
  }

  private changed(sandboxId: string): void {
    for (const fn of this.changeListeners) fn(sandboxId);
  }

  /** Called after a save with the audiences newly mapped (to backfill their members). */
  onSaved(fn: (sandboxId: string, flow: Dataflow, addedAudiences: string[]) => Promise<void> | void): void {
    this.listeners.push(fn);
  }

  private async check(sandboxId: string, input: DataflowInput): Promise<string> {
    const conn = await this.deps.connections.open(sandboxId, input.connectionId);
    for (const id of input.audienceIds) await this.deps.audiences.get(sandboxId, id);
    const schemas = await this.deps.audiences.schemas(sandboxId);
    const namespaces = new Set((await this.deps.catalog.listNamespaces(sandboxId)).map((n) => namespaceKey(n.code)));
    const synced = conn.definition.idSync?.target;
    const errors = checkMapping(input.mapping, {
      profileRoot: schemas.profile,
      namespaces,
      identities: mappedIdentities(conn.definition),
      allowsAttributes: conn.definition.allowsAttributes,
    });
    if (synced !== undefined) {
      input.mapping.forEach((m, i) => {
        if (m.target.kind === 'identity' && m.target.name === synced) {
          errors.push({ path: `mapping.${i}.target.name`, reason: 'identity', message: `${synced} comes from the partner's ID syncs, not from the mapping` });
        }
      });
    }
    if (errors.length) throw new AudientError('VALIDATION_FAILED', `the mapping does not fit ${conn.definition.name}`, errors);
    return conn.definition.id;
  }

  async create(sandboxId: string, input: DataflowInput): Promise<Dataflow> {
    const destinationId = await this.check(sandboxId, input);
    const at = new Date().toISOString();
    const flow: Dataflow = {
      id: sortableId('df'),
      name: input.name,
      connectionId: input.connectionId,
      destinationId,
      audienceIds: [...new Set(input.audienceIds)],
      mapping: input.mapping,
      status: input.status ?? 'active',
      rateLimitPerSecond: input.rateLimitPerSecond ?? 0,
      createdAt: at,
      updatedAt: at,
    };
    await this.deps.store.putDoc(sandboxId, KIND, flow.id, flow);
    this.changed(sandboxId);
    for (const fn of this.listeners) await fn(sandboxId, flow, flow.audienceIds);
    return flow;
  }

  async update(sandboxId: string, id: string, input: DataflowInput): Promise<Dataflow> {
    const before = await this.get(sandboxId, id);
    const destinationId = await this.check(sandboxId, input);
    const flow: Dataflow = {
      ...before,
      name: input.name,
      connectionId: input.connectionId,
      destinationId,
      audienceIds: [...new Set(input.audienceIds)],
      mapping: input.mapping,
      status: input.status ?? before.status,
      rateLimitPerSecond: input.rateLimitPerSecond ?? before.rateLimitPerSecond,
      updatedAt: new Date().toISOString(),
    };
    await this.deps.store.putDoc(sandboxId, KIND, id, flow);
    this.changed(sandboxId);
    const added = flow.audienceIds.filter((a) => !before.audienceIds.includes(a));
    for (const fn of this.listeners) await fn(sandboxId, flow, added);
    return flow;
  }

  async setStatus(sandboxId: string, id: string, status: Dataflow['status']): Promise<Dataflow> {
    const flow = { ...(await this.get(sandboxId, id)), status, updatedAt: new Date().toISOString() };
    await this.deps.store.putDoc(sandboxId, KIND, id, flow);
    this.changed(sandboxId);
    return flow;
  }

  async get(sandboxId: string, id: string): Promise<Dataflow> {
    const f = await this.deps.store.getDoc<Dataflow>(sandboxId, KIND, id);
    if (!f) throw new AudientError('NOT_FOUND', `no dataflow ${id} in this sandbox`);
    return f;
  }

  list(sandboxId: string): Promise<Dataflow[]> {
    return this.deps.store.listDocs<Dataflow>(sandboxId, KIND);
  }

  async delete(sandboxId: string, id: string): Promise<void> {
    if (!(await this.deps.store.deleteDoc(sandboxId, KIND, id))) throw new AudientError('NOT_FOUND', `no dataflow ${id} in this sandbox`);
    this.changed(sandboxId);
  }
}
