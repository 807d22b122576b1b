/**
 * Raw better-sqlite3 writes of the rows Audient's SQLite store keeps for a profile (two
 * identities of one new graph, the CRM fragment) and for an event, into a store the real code
 * created and migrated. Used to seed a large store quickly and as the storage-floor peer of the
 * bulk-load figure. Row shapes follow `SqliteStore.applyPlan`: namespace keys in lower case,
 * identity types from the namespace (ECID: cookie, email: person), attributes without identityMap.
 * Its connection never checkpoints inside a commit; `checkpoint()` empties the WAL between phases,
 * so no timed phase pays for (or benefits from) the WAL another phase left.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { profileIdentity, profileRecord } from './workload.js';

/** Writes profile and event rows straight into a migrated Audient SQLite file. */
export class RawSeeder {
  private readonly db: Database.Database;

  constructor(path: string, private readonly sandboxId: string) {
    this.db = new Database(path, { fileMustExist: true });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    // No checkpoints inside timed commits: the seeder checkpoints between phases (see checkpoint()).
    this.db.pragma('wal_autocheckpoint = 0');
  }

  /**
   * Copies the whole WAL into the database and truncates it (between phases, untimed). Another
   * checkpointer (the store's) may hold the checkpoint lock for a moment: retried for up to 10 s.
   */
  async checkpoint(): Promise<{ walMB: number; completed: boolean }> {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    let log = 0;
    for (let attempt = 0; attempt < 100; attempt++) {
      const [r] = this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      log = Math.max(log, r?.log ?? 0);
      if (r && !r.busy) return { walMB: Math.round((log * pageSize) / 1024 / 1024), completed: true };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { walMB: Math.round((log * pageSize) / 1024 / 1024), completed: false };
  }

  /**
   * Profiles `from`..`to` (exclusive), `batch` per transaction: per record two identity lookups
   * (as resolution does), two identity inserts, the fragment and, when `changesTable` is given,
   * a change row. `checkpointEvery` (rows): empties the WAL that often (untimed phases only: a
   * million random-key inserts otherwise grow it to gigabytes). Returns the elapsed ms.
   */
  profiles(opts: { from: number; to: number; batch: number; seed: number; datasetId: string; changesTable?: string; checkpointEvery?: number }): number {
    const sb = this.sandboxId;
    const find = this.db.prepare('SELECT graph_id FROM identities WHERE sandbox_id = ? AND ns = ? AND id = ?');
    const addIdentity = this.db.prepare('INSERT INTO identities (sandbox_id, ns, id, graph_id, type, last_seen) VALUES (?, ?, ?, ?, ?, ?)');
    const addFragment = this.db.prepare('INSERT INTO fragments (sandbox_id, dataset_id, ns, id, graph_id, attributes, ts) VALUES (?, ?, ?, ?, ?, ?, ?)');
    if (opts.changesTable) {
      this.db.exec(`CREATE TABLE IF NOT EXISTS ${opts.changesTable} (seq INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL)`);
    }
    const addChange = opts.changesTable ? this.db.prepare(`INSERT INTO ${opts.changesTable} (sandbox_id, body, at) VALUES (?, ?, ?)`) : undefined;
    const t = performance.now();
    for (let start = opts.from; start < opts.to; start += opts.batch) {
      const now = Date.now();
      this.db.transaction(() => {
        for (let i = start; i < Math.min(opts.to, start + opts.batch); i++) {
          const { identityMap: _ids, ...attributes } = profileRecord(i, opts.seed);
          const { ecid, email } = profileIdentity(i, opts.seed);
          const known = (find.get(sb, 'email', email) ?? find.get(sb, 'ecid', ecid)) as { graph_id: string } | undefined;
          const graphId = known?.graph_id ?? randomUUID();
          addIdentity.run(sb, 'email', email, graphId, 'person', now);
          addIdentity.run(sb, 'ecid', ecid, graphId, 'cookie', now);
          addFragment.run(sb, opts.datasetId, 'email', email, graphId, JSON.stringify(attributes), now);
          addChange?.run(sb, JSON.stringify({ profileId: graphId, type: 'profile', datasetId: opts.datasetId }), now);
        }
      })();
      if (opts.checkpointEvery && Math.floor((start + opts.batch) / opts.checkpointEvery) > Math.floor(start / opts.checkpointEvery)) {
        // Busy when the store's checkpointer holds the lock: the next one catches up.
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      }
    }
    return performance.now() - t;
  }

  /** Events on the profiles `profileOf(i)` picks (joined by that profile's ECID). Returns elapsed ms. */
  events(opts: { events: ReadonlyArray<Record<string, unknown>>; profileOf: (i: number) => number; batch: number; seed: number; datasetId: string }): number {
    const sb = this.sandboxId;
    const find = this.db.prepare('SELECT graph_id FROM identities WHERE sandbox_id = ? AND ns = ? AND id = ?');
    const add = this.db.prepare('INSERT INTO events (sandbox_id, dataset_id, event_id, graph_id, ts, body) VALUES (?, ?, ?, ?, ?, ?)');
    const t = performance.now();
    for (let start = 0; start < opts.events.length; start += opts.batch) {
      this.db.transaction(() => {
        for (let i = start; i < Math.min(opts.events.length, start + opts.batch); i++) {
          const ecid = profileIdentity(opts.profileOf(i), opts.seed).ecid;
          const row = find.get(sb, 'ecid', ecid) as { graph_id: string } | undefined;
          if (!row) throw new Error(`profile with ECID ${ecid} not found`);
          const body: Record<string, unknown> = { ...opts.events[i]!, identityMap: { ECID: [{ id: ecid, primary: true }] } };
          add.run(sb, opts.datasetId, body['_id'] as string, row.graph_id, Date.parse(body['timestamp'] as string), JSON.stringify(body));
        }
      })();
    }
    return performance.now() - t;
  }

  close(): void {
    this.db.close();
  }
}
