/**
 * Sandboxes and API keys. Every API call authenticates with a key of exactly one sandbox; keys
 * are shown once at creation and stored only as hashes. Roles are recorded now so fine-grained
 * permissions can be enforced later without a migration.
 */
import { AudientError } from '@audient/core';
import type { ApiKeyRow, SandboxRow, Store } from '@audient/storage';
import { generateApiKey, hashApiKey } from '../auth.js';
import { sortableId } from '../ids.js';

/** The caller an API key identifies. */
export interface Principal {
  keyId: string;
  sandboxId: string;
  role: string;
  instanceAdmin: boolean;
}

/** Roles known today; `admin` may manage keys, `writer` ingests and reads, `reader` only reads. */
export const ROLES = ['admin', 'writer', 'reader'] as const;
export type Role = (typeof ROLES)[number];

const SANDBOX_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A key as the API shows it: never the hash. */
export type ApiKeyView = Omit<ApiKeyRow, 'keyHash'>;

const view = (k: ApiKeyRow): ApiKeyView => {
  const { keyHash: _hidden, ...rest } = k;
  return rest;
};

/** Sandbox and key management. */
export class Tenancy {
  private readonly cache = new Map<string, { principal: Principal | undefined; at: number }>();

  constructor(private readonly store: Store) {}

  /** Creates a sandbox with a first admin key; returns the key in clear, once. */
  async createSandbox(input: { id: string; name?: string | undefined; instanceAdmin?: boolean }): Promise<{ sandbox: SandboxRow; apiKey: string; key: ApiKeyView }> {
    if (!SANDBOX_RE.test(input.id)) {
      throw new AudientError('VALIDATION_FAILED', `sandbox id ${JSON.stringify(input.id)} is not valid`, [
        { path: 'id', reason: 'format', message: 'sandbox ids are 1-63 lower-case letters, digits and -' },
      ]);
    }
    if (await this.store.getSandbox(input.id)) throw new AudientError('CONFLICT', `sandbox ${input.id} already exists`);
    await this.store.createSandbox({ id: input.id, name: input.name ?? input.id });
    const { apiKey, key } = await this.createKey(input.id, { name: 'admin', role: 'admin', instanceAdmin: input.instanceAdmin ?? false });
    return { sandbox: (await this.store.getSandbox(input.id))!, apiKey, key };
  }

  /** Creates a key in a sandbox; the clear key is returned once and never stored. */
  async createKey(sandboxId: string, input: { name: string; role: Role; instanceAdmin?: boolean }): Promise<{ apiKey: string; key: ApiKeyView }> {
    const apiKey = generateApiKey();
    const row = { id: sortableId('key'), sandboxId, name: input.name, keyHash: hashApiKey(apiKey), role: input.role, instanceAdmin: input.instanceAdmin ?? false };
    await this.store.createApiKey(row);
    return { apiKey, key: view({ ...row, createdAt: new Date().toISOString(), revokedAt: null }) };
  }

  async listKeys(sandboxId: string): Promise<ApiKeyView[]> {
    return (await this.store.listApiKeys(sandboxId)).map(view);
  }

  async revokeKey(sandboxId: string, id: string): Promise<void> {
    if (!(await this.store.revokeApiKey(sandboxId, id))) throw new AudientError('NOT_FOUND', `no active key ${id} in this sandbox`);
    this.cache.clear();
  }

  getSandbox(id: string): Promise<SandboxRow | undefined> {
    return this.store.getSandbox(id);
  }

  listSandboxes(): Promise<SandboxRow[]> {
    return this.store.listSandboxes();
  }

  /** The principal of a presented key, or undefined. Cached for a few seconds (revocation clears it). */
  async authenticate(apiKey: string): Promise<Principal | undefined> {
    const hash = hashApiKey(apiKey);
    const hit = this.cache.get(hash);
    const now = Date.now();
    if (hit && now - hit.at < 5000) return hit.principal;
    const row = await this.store.findApiKeyByHash(hash);
    const principal =
      row && !row.revokedAt ? { keyId: row.id, sandboxId: row.sandboxId, role: row.role, instanceAdmin: row.instanceAdmin } : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { principal, at: now });
    return principal;
  }
}
