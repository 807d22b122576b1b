/**
 * Datastreams: what the edge endpoint does for one `configId` — which sandbox it belongs to,
 * which origins may call it (CORS), which event dataset page events land in, and which URL /
 * cookie syncs the Web SDK should fire. Profile-lookup destinations attach themselves by naming
 * the datastream in their settings (custom personalization's `datastreamId`).
 *
 * Edge requests carry no API key, so datastream ids are global (UUIDs) and an index document in
 * the reserved `_edge` scope (never a valid sandbox id) maps each id to its sandbox. Lookups are
 * cached in memory; this process's writes invalidate the cache.
 */
import { AudientError, type ErrorDetail } from '@audient/core';
import type { Store } from '@audient/storage';
import { newUuid } from '../ids.js';
import type { Catalog } from '../services/catalog.js';

const KIND = 'datastream';
const INDEX_SCOPE = '_edge';
const INDEX_KIND = 'datastream-index';

/** A pixel (`url`) or first-party cookie (`cookie`) sync the Web SDK fires; `{ECID}` is replaced. */
export type UrlSync =
  | { id: string; type: 'url'; url: string; hideReferrer: boolean; ttlMinutes: number }
  | { id: string; type: 'cookie'; name: string; value: string; domain?: string | undefined; ttlDays: number };

/** A datastream as stored and shown. */
export interface Datastream {
  id: string;
  name: string;
  enabled: boolean;
  /** Origins allowed to call the edge from a browser (`https://shop.example`), or `*`. */
  allowedOrigins: string[];
  /** Event dataset that page events are ingested into; none: lookups only. */
  eventDatasetId?: string | undefined;
  /** Profile dataset (a schema with `consents`) that consent preferences (`set-consent`) are stored into. */
  profileDatasetId?: string | undefined;
  /** Organisation id naming the identity cookie (`kndctr_<orgId>_identity`). */
  orgId: string;
  urlSyncs: UrlSync[];
  createdAt: string;
  updatedAt: string;
}

/** What a caller gives (defaults filled in by the service). */
export interface DatastreamInput {
  name: string;
  enabled?: boolean | undefined;
  allowedOrigins?: string[] | undefined;
  eventDatasetId?: string | undefined;
  profileDatasetId?: string | undefined;
  orgId?: string | undefined;
  urlSyncs?: Array<
    | { id?: string | undefined; type: 'url'; url: string; hideReferrer?: boolean | undefined; ttlMinutes?: number | undefined }
    | { id?: string | undefined; type: 'cookie'; name: string; value: string; domain?: string | undefined; ttlDays?: number | undefined }
  >;
}

/** The placeholder a sync template may carry. */
export const ECID_PLACEHOLDER = '{ECID}';

/** Default organisation id when a datastream names none. */
export const DEFAULT_ORG_ID = 'audient';

/** Datastream management and the edge's id → sandbox lookup. */
export class Datastreams {
  private readonly cache = new Map<string, { sandboxId: string; datastream: Datastream }>();
  private readonly changeListeners: Array<(sandboxId: string) => void> = [];

  constructor(private readonly deps: { store: Store; catalog: Catalog; now: () => number }) {}

  /** Called after every change of a datastream in a sandbox (the edge configuration cache listens). */
  onChanged(fn: (sandboxId: string) => void): void {
    this.changeListeners.push(fn);
  }

  private changed(sandboxId: string): void {
    for (const fn of this.changeListeners) fn(sandboxId);
  }

  private async check(sandboxId: string, input: DatastreamInput): Promise<void> {
    const details: ErrorDetail[] = [];
    (input.allowedOrigins ?? []).forEach((o, i) => {
      if (o === '*') return;
      let origin = '';
      try {
        origin = new URL(o).origin;
      } catch {
        origin = '';
      }
      if (origin !== o) details.push({ path: `allowedOrigins.${i}`, reason: 'format', message: 'an origin is scheme://host[:port] with no path, or *', received: o });
    });
    (input.urlSyncs ?? []).forEach((s, i) => {
      if (s.type !== 'url') return;
      let ok = false;
      try {
        ok = ['https:', 'http:'].includes(new URL(s.url.replaceAll(ECID_PLACEHOLDER, '0')).protocol);
      } catch {
        ok = false;
      }
      if (!ok) details.push({ path: `urlSyncs.${i}.url`, reason: 'format', message: 'an http(s) URL template, e.g. https://partner.example/sync?uid={ECID}', received: s.url });
    });
    const ids = (input.urlSyncs ?? []).map((s) => s.id).filter((id): id is string => id !== undefined);
    if (new Set(ids).size !== ids.length) details.push({ path: 'urlSyncs', reason: 'unique', message: 'sync ids must be unique' });
    if (input.eventDatasetId !== undefined) {
      const dataset = await this.deps.catalog.getDataset(sandboxId, input.eventDatasetId);
      const schema = await this.deps.catalog.resolvedSchema(sandboxId, dataset.schemaId);
      if (schema.class !== 'event') {
        details.push({ path: 'eventDatasetId', reason: 'class', message: 'page events need a dataset of an event schema', received: input.eventDatasetId });
      }
    }
    if (input.profileDatasetId !== undefined) {
      const dataset = await this.deps.catalog.getDataset(sandboxId, input.profileDatasetId);
      const schema = await this.deps.catalog.resolvedSchema(sandboxId, dataset.schemaId);
      if (schema.class !== 'profile' || !schema.root.properties?.['consents']) {
        details.push({ path: 'profileDatasetId', reason: 'class', message: 'consent needs a dataset of a profile schema with consents (field group profile-consents)', received: input.profileDatasetId });
      }
    }
    if (details.length) throw new AudientError('VALIDATION_FAILED', 'the datastream is not valid', details);
  }

  private build(id: string, input: DatastreamInput, createdAt: string): Datastream {
    const updatedAt = new Date(this.deps.now()).toISOString();
    return {
      id,
      name: input.name,
      enabled: input.enabled ?? true,
      allowedOrigins: input.allowedOrigins ?? [],
      ...(input.eventDatasetId !== undefined ? { eventDatasetId: input.eventDatasetId } : {}),
      ...(input.profileDatasetId !== undefined ? { profileDatasetId: input.profileDatasetId } : {}),
      orgId: input.orgId ?? DEFAULT_ORG_ID,
      urlSyncs: (input.urlSyncs ?? []).map((s, i): UrlSync => {
        const syncId = s.id ?? `sync-${i + 1}`;
        return s.type === 'url'
          ? { id: syncId, type: 'url', url: s.url, hideReferrer: s.hideReferrer ?? true, ttlMinutes: s.ttlMinutes ?? 10_080 }
          : { id: syncId, type: 'cookie', name: s.name, value: s.value, ...(s.domain ? { domain: s.domain } : {}), ttlDays: s.ttlDays ?? 30 };
      }),
      createdAt,
      updatedAt,
    };
  }

  /** Creates a datastream with a new global id. */
  async create(sandboxId: string, input: DatastreamInput): Promise<Datastream> {
    await this.check(sandboxId, input);
    const id = newUuid();
    const ds = this.build(id, input, new Date(this.deps.now()).toISOString());
    await this.deps.store.putDoc(INDEX_SCOPE, INDEX_KIND, id, { sandboxId });
    await this.deps.store.putDoc(sandboxId, KIND, id, ds);
    this.changed(sandboxId);
    return ds;
  }

  /** A datastream of the sandbox, or a clear 404. */
  async get(sandboxId: string, id: string): Promise<Datastream> {
    const ds = await this.deps.store.getDoc<Datastream>(sandboxId, KIND, id);
    if (!ds) throw new AudientError('NOT_FOUND', `no datastream ${id}`);
    return ds;
  }

  /** The sandbox's datastreams. */
  list(sandboxId: string): Promise<Datastream[]> {
    return this.deps.store.listDocs<Datastream>(sandboxId, KIND);
  }

  /** Replaces a datastream (its id and creation time are kept). */
  async update(sandboxId: string, id: string, input: DatastreamInput): Promise<Datastream> {
    const before = await this.get(sandboxId, id);
    await this.check(sandboxId, input);
    const ds = this.build(id, input, before.createdAt);
    await this.deps.store.putDoc(sandboxId, KIND, id, ds);
    this.cache.delete(id);
    this.changed(sandboxId);
    return ds;
  }

  /** Removes a datastream; edge requests naming it get 404 from then on. */
  async delete(sandboxId: string, id: string): Promise<void> {
    await this.get(sandboxId, id);
    await this.deps.store.deleteDoc(sandboxId, KIND, id);
    await this.deps.store.deleteDoc(INDEX_SCOPE, INDEX_KIND, id);
    this.cache.delete(id);
    this.changed(sandboxId);
  }

  /** The datastream with this global id and its sandbox, or undefined (cached). */
  async resolve(id: string): Promise<{ sandboxId: string; datastream: Datastream } | undefined> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const index = await this.deps.store.getDoc<{ sandboxId: string }>(INDEX_SCOPE, INDEX_KIND, id);
    if (!index) return undefined;
    const datastream = await this.deps.store.getDoc<Datastream>(index.sandboxId, KIND, id);
    if (!datastream) return undefined;
    const entry = { sandboxId: index.sandboxId, datastream };
    this.cache.set(id, entry);
    return entry;
  }
}
