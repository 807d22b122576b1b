/** Audient's storage port and adapters, chosen by a database URL. */
export * from './port.js';
export { decodeSnapshot } from './snapshot.js';
export { SqliteStore, DEFAULT_CACHE_MB, SMALL_DB_CACHE_MB, cachePages, type SqliteOptions } from './sqlite/sqlite-store.js';
export { openStore } from './open.js';
