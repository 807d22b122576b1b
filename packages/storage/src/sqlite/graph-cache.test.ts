import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { writePlan } from '../testing.js';
import { GraphCache } from '../graph-cache.js';
import { SqliteStore } from './sqlite-store.js';

const T0 = 1_700_000_000_000;
const ident = (ns: string, id: string, graphId: string, lastSeen = T0) => ({ ns, id, graphId, type: 'person' as const, lastSeen });

describe('identity graphs kept by the SQLite store', () => {
  it('holds a graph under each member, per sandbox, and forgets it whole', () => {
    const cache = new GraphCache(10);
    cache.put('a', [ident('email', 'x', 'g1'), ident('ecid', '1', 'g1')]);
    assert.equal(cache.get('a', 'ecid', '1')?.length, 2);
    assert.equal(cache.get('b', 'ecid', '1'), undefined);
    cache.touch('a', 'ecid', '1', T0 + 1);
    assert.deepEqual(cache.get('a', 'email', 'x')?.map((m) => m.lastSeen), [T0, T0 + 1]);
    cache.dropGraphOf('a', 'email', 'x');
    assert.equal(cache.get('a', 'ecid', '1'), undefined);
    assert.equal(cache.size, 0);
  });

  it('starts over past its bound', () => {
    const cache = new GraphCache(3);
    cache.put('a', [ident('email', 'x', 'g1'), ident('ecid', '1', 'g1')]);
    cache.put('a', [ident('email', 'y', 'g2'), ident('ecid', '2', 'g2')]);
    assert.equal(cache.size, 2);
    assert.equal(cache.get('a', 'email', 'x'), undefined);
    assert.equal(cache.get('a', 'email', 'y')?.length, 2);
  });

  it('sees identities another connection committed to the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audient-graphs-'));
    const path = join(dir, 'db.sqlite');
    const store = new SqliteStore(path);
    try {
      await store.migrate();
      await store.createSandbox({ id: 'a', name: 'A' });
      await store.ingest('a', (tx) => tx.apply(writePlan({ newIdentities: [ident('email', 'x', 'g1')] }), T0));
      const read = (): Promise<string[]> => store.ingest('a', async (tx) => (await tx.graphMembersOf([{ ns: 'email', id: 'x' }])).map((m) => `${m.ns}/${m.id}`).sort());
      assert.deepEqual(await read(), ['email/x']);
      const other = new Database(path);
      other.pragma('busy_timeout = 5000');
      other.prepare('INSERT INTO identities (sandbox_id, ns, id, graph_id, type, last_seen) VALUES (?, ?, ?, ?, ?, ?)').run('a', 'ecid', '1', 'g1', 'person', T0);
      other.close();
      assert.deepEqual(await read(), ['ecid/1', 'email/x']);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
