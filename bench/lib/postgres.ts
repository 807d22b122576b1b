/**
 * PostgreSQL for benchmarks: a fresh schema per run in the local test database, reached by a URL
 * whose `options` set the search_path (so the server is configured exactly as a user would), and
 * dropped afterwards. Schemas left by crashed runs are swept after an hour.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { withClient } from '@audient/storage/testing';

const PREFIX = 'audient_bench_';
const STALE_MS = 60 * 60 * 1000;

/** The PostgreSQL URL benchmarks use (`AUDIENT_BENCH_PG_URL`, or the local test database). */
export function benchPgUrl(): string {
  return process.env['AUDIENT_BENCH_PG_URL'] || 'postgres://postgres@127.0.0.1:5432/test';
}

/** A scratch schema and the URL that selects it. */
export interface ScratchSchema {
  schema: string;
  url: string;
  drop(): Promise<void>;
}

/** Why PostgreSQL cannot be used, or undefined when it can. */
export async function postgresUnavailable(url: string): Promise<string | undefined> {
  try {
    await withClient(url, async (c) => {
      await c.query('SELECT 1');
      const { rows } = await c.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'audient\\_bench\\_%'`);
      for (const { nspname } of rows) {
        const born = parseInt(nspname.slice(PREFIX.length).split('_')[0] ?? '', 36);
        if (Number.isFinite(born) && Date.now() - born > STALE_MS && /^[a-z0-9_]+$/.test(nspname)) {
          await c.query(`DROP SCHEMA IF EXISTS ${nspname} CASCADE`);
        }
      }
    });
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message || err.name : String(err);
  }
}

/** Creates a fresh schema; its URL makes every connection use it. */
export async function createScratchSchema(url: string): Promise<ScratchSchema> {
  const schema = `${PREFIX}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withClient(url, (c) => c.query(`CREATE SCHEMA ${schema}`));
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    schema,
    url: u.toString(),
    drop: () => withClient(url, (c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).then(() => undefined),
  };
}

/**
 * Runs `fn` on a fresh data directory `<tmp>/<name>` and, for PostgreSQL, a scratch schema (its URL
 * passed as `databaseUrl`); both are removed afterwards. When PostgreSQL is unreachable it logs why
 * benchmark `id` is skipped and resolves undefined.
 */
export async function withBenchStore<T>(
  env: { tmp: string; log: (line: string) => void },
  id: string,
  store: 'sqlite' | 'postgres',
  name: string,
  fn: (where: { dir: string; databaseUrl?: string }) => Promise<T>,
): Promise<T | undefined> {
  const dir = join(env.tmp, name);
  mkdirSync(dir, { recursive: true });
  let scratch: ScratchSchema | undefined;
  try {
    if (store === 'postgres') {
      const why = await postgresUnavailable(benchPgUrl());
      if (why) {
        env.log(`  PostgreSQL at ${benchPgUrl()} is unavailable (${why}); ${id} is skipped`);
        return undefined;
      }
      scratch = await createScratchSchema(benchPgUrl());
    }
    return await fn(scratch ? { dir, databaseUrl: scratch.url } : { dir });
  } finally {
    await scratch?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}
