/**
 * Chooses the adapter from one setting: a `postgres://` URL selects PostgreSQL, anything else is a
 * SQLite file path (or `:memory:`). Migrations run before the store is returned.
 */
import type { Store } from './port.js';
import { SqliteStore, type SqliteOptions } from './sqlite/sqlite-store.js';

/** Opens and migrates the store named by `url` (`sqlite`: settings of the embedded store). */
export async function openStore(url: string, opts: { sqlite?: SqliteOptions } = {}): Promise<Store> {
  let store: Store;
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { PostgresStore } = await import('./postgres/postgres-store.js');
    store = new PostgresStore(url);
  } else {
    store = new SqliteStore(url.replace(/^sqlite:(\/\/)?/, ''), opts.sqlite);
  }
  await store.migrate();
  return store;
}
