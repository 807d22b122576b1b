/**
 * Test helper: runs storage-backed tests against every adapter on the databases this machine has.
 *
 * - SQLite: a fresh database file per `open()` in a scratch directory, removed by the store's
 *   `close()`: a file, as `npm start` runs it (the log, its checkpoint thread, the memory-mapped
 *   file), where a `:memory:` database has none of them.
 * - PostgreSQL: a fresh, uniquely named schema per `open()` in the database named by
 *   `AUDIENT_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`), migrated, and
 *   dropped by the store's `close()`. Reachability is probed once per process (2 s timeout).
 *   When it is unreachable the PostgreSQL tests are skipped with one line saying why, or fail
 *   when `CI=true`, so CI cannot pass green without having tested PostgreSQL.
 *
 * @example
 * await describeBackends((backend) => {
 *   let store: Store;
 *   beforeEach(async () => { store = await backend.open(); });
 *   afterEach(async () => { await store.close(); });
 *   it('creates a sandbox', async () => { … });
 * });
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { WritePlan } from '@audient/core';
import pg from 'pg';
import type { Store } from './port.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

/** One storage adapter as tests see it. */
export interface StoreBackend {
  readonly name: 'sqlite' | 'postgres';
  /** Why this backend's tests are skipped, or `false` when they run. */
  readonly skip: string | false;
  /** Opens a fresh, empty, migrated store; its `close()` also discards what `open()` created. */
  open(): Promise<Store>;
}

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA_PREFIX = 'audient_test_';
/** Scratch schemas older than this were left by crashed runs; the probe drops them. */
const STALE_SCHEMA_MS = 60 * 60 * 1000;

/** The PostgreSQL URL tests use (`AUDIENT_TEST_PG_URL`, or the local default). */
export function pgTestUrl(): string {
  return process.env['AUDIENT_TEST_PG_URL'] || DEFAULT_PG_URL;
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable AUDIENT_TEST_PG_URL)';
  }
}

/** A new scratch schema name: prefix, creation time (base 36, for the stale sweep), randomness. */
export function scratchSchemaName(): string {
  return `${SCHEMA_PREFIX}${Date.now().toString(36)}_${randomBytes(5).toString('hex')}`;
}

/** Runs statements on a short-lived connection (outside any store's pool). */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drops a scratch schema and everything in it. */
export async function dropScratchSchema(url: string, schema: string): Promise<void> {
  if (!schema.startsWith(SCHEMA_PREFIX) || !/^[a-z0-9_]+$/.test(schema)) throw new Error(`not a scratch schema: ${schema}`);
  await withClient(url, (c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
}

async function dropStaleSchemas(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace WHERE nspname LIKE '${SCHEMA_PREFIX.replaceAll('_', '\\_')}%'`,
  );
  for (const { nspname } of rows) {
    const born = parseInt(nspname.slice(SCHEMA_PREFIX.length).split('_')[0] ?? '', 36);
    if (Number.isFinite(born) && Date.now() - born > STALE_SCHEMA_MS && /^[a-z0-9_]+$/.test(nspname)) {
      await client.query(`DROP SCHEMA IF EXISTS ${nspname} CASCADE`);
    }
  }
}

type Probe = { ok: true } | { ok: false; why: string };
let probe: Promise<Probe> | undefined;

/** Is PostgreSQL reachable? Asked once per process. */
function probePostgres(url: string): Promise<Probe> {
  probe ??= withClient(url, async (c) => {
    await c.query('SELECT 1');
    await dropStaleSchemas(c);
    return { ok: true } as const;
  }).catch((err: unknown) => ({ ok: false, why: err instanceof Error ? err.message || err.name : String(err) }));
  return probe;
}

/** A PostgreSQL store on its own scratch schema, dropped when the store closes. */
class ScratchPostgresStore extends PostgresStore {
  constructor(private readonly url: string, private readonly scratch: string) {
    super(url, { schema: scratch });
  }

  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      await dropScratchSchema(this.url, this.scratch);
    }
  }
}

async function openScratchPostgres(url: string): Promise<Store> {
  const store = new ScratchPostgresStore(url, scratchSchemaName());
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}

/**
 * Both backends. PostgreSQL's `skip` says why it is unavailable; with `CI=true` it is never
 * skipped, and `open()` rejects with the reason instead.
 */
export async function storeBackends(): Promise<StoreBackend[]> {
  const url = pgTestUrl();
  const pgState = await probePostgres(url);
  const required = process.env['CI'] === 'true';
  const where = redact(url);
  const sqlite: StoreBackend = {
    name: 'sqlite',
    skip: false,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'audient-test-sqlite-'));
      const store = new SqliteStore(join(dir, 'audient.db'));
      await store.migrate();
      const close = store.close.bind(store);
      store.close = async () => {
        try {
          await close();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      };
      return store;
    },
  };
  const postgres: StoreBackend = pgState.ok
    ? { name: 'postgres', skip: false, open: () => openScratchPostgres(url) }
    : required
      ? {
          name: 'postgres',
          skip: false,
          open: () => Promise.reject(new Error(`PostgreSQL not reachable at ${where} (${pgState.why}); CI=true requires it: start PostgreSQL or set AUDIENT_TEST_PG_URL`)),
        }
      : {
          name: 'postgres',
          skip: `PostgreSQL not reachable at ${where} (${pgState.why}); set AUDIENT_TEST_PG_URL or run with CI=true to require it`,
          open: () => Promise.reject(new Error(`PostgreSQL not reachable at ${where}`)),
        };
  return [sqlite, postgres];
}

/**
 * Registers `suite` once per backend, inside a node:test `describe` named after it; await it at
 * the top of the test file (registration waits for the one-off PostgreSQL probe). An unavailable
 * PostgreSQL shows as one skipped suite carrying the reason or, with `CI=true`, as one failed
 * test carrying it, instead of a failure per test.
 */
export async function describeBackends(suite: (backend: StoreBackend) => void): Promise<void> {
  const pgReachable = (await probePostgres(pgTestUrl())).ok;
  for (const backend of await storeBackends()) {
    describe(backend.name, { skip: backend.skip }, () => {
      if (backend.name === 'postgres' && !pgReachable) {
        it('PostgreSQL is reachable', async () => {
          await backend.open();
        });
        return;
      }
      suite(backend);
    });
  }
}

/** Opens a fresh store of `backend` holding the empty sandboxes `a` and `b` (the suites' usual start). */
export async function openWithSandboxes(backend: StoreBackend): Promise<Store> {
  const store = await backend.open();
  await store.createSandbox({ id: 'a', name: 'Sandbox A' });
  await store.createSandbox({ id: 'b', name: 'Sandbox B' });
  return store;
}

/**
 * Gives each test of the enclosing suite a fresh store of `backend` with the sandboxes `a` and `b`
 * (handed to `use` before the test), and closes it after the test.
 *
 * @example
 * let store: Store;
 * eachStoreWithSandboxes(backend, (s) => (store = s));
 */
export function eachStoreWithSandboxes(backend: StoreBackend, use: (store: Store) => void): void {
  let store: Store | undefined;
  beforeEach(async () => {
    store = await openWithSandboxes(backend);
    use(store);
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });
}

/** A write plan that changes nothing but `parts` (hand-built plans pin storage, not planning). */
export function writePlan(parts: Partial<WritePlan>): WritePlan {
  return {
    newIdentities: [], touchedIdentities: [], evictedIdentities: [], graphMerges: [],
    fragments: [], events: [], changes: [], results: [], createdGraphs: [], ...parts,
  };
}
