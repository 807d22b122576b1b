/**
 * Connections: a destination plus its settings, with secret settings sealed at rest
 * (AES-256-GCM) and never returned — the API only says that a secret is set.
 */
import {
  AudientError,
  isSecretField,
  validateSettings,
  type DestinationDefinition,
  type SettingValues,
} from '@audient/core';
import { getDestination } from '@audient/destinations';
import type { Store } from '@audient/storage';
import { sortableId } from '../ids.js';
import type { SecretBox } from '../secrets.js';

const KIND = 'connection';

/** A stored connection. */
interface StoredConnection {
  id: string;
  name: string;
  destinationId: string;
  /** Non-secret settings. */
  settings: SettingValues;
  /** Secret settings, each sealed. */
  secrets: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** What the API shows of a connection. */
export interface ConnectionView {
  id: string;
  name: string;
  destinationId: string;
  settings: Record<string, string | number | boolean | { set: true }>;
  createdAt: string;
  updatedAt: string;
}

/** A connection ready to use: definition and clear settings (never leaves the process). */
export interface OpenConnection {
  id: string;
  definition: DestinationDefinition;
  settings: SettingValues;
  /** The clear values of secret settings, for masking in dry runs and logs. */
  secretValues: string[];
}

/** Connection management. */
export class Connections {
  private readonly cache = new Map<string, OpenConnection>();
  private readonly changeListeners: Array<(sandboxId: string) => void> = [];

  constructor(private readonly deps: { store: Store; secrets: SecretBox }) {}

  /** Called after every change of a connection in a sandbox (the edge configuration cache listens). */
  onChanged(fn: (sandboxId: string) => void): void {
    this.changeListeners.push(fn);
  }

  private changed(sandboxId: string): void {
    for (const fn of this.changeListeners) fn(sandboxId);
  }

  /** The destination with this id, or a clear 404. */
  static definition(destinationId: string): DestinationDefinition {
    const d = getDestination(destinationId);
    if (!d) throw new AudientError('NOT_FOUND', `no destination ${destinationId} in the catalogue`);
    return d;
  }

  private view(c: StoredConnection): ConnectionView {
    const settings: ConnectionView['settings'] = { ...c.settings };
    for (const k of Object.keys(c.secrets)) settings[k] = { set: true };
    return { id: c.id, name: c.name, destinationId: c.destinationId, settings, createdAt: c.createdAt, updatedAt: c.updatedAt };
  }

  private split(def: DestinationDefinition, values: SettingValues): Pick<StoredConnection, 'settings' | 'secrets'> {
    const settings: SettingValues = {};
    const secrets: Record<string, string> = {};
    for (const f of def.settings) {
      const v = values[f.key];
      if (v === undefined) continue;
      if (isSecretField(f)) secrets[f.key] = this.deps.secrets.seal(String(v));
      else settings[f.key] = v;
    }
    return { settings, secrets };
  }

  async create(sandboxId: string, input: { name: string; destinationId: string; settings: Record<string, unknown> }): Promise<ConnectionView> {
    const def = Connections.definition(input.destinationId);
    const { values, errors } = validateSettings(def, input.settings);
    if (errors.length) throw new AudientError('VALIDATION_FAILED', `settings of ${def.name} are not valid`, errors);
    const at = new Date().toISOString();
    const c: StoredConnection = { id: sortableId('conn'), name: input.name, destinationId: def.id, ...this.split(def, values), createdAt: at, updatedAt: at };
    await this.deps.store.putDoc(sandboxId, KIND, c.id, c);
    this.changed(sandboxId);
    return this.view(c);
  }

  /** Changes settings; secrets left out keep their stored value. */
  async update(sandboxId: string, id: string, input: { name?: string; settings?: Record<string, unknown> }): Promise<ConnectionView> {
    const c = await this.stored(sandboxId, id);
    const def = Connections.definition(c.destinationId);
    const current: Record<string, unknown> = { ...c.settings };
    for (const [k, sealed] of Object.entries(c.secrets)) current[k] = this.deps.secrets.unseal(sealed);
    const { values, errors } = validateSettings(def, { ...current, ...(input.settings ?? {}) });
    if (errors.length) throw new AudientError('VALIDATION_FAILED', `settings of ${def.name} are not valid`, errors);
    const next: StoredConnection = { ...c, name: input.name ?? c.name, ...this.split(def, values), updatedAt: new Date().toISOString() };
    await this.deps.store.putDoc(sandboxId, KIND, id, next);
    this.cache.delete(`${sandboxId}\u0000${id}`);
    this.changed(sandboxId);
    return this.view(next);
  }

  private async stored(sandboxId: string, id: string): Promise<StoredConnection> {
    const c = await this.deps.store.getDoc<StoredConnection>(sandboxId, KIND, id);
    if (!c) throw new AudientError('NOT_FOUND', `no connection ${id} in this sandbox`);
    return c;
  }

  async get(sandboxId: string, id: string): Promise<ConnectionView> {
    return this.view(await this.stored(sandboxId, id));
  }

  async list(sandboxId: string): Promise<ConnectionView[]> {
    return (await this.deps.store.listDocs<StoredConnection>(sandboxId, KIND)).map((c) => this.view(c));
  }

  async delete(sandboxId: string, id: string): Promise<void> {
    if (!(await this.deps.store.deleteDoc(sandboxId, KIND, id))) throw new AudientError('NOT_FOUND', `no connection ${id} in this sandbox`);
    this.cache.delete(`${sandboxId}\u0000${id}`);
    this.changed(sandboxId);
    // The partner's ID syncs belong to the connection: they go with it.
    await this.deps.store.deleteIdSyncs(sandboxId, id);
  }

  /** Definition and clear settings, cached in memory. */
  async open(sandboxId: string, id: string): Promise<OpenConnection> {
    const key = `${sandboxId}\u0000${id}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const c = await this.stored(sandboxId, id);
    const settings: SettingValues = { ...c.settings };
    const secretValues: string[] = [];
    for (const [k, sealed] of Object.entries(c.secrets)) {
      const v = this.deps.secrets.unseal(sealed);
      settings[k] = v;
      secretValues.push(v);
    }
    const open: OpenConnection = { id, definition: Connections.definition(c.destinationId), settings, secretValues };
    this.cache.set(key, open);
    return open;
  }
}
