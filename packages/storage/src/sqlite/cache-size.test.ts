import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type Database from 'better-sqlite3';
import { cachePages, SMALL_DB_CACHE_MB, SqliteStore } from './sqlite-store.js';

const PAGE = 4096;
/** The lock-byte page with 4 KiB pages: the one holding byte offset 1 GiB. */
const LOCK_BYTE_PAGE = 262_145;

describe('SQLite page cache sizing', () => {
  it('keeps the cache small below 1 GiB and gives the configured cache past it', () => {
    const small = (SMALL_DB_CACHE_MB * 1024 ** 2) / PAGE;
    assert.equal(cachePages(1, PAGE, 256), small);
    assert.equal(cachePages(LOCK_BYTE_PAGE - 1, PAGE, 256), small);
    assert.equal(cachePages(LOCK_BYTE_PAGE, PAGE, 256), (256 * 1024 ** 2) / PAGE);
    assert.equal(cachePages(10 * LOCK_BYTE_PAGE, PAGE, 512), (512 * 1024 ** 2) / PAGE);
    // A configured cache smaller than the small one is kept; other page sizes move the threshold.
    assert.equal(cachePages(1, PAGE, 2), (2 * 1024 ** 2) / PAGE);
    assert.equal(cachePages(131_073, 8192, 256), (256 * 1024 ** 2) / 8192);
    assert.equal(cachePages(131_072, 8192, 256), (SMALL_DB_CACHE_MB * 1024 ** 2) / 8192);
  });

  it('opens a small file database with the small cache and the file memory-mapped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audient-cache-'));
    const store = new SqliteStore(join(dir, 'db.sqlite'), { cacheMB: 256 });
    try {
      await store.migrate();
      const db = (store as unknown as { db: Database.Database }).db;
      assert.equal(db.pragma('cache_size', { simple: true }), (SMALL_DB_CACHE_MB * 1024 ** 2) / PAGE);
      assert.ok((db.pragma('mmap_size', { simple: true }) as number) >= 1024 ** 3, 'the file is mapped past 1 GiB');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the configured cache for an in-memory database (nothing to map)', async () => {
    const store = new SqliteStore(':memory:', { cacheMB: 64 });
    try {
      const db = (store as unknown as { db: Database.Database }).db;
      assert.equal(db.pragma('cache_size', { simple: true }), -64 * 1024);
    } finally {
      await store.close();
    }
  });
});
