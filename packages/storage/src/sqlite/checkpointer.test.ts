import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Checkpointer, CHASE_FRAMES } from './checkpointer.js';

const PAGE = 4096;

describe('checkpointer', () => {
  // Steady writes never leave SQLite the moment it needs to start the log over by itself.
  it('keeps the log bounded under writes that never pause', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audient-ckpt-'));
    const path = join(dir, 'db.sqlite');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`journal_size_limit = ${CHASE_FRAMES * PAGE}`);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)');
    const checkpointer = new Checkpointer(path, 20);
    try {
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      const commit = db.transaction((n: number) => {
        for (let k = 0; k < n; k++) insert.run(blob);
      });
      const blob = Buffer.alloc(PAGE, 7);
      // Four times the threshold, in commits of 40 rows a millisecond apart (a busy server's
      // group commits), for ~4 s at most.
      const rows = CHASE_FRAMES * 4;
      const until = Date.now() + 4_000;
      let written = 0;
      while (written < rows && Date.now() < until) {
        commit(40);
        written += 40;
        await new Promise((r) => setTimeout(r, 1));
      }
      const wal = statSync(`${path}-wal`).size;
      const writtenBytes = written * PAGE;
      assert.ok(writtenBytes > CHASE_FRAMES * PAGE * 2, `wrote ${writtenBytes} B: too few to tell`);
      assert.ok(wal < writtenBytes / 2, `log ${wal} B after ${writtenBytes} B written: it was never started over`);
    } finally {
      await checkpointer.stop();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
