/**
 * SQLite adapter (better-sqlite3, WAL): the embedded default. One connection; ingestion
 * batches are serialised by a mutex and each runs in one IMMEDIATE transaction.
 */
import Database from 'better-sqlite3';
import {
  eventKey,
  fragmentKey,
  identityKey,

  namespaceKey,
  type DatasetDef,
  type Membership,
  type IdentityRef,
  type NamespaceDef,
  type NamespaceType,
  type SchemaDef,
  type StoredFragment,
  type StoredIdentity,
  type WritePlan,
} from '@audient/core';
import { Mutex } from '../mutex.js';
import type {
  IdSyncRow,
  ExportSettlement,
  OutboxRow,
  AudienceRow,
  AudienceSizePoint,
  BatchMembershipPage,
  BatchProfileChunk,
  MembershipEventRow,
  MembershipConfirmation,
  MembershipWrite,
  ApiKeyRow,
  ChangeRow,
  EventRow,
  FailedRecordRow,
  IngestTx,
  JobRow,
  Page,
  ProfileRead,
  ProfileSnapshot,
  SandboxRow,
  Store,
} from '../port.js';
import { newLeaseToken } from '../lease.js';
import { REEVALUATION_LEASE_MS } from '../port.js';
import { decodeSnapshot } from '../snapshot.js';
import * as batch from './batch-memberships.js';
import { Checkpointer, WAL_FILE_LIMIT_FRAMES, WalLimit } from './checkpointer.js';
import { GraphCache } from '../graph-cache.js';
import { SQLITE_MIGRATIONS } from './migrations.js';

type Row = Record<string, unknown>;

const toKey = (r: Row): ApiKeyRow => ({
  id: r['id'] as string,
  sandboxId: r['sandbox_id'] as string,
  name: r['name'] as string,
  keyHash: r['key_hash'] as string,
  role: r['role'] as string,
  instanceAdmin: r['instance_admin'] === 1,
  createdAt: r['created_at'] as string,
  revokedAt: (r['revoked_at'] as string | null) ?? null,
});
const toIdentity = (r: Row): StoredIdentity => ({
  ns: r['ns'] as string,
  id: r['id'] as string,
  graphId: r['graph_id'] as string,
  type: r['type'] as NamespaceType,
  lastSeen: r['last_seen'] as number,
});
const toFragment = (r: Row): StoredFragment => ({
  datasetId: r['dataset_id'] as string,
  ns: r['ns'] as string,
  id: r['id'] as string,
  graphId: r['graph_id'] as string,
  attributes: JSON.parse(r['attributes'] as string) as Record<string, unknown>,
  timestamp: r['ts'] as number,
});
const toEvent = (r: Row): EventRow => ({
  datasetId: r['dataset_id'] as string,
  eventId: r['event_id'] as string,
  timestamp: r['ts'] as number,
  body: JSON.parse(r['body'] as string) as Record<string, unknown>,
});
/** A claimed row with its lease token, built in one literal (claims map thousands of rows at a time). */
const toLeased = (r: Row): OutboxRow => ({
  id: r['id'] as number,
  sandboxId: r['sandbox_id'] as string,
  dataflowId: r['dataflow_id'] as string,
  profileId: r['profile_id'] as string,
  idempotencyKey: r['idempotency_key'] as string,
  payload: JSON.parse(r['payload'] as string) as OutboxRow['payload'],
  status: r['status'] as OutboxRow['status'],
  attempts: r['attempts'] as number,
  nextAttemptAt: r['next_attempt_at'] as number,
  createdAt: r['created_at'] as number,
  lastError: (r['last_error'] as string | null) ?? null,
  lease: r['lease_token'] as number,
});
/** A listed row: no lease (listing is not hot). */
const toOutbox = (r: Row): OutboxRow => {
  const { lease: _lease, ...row } = toLeased(r);
  return row;
};
const toFailed = (r: Row): FailedRecordRow => ({
  id: r['id'] as string,
  sandboxId: r['sandbox_id'] as string,
  datasetId: r['dataset_id'] as string,
  source: r['source'] as string,
  position: r['position'] as number,
  code: r['code'] as string,
  message: r['message'] as string,
  details: JSON.parse(r['details'] as string) as FailedRecordRow['details'],
  payload: r['payload'] as string,
  status: r['status'] as FailedRecordRow['status'],
  createdAt: r['created_at'] as string,
  replayedAt: (r['replayed_at'] as string | null) ?? null,
});
const toJob = (r: Row): JobRow => ({
  id: r['id'] as string,
  sandboxId: r['sandbox_id'] as string,
  kind: r['kind'] as string,
  status: r['status'] as JobRow['status'],
  state: JSON.parse(r['state'] as string) as Record<string, unknown>,
  createdAt: r['created_at'] as string,
  updatedAt: r['updated_at'] as string,
});

/** Most changes one INSERT appends (a power of two; 3 values a row, far under SQLite's variable limit). */
const MAX_CHANGES_PER_STATEMENT = 256;

/** The embedded store. `path` is a file, or `:memory:` for tests. */
/** A writeMemberships call waiting for its group's transaction. */
interface PendingMembershipWrite {
  sandboxId: string;
  writes: readonly MembershipWrite[];
  now: number;
  /** Re-evaluations to ask for (scheduleReevaluations joins the group commit too). */
  schedule?: ReadonlyArray<{ profileId: string; dueAt: number }>;
  /** A cursor to move (setCursor joins the group commit too). */
  cursor?: { name: string; seq: number };
  resolve: (events: MembershipEventRow[]) => void;
  reject: (err: unknown) => void;
}

/**
 * `due_at` of a leased re-evaluation no request was made for since its take: never due by itself
 * (only its lease is), and any request is earlier, so the earliest-wins upserts record requests
 * made during a lease without knowing of leases.
 */
const REEVALUATION_NOT_DUE = Number.MAX_SAFE_INTEGER;

/** Settings of the embedded store. */
export interface SqliteOptions {
  /** Page cache of the connection once the database is past 1 GiB, MB (default DEFAULT_CACHE_MB; see cachePages). */
  cacheMB?: number | undefined;
}

/** Page cache per connection by default, MB: at 1M profiles, the hot index pages of requests. */
export const DEFAULT_CACHE_MB = 256;
/** Page cache of a database under 1 GiB, MB (see cachePages). */
export const SMALL_DB_CACHE_MB = 8;
/**
 * How much of the file is memory-mapped, bytes (SQLite caps it at its compile-time maximum,
 * 2 GiB in this build): a page the cache does not hold is then copied from the mapping instead
 * of read with a system call.
 */
const MMAP_BYTES = 4 * 1024 ** 3;
/** Write transactions between two checks of the database's size against the cache (see cachePages). */
const CACHE_CHECK_EVERY = 1024;
/** Identities whose graphs ingestion keeps in memory (a few hundred bytes each). */
const GRAPH_CACHE_IDENTITIES = 200_000;

/**
 * The page cache (pages) for a database of `pageCount` pages of `pageSize` bytes.
 *
 * SQLite's B-tree, when it rebalances pages on an insert, parks a page under the number of the
 * lock-byte page (the page holding byte offset 1 GiB). That raises the page cache's highest key
 * above the database's size, and the end of the transaction then trims the cache back to the
 * size: while the database is smaller than 1 GiB the trim walks the whole cache's hash table,
 * on every such commit (found with perf and gdb: 8.5 % of the edge's CPU on an 84 MB database
 * with the 256 MB cache). Below 1 GiB the cache is therefore kept small (SMALL_DB_CACHE_MB),
 * which makes the walk short, and the file is memory-mapped, so a page outside the cache costs
 * a copy from the mapping, not a read from the OS. Past 1 GiB the lock-byte page is inside the
 * database, the trim has nothing to do, and the cache is `cacheMB`.
 */
export function cachePages(pageCount: number, pageSize: number, cacheMB: number): number {
  const lockBytePage = Math.floor(1024 ** 3 / pageSize) + 1;
  const mb = pageCount < lockBytePage ? Math.min(SMALL_DB_CACHE_MB, cacheMB) : cacheMB;
  return Math.max(16, Math.round((mb * 1024 ** 2) / pageSize));
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly writers = new Mutex();
  private readonly stmtCache = new Map<string, Database.Statement>();
  /** Ingestion's read of the graph holding an identity (raw rows). */
  private graphMembersStmt: Database.Statement | undefined;
  /** Graphs ingestion read, while no write changed them (see graph-cache.ts). */
  private readonly graphs = new GraphCache(GRAPH_CACHE_IDENTITIES);
  /** `PRAGMA data_version` at the last ingestion transaction: it moves when another connection commits. */
  private dataVersion: number | undefined;
  private dataVersionStmt: Database.Statement | undefined;
  /** `appendChanges` statements, indexed by log2 of their row count. */
  private readonly appendChangeStmts: Database.Statement[] = [];
  private readonly checkpointer: Checkpointer | undefined;
  private readonly walLimit: WalLimit | undefined;
  private readonly cacheMB: number;
  private readonly pageSize: number;
  /** The cache_size set for a file's size (pages; 0 in memory), and write transactions since the size was last checked. */
  private cachePagesSet = 0;
  private writesSinceCheck = 0;

  constructor(path: string, opts: SqliteOptions = {}) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    // SQLite's lower() folds ASCII letters only: 'JOSÉ' stays 'josÉ'. Text matched without case
    // (a privacy delete's identities in failed records) is folded by JavaScript's, as ingestion
    // folds identities.
    this.db.function('unicode_lower', { deterministic: true }, (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v));
    // SQLite's default page cache is 2 MB: past a few hundred thousand profiles, every index
    // lookup of a request (identity, events, memberships) then reads its pages from the OS again.
    this.cacheMB = Math.max(1, Math.round(opts.cacheMB ?? DEFAULT_CACHE_MB));
    this.pageSize = this.db.pragma('page_size', { simple: true }) as number;
    if (path === ':memory:' || path === '') this.db.pragma(`cache_size = -${this.cacheMB * 1024}`);
    else {
      this.db.pragma(`mmap_size = ${MMAP_BYTES}`);
      this.sizeCache();
      // Checkpoints run in a worker thread; see checkpointer.ts. When the log restarts, its file
      // is cut back only past WAL_FILE_LIMIT_FRAMES pages, a step at a time (see WalLimit).
      this.db.pragma('wal_autocheckpoint = 0');
      this.walLimit = new WalLimit(this.db, `${path}-wal`, WAL_FILE_LIMIT_FRAMES * this.pageSize);
      this.checkpointer = new Checkpointer(path);
    }
  }

  /** Sets the page cache for the database's size (see cachePages). */
  private sizeCache(): void {
    const pages = cachePages(this.db.pragma('page_count', { simple: true }) as number, this.pageSize, this.cacheMB);
    if (pages === this.cachePagesSet) return;
    this.db.pragma(`cache_size = ${pages}`);
    this.cachePagesSet = pages;
  }

  /** After a write transaction: now and then, the cache follows the database's size, and the log's file limit its size (see WalLimit). */
  private wrote(): void {
    this.walLimit?.wrote();
    if (this.cachePagesSet > 0 && ++this.writesSinceCheck >= CACHE_CHECK_EVERY) {
      this.writesSinceCheck = 0;
      this.sizeCache();
    }
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmtCache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmtCache.set(sql, s);
    }
    return s;
  }

  private all(sql: string, ...params: unknown[]): Row[] {
    return this.stmt(sql).all(...params) as Row[];
  }

  private get(sql: string, ...params: unknown[]): Row | undefined {
    return this.stmt(sql).get(...params) as Row | undefined;
  }

  private run(sql: string, ...params: unknown[]): Database.RunResult {
    return this.stmt(sql).run(...params);
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const done = new Set(
      (this.db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => r['version'] as number),
    );
    SQLITE_MIGRATIONS.forEach((sql, i) => {
      const version = i + 1;
      if (done.has(version)) return;
      this.db.transaction(() => {
        this.db.exec(sql);
        this.db.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(version, new Date().toISOString());
      })();
    });
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    await this.writers.run(async () => this.db.close());
  }

  async createSandbox(row: { id: string; name: string }): Promise<void> {
    this.run('INSERT INTO sandboxes (id, name, created_at) VALUES (?, ?, ?)', row.id, row.name, new Date().toISOString());
  }

  async getSandbox(id: string): Promise<SandboxRow | undefined> {
    const r = this.get('SELECT * FROM sandboxes WHERE id = ?', id);
    return r && { id: r['id'] as string, name: r['name'] as string, createdAt: r['created_at'] as string };
  }

  async listSandboxes(): Promise<SandboxRow[]> {
    return this.all('SELECT * FROM sandboxes ORDER BY id').map((r) => ({
      id: r['id'] as string, name: r['name'] as string, createdAt: r['created_at'] as string,
    }));
  }

  async createApiKey(row: Omit<ApiKeyRow, 'createdAt' | 'revokedAt'>): Promise<void> {
    this.run(
      'INSERT INTO api_keys (id, sandbox_id, name, key_hash, role, instance_admin, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      row.id, row.sandboxId, row.name, row.keyHash, row.role, row.instanceAdmin ? 1 : 0, new Date().toISOString(),
    );
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRow | undefined> {
    const r = this.get('SELECT * FROM api_keys WHERE key_hash = ?', hash);
    return r && toKey(r);
  }

  async listApiKeys(sandboxId: string): Promise<ApiKeyRow[]> {
    return this.all('SELECT * FROM api_keys WHERE sandbox_id = ? ORDER BY created_at', sandboxId).map(toKey);
  }

  async revokeApiKey(sandboxId: string, id: string): Promise<boolean> {
    const r = this.run(
      'UPDATE api_keys SET revoked_at = ? WHERE sandbox_id = ? AND id = ? AND revoked_at IS NULL',
      new Date().toISOString(), sandboxId, id,
    );
    return r.changes > 0;
  }

  private putTableDoc(table: string, keyCol: string, sandboxId: string, key: string, body: unknown): void {
    this.run(
      `INSERT INTO ${table} (sandbox_id, ${keyCol}, body) VALUES (?, ?, ?) ON CONFLICT (sandbox_id, ${keyCol}) DO UPDATE SET body = excluded.body`,
      sandboxId, key, JSON.stringify(body),
    );
  }

  private getTableDoc<T>(table: string, keyCol: string, sandboxId: string, key: string): T | undefined {
    const r = this.get(`SELECT body FROM ${table} WHERE sandbox_id = ? AND ${keyCol} = ?`, sandboxId, key);
    return r ? (JSON.parse(r['body'] as string) as T) : undefined;
  }

  private listTableDocs<T>(table: string, keyCol: string, sandboxId: string): T[] {
    return this.all(`SELECT body FROM ${table} WHERE sandbox_id = ? ORDER BY ${keyCol}`, sandboxId).map(
      (r) => JSON.parse(r['body'] as string) as T,
    );
  }

  async putSchema(sandboxId: string, schema: SchemaDef): Promise<void> {
    this.putTableDoc('schemas', 'id', sandboxId, schema.id, schema);
  }
  async getSchema(sandboxId: string, id: string): Promise<SchemaDef | undefined> {
    return this.getTableDoc('schemas', 'id', sandboxId, id);
  }
  async listSchemas(sandboxId: string): Promise<SchemaDef[]> {
    return this.listTableDocs('schemas', 'id', sandboxId);
  }
  async putDataset(sandboxId: string, dataset: DatasetDef): Promise<void> {
    this.putTableDoc('datasets', 'id', sandboxId, dataset.id, dataset);
  }
  async getDataset(sandboxId: string, id: string): Promise<DatasetDef | undefined> {
    return this.getTableDoc('datasets', 'id', sandboxId, id);
  }
  async listDatasets(sandboxId: string): Promise<DatasetDef[]> {
    return this.listTableDocs('datasets', 'id', sandboxId);
  }
  async putNamespace(sandboxId: string, ns: NamespaceDef): Promise<void> {
    this.putTableDoc('namespaces', 'code_key', sandboxId, namespaceKey(ns.code), ns);
  }
  async listNamespaces(sandboxId: string): Promise<NamespaceDef[]> {
    return this.listTableDocs('namespaces', 'code_key', sandboxId);
  }

  async ingest<T>(sandboxId: string, fn: (tx: IngestTx) => Promise<T>): Promise<T> {
    return this.writers.run(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      // Another connection (a second process on the file) may have written identities.
      const version = (this.dataVersionStmt ??= this.db.prepare('PRAGMA data_version').pluck()).get() as number;
      if (version !== this.dataVersion) this.graphs.clear();
      this.dataVersion = version;
      try {
        const result = await fn(this.ingestTx(sandboxId));
        this.db.exec('COMMIT');
        this.wrote();
        return result;
      } catch (err) {
        // The graphs dropped for this transaction's writes stay dropped; one read inside it could hold them.
        this.graphs.clear();
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  private ingestTx(sandboxId: string): IngestTx {
    return {
      graphMembersOf: async (identities) => {
        // One lookup per identity reads its whole graph (identity → graph → members); identities
        // already found in a graph read earlier are skipped, so a graph is read once.
        const loaded = new Set<string>();
        const out: StoredIdentity[] = [];
        for (const i of identities) {
          if (loaded.has(identityKey(i))) continue;
          const held = this.graphs.get(sandboxId, i.ns, i.id);
          if (held) {
            for (const m of held) {
              loaded.add(identityKey(m));
              out.push(m);
            }
            continue;
          }
          // Raw rows (arrays): no per-row object with column names to build and drop.
          const stmt = (this.graphMembersStmt ??= this.db
            .prepare(
              `SELECT m.ns, m.id, m.graph_id, m.type, m.last_seen FROM identities AS k
               JOIN identities AS m INDEXED BY identities_graph ON m.sandbox_id = k.sandbox_id AND m.graph_id = k.graph_id
               WHERE k.sandbox_id = ? AND k.ns = ? AND k.id = ?`,
            )
            .raw(true));
          const graph: StoredIdentity[] = [];
          for (const r of stmt.all(sandboxId, i.ns, i.id) as unknown[][]) {
            const m: StoredIdentity = { ns: r[0] as string, id: r[1] as string, graphId: r[2] as string, type: r[3] as NamespaceType, lastSeen: r[4] as number };
            loaded.add(identityKey(m));
            out.push(m);
            graph.push(m);
          }
          this.graphs.put(sandboxId, graph);
        }
        return out;
      },
      fragments: async (keys) => {
        const out = new Map<string, StoredFragment>();
        for (const k of keys) {
          const r = this.get(
            'SELECT * FROM fragments WHERE sandbox_id = ? AND dataset_id = ? AND ns = ? AND id = ?',
            sandboxId, k.datasetId, k.identity.ns, k.identity.id,
          );
          if (r) out.set(fragmentKey(k.datasetId, k.identity), toFragment(r));
        }
        return out;
      },
      existingEvents: async (keys) => {
        const out = new Set<string>();
        for (const k of keys) {
          if (this.get('SELECT 1 AS x FROM events WHERE sandbox_id = ? AND dataset_id = ? AND event_id = ?', sandboxId, k.datasetId, k.eventId)) {
            out.add(eventKey(k.datasetId, k.eventId));
          }
        }
        return out;
      },
      apply: async (plan, now) => this.applyPlan(sandboxId, plan, now),
      appendLake: async (rows, now) => {
        for (const r of rows) {
          this.run('INSERT INTO lake_records (sandbox_id, dataset_id, body, at) VALUES (?, ?, ?, ?)', sandboxId, r.datasetId, JSON.stringify(r.body), now);
        }
      },
    };
  }

  private applyPlan(sandboxId: string, plan: WritePlan, now: number): number[] {
    this.graphs.written(sandboxId, plan);
    for (const { from, to } of plan.graphMerges) {
      this.run('UPDATE identities INDEXED BY identities_graph SET graph_id = ? WHERE sandbox_id = ? AND graph_id = ?', to, sandboxId, from);
      this.run('UPDATE fragments SET graph_id = ? WHERE sandbox_id = ? AND graph_id = ?', to, sandboxId, from);
      this.run('UPDATE events SET graph_id = ? WHERE sandbox_id = ? AND graph_id = ?', to, sandboxId, from);
    }
    for (const e of plan.evictedIdentities) {
      this.run('DELETE FROM identities WHERE sandbox_id = ? AND ns = ? AND id = ?', sandboxId, e.ns, e.id);
    }
    // Rows go in one statement each: multi-row VALUES measured slower here for these tables
    // (the B-tree work per row dominates, and VALUES rows are copied once more).
    for (const i of plan.newIdentities) {
      this.run(
        'INSERT INTO identities (sandbox_id, ns, id, graph_id, type, last_seen) VALUES (?, ?, ?, ?, ?, ?)',
        sandboxId, i.ns, i.id, i.graphId, i.type, i.lastSeen,
      );
    }
    for (const t of plan.touchedIdentities) {
      this.run('UPDATE identities SET last_seen = ? WHERE sandbox_id = ? AND ns = ? AND id = ?', t.lastSeen, sandboxId, t.ns, t.id);
    }
    for (const f of plan.fragments) {
      this.run(
        `INSERT INTO fragments (sandbox_id, dataset_id, ns, id, graph_id, attributes, ts) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (sandbox_id, dataset_id, ns, id) DO UPDATE SET graph_id = excluded.graph_id, attributes = excluded.attributes, ts = excluded.ts`,
        sandboxId, f.datasetId, f.ns, f.id, f.graphId, JSON.stringify(f.attributes), f.timestamp,
      );
    }
    for (const e of plan.events) {
      this.run(
        'INSERT INTO events (sandbox_id, dataset_id, event_id, graph_id, ts, body) VALUES (?, ?, ?, ?, ?, ?)',
        sandboxId, e.datasetId, e.eventId, e.graphId, e.timestamp, e.bodyJson ?? JSON.stringify(e.body),
      );
    }
    return this.appendChanges(sandboxId, plan.changes, now);
  }

  /**
   * Appends changes to the log with multi-row INSERTs of power-of-two sizes (few statements to
   * prepare); returns their seqs in order. Small appended rows are where a statement per row costs
   * most. `changes.seq` is AUTOINCREMENT and this connection is the only writer inside the
   * transaction, so the rows of one statement get consecutive seqs ending at its last rowid.
   */
  private appendChanges(sandboxId: string, changes: WritePlan['changes'], now: number): number[] {
    const seqs: number[] = new Array(changes.length);
    for (let at = 0; at < changes.length; ) {
      let n = MAX_CHANGES_PER_STATEMENT;
      while (n > changes.length - at) n >>= 1;
      const log = 31 - Math.clz32(n);
      let stmt = this.appendChangeStmts[log];
      if (!stmt) {
        stmt = this.db.prepare(`INSERT INTO changes (sandbox_id, body, at) VALUES ${new Array<string>(n).fill('(?, ?, ?)').join(', ')}`);
        this.appendChangeStmts[log] = stmt;
      }
      const v: unknown[] = new Array(n * 3);
      for (let k = 0; k < n; k++) {
        v[k * 3] = sandboxId;
        v[k * 3 + 1] = JSON.stringify(changes[at + k]);
        v[k * 3 + 2] = now;
      }
      const last = Number(stmt.run(v).lastInsertRowid);
      for (let k = 0; k < n; k++) seqs[at + k] = last - n + 1 + k;
      at += n;
    }
    return seqs;
  }

  /**
   * A profile read in one synchronous pass over cached statements (no other work interleaves):
   * the graph of the identity, then its identities, fragments, memberships and newest events.
   * One compound statement (UNION ALL of the four) measured slower here than these five
   * primary-key / index lookups, so they stay separate.
   */
  async readProfile(
    sandboxId: string,
    identity: IdentityRef,
    opts: { eventsLimit: number; before?: { timestamp: number; eventId: string } | undefined },
  ): Promise<ProfileRead | undefined> {
    const g = this.get('SELECT graph_id FROM identities WHERE sandbox_id = ? AND ns = ? AND id = ?', sandboxId, identity.ns, identity.id)?.['graph_id'] as
      | string
      | undefined;
    if (g === undefined) return undefined;
    const identities = this.all(
      'SELECT ns, id, graph_id, type, last_seen FROM identities INDEXED BY identities_graph WHERE sandbox_id = ? AND graph_id = ? ORDER BY ns, id',
      sandboxId, g,
    ).map(toIdentity);
    const fragments = this.all('SELECT * FROM fragments WHERE sandbox_id = ? AND graph_id = ?', sandboxId, g).map(toFragment);
    const memberships = this.all(
      'SELECT audience_id, status, last_qualification_time FROM memberships WHERE sandbox_id = ? AND profile_id = ?',
      sandboxId, g,
    ).map((r) => ({
      audienceId: r['audience_id'] as string,
      status: r['status'] as Membership['status'],
      lastQualificationTime: r['last_qualification_time'] as number,
    }));
    const events = opts.eventsLimit <= 0
      ? []
      : opts.before
        ? this.all(
            `SELECT dataset_id, event_id, ts, body FROM events WHERE sandbox_id = ? AND graph_id = ?
             AND (ts < ? OR (ts = ? AND event_id < ?)) ORDER BY ts DESC, event_id DESC LIMIT ?`,
            sandboxId, g, opts.before.timestamp, opts.before.timestamp, opts.before.eventId, opts.eventsLimit,
          ).map(toEvent)
        : this.all(
            'SELECT dataset_id, event_id, ts, body FROM events WHERE sandbox_id = ? AND graph_id = ? ORDER BY ts DESC, event_id DESC LIMIT ?',
            sandboxId, g, opts.eventsLimit,
          ).map(toEvent);
    return { profileId: g, identities, fragments, memberships, events };
  }

  async findProfileId(sandboxId: string, identity: IdentityRef): Promise<string | undefined> {
    const r = this.get('SELECT graph_id FROM identities WHERE sandbox_id = ? AND ns = ? AND id = ?', sandboxId, identity.ns, identity.id);
    return r ? (r['graph_id'] as string) : undefined;
  }

  async profileIdentities(sandboxId: string, profileId: string): Promise<StoredIdentity[]> {
    return this.all('SELECT * FROM identities INDEXED BY identities_graph WHERE sandbox_id = ? AND graph_id = ? ORDER BY ns, id', sandboxId, profileId).map(toIdentity);
  }

  async profileFragments(sandboxId: string, profileId: string): Promise<StoredFragment[]> {
    return this.all('SELECT * FROM fragments WHERE sandbox_id = ? AND graph_id = ?', sandboxId, profileId).map(toFragment);
  }

  async profileEvents(
    sandboxId: string,
    profileId: string,
    opts: { limit: number; before?: { timestamp: number; eventId: string } | undefined },
  ): Promise<EventRow[]> {
    const rows = opts.before
      ? this.all(
          `SELECT dataset_id, event_id, ts, body FROM events WHERE sandbox_id = ? AND graph_id = ?
           AND (ts < ? OR (ts = ? AND event_id < ?)) ORDER BY ts DESC, event_id DESC LIMIT ?`,
          sandboxId, profileId, opts.before.timestamp, opts.before.timestamp, opts.before.eventId, opts.limit,
        )
      : this.all(
          'SELECT dataset_id, event_id, ts, body FROM events WHERE sandbox_id = ? AND graph_id = ? ORDER BY ts DESC, event_id DESC LIMIT ?',
          sandboxId, profileId, opts.limit,
        );
    return rows.map(toEvent);
  }

  async deleteProfile(sandboxId: string, profileId: string, now: number): Promise<{ identities: number; fragments: number; events: number }> {
    return this.writers.run(async () =>
      this.db.transaction(() => {
        this.graphs.dropGraph(sandboxId, profileId);
        this.run(
          "DELETE FROM id_syncs WHERE sandbox_id = ? AND ecid IN (SELECT id FROM identities INDEXED BY identities_graph WHERE sandbox_id = ? AND graph_id = ? AND ns = 'ecid')",
          sandboxId, sandboxId, profileId,
        );
        const identities = this.run('DELETE FROM identities INDEXED BY identities_graph WHERE sandbox_id = ? AND graph_id = ?', sandboxId, profileId).changes;
        const fragments = this.run('DELETE FROM fragments WHERE sandbox_id = ? AND graph_id = ?', sandboxId, profileId).changes;
        const events = this.run('DELETE FROM events WHERE sandbox_id = ? AND graph_id = ?', sandboxId, profileId).changes;
        this.run('DELETE FROM memberships WHERE sandbox_id = ? AND profile_id = ?', sandboxId, profileId);
        this.run('DELETE FROM reevaluations WHERE sandbox_id = ? AND profile_id = ?', sandboxId, profileId);
        this.run('DELETE FROM profile_snapshots WHERE sandbox_id = ? AND profile_id = ?', sandboxId, profileId);
        this.run('DELETE FROM outbox WHERE sandbox_id = ? AND profile_id = ?', sandboxId, profileId);
        this.run('INSERT INTO deleted_profiles (sandbox_id, profile_id, at) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET at = excluded.at', sandboxId, profileId, now);
        this.run('INSERT INTO changes (sandbox_id, body, at) VALUES (?, ?, ?)', sandboxId, JSON.stringify({ profileId, type: 'delete' }), now);
        return { identities, fragments, events };
      })(),
    );
  }

  async countLake(sandboxId: string, datasetId: string): Promise<number> {
    return this.get('SELECT COUNT(*) AS n FROM lake_records WHERE sandbox_id = ? AND dataset_id = ?', sandboxId, datasetId)?.['n'] as number;
  }

  async readChanges(afterSeq: number, limit: number): Promise<ChangeRow[]> {
    return this.all('SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?', afterSeq, limit).map((r) => ({
      seq: r['seq'] as number,
      sandboxId: r['sandbox_id'] as string,
      change: JSON.parse(r['body'] as string) as ChangeRow['change'],
      at: r['at'] as number,
    }));
  }

  async getCursor(name: string): Promise<number> {
    return (this.get('SELECT seq FROM cursors WHERE name = ?', name)?.['seq'] as number | undefined) ?? 0;
  }

  /**
   * Joins the membership writes' group commit: the change feed and activation move their cursors
   * right after each ingestion group, when the edge requests of that group write their
   * memberships; a commit of its own per cursor cost a transaction (and a log frame) each.
   */
  async setCursor(name: string, seq: number): Promise<void> {
    await this.queueMembershipWrite({ sandboxId: '', writes: [], now: 0, cursor: { name, seq } });
  }

  async addFailedRecords(rows: ReadonlyArray<Omit<FailedRecordRow, 'status' | 'createdAt' | 'replayedAt'>>): Promise<void> {
    const at = new Date().toISOString();
    this.db.transaction(() => {
      for (const r of rows) {
        this.run(
          `INSERT INTO failed_records (id, sandbox_id, dataset_id, source, position, code, message, details, payload, status, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'failed', ?)`,
          r.id, r.sandboxId, r.datasetId, r.source, r.position, r.code, r.message, JSON.stringify(r.details), r.payload, at,
        );
      }
    })();
  }

  async listFailedRecords(
    sandboxId: string,
    filter: { datasetId?: string | undefined; source?: string | undefined; status?: FailedRecordRow['status'] | undefined },
    page: Page,
  ): Promise<FailedRecordRow[]> {
    const where = ['sandbox_id = ?'];
    const params: unknown[] = [sandboxId];
    if (filter.datasetId) (where.push('dataset_id = ?'), params.push(filter.datasetId));
    if (filter.source) (where.push('source = ?'), params.push(filter.source));
    if (filter.status) (where.push('status = ?'), params.push(filter.status));
    if (page.cursor) (where.push('id < ?'), params.push(page.cursor));
    params.push(page.limit);
    return this.all(`SELECT * FROM failed_records WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`, ...params).map(toFailed);
  }

  async getFailedRecords(sandboxId: string, ids: readonly string[]): Promise<FailedRecordRow[]> {
    return ids
      .map((id) => this.get('SELECT * FROM failed_records WHERE sandbox_id = ? AND id = ?', sandboxId, id))
      .filter((r): r is Row => !!r)
      .map(toFailed);
  }

  async setFailedStatus(sandboxId: string, ids: readonly string[], status: FailedRecordRow['status'], at: string): Promise<void> {
    this.db.transaction(() => {
      for (const id of ids) {
        this.run('UPDATE failed_records SET status = ?, replayed_at = ? WHERE sandbox_id = ? AND id = ?', status, at, sandboxId, id);
      }
    })();
  }

  async purgeFailedRecords(sandboxId: string, needles: readonly string[]): Promise<number> {
    let n = 0;
    for (const needle of needles) {
      if (needle.length === 0) continue;
      n += this.run('DELETE FROM failed_records WHERE sandbox_id = ? AND instr(unicode_lower(payload), ?) > 0', sandboxId, needle.toLowerCase()).changes;
    }
    return n;
  }

  async putAudience(sandboxId: string, audience: AudienceRow): Promise<void> {
    this.putTableDoc('audiences', 'id', sandboxId, audience.id, audience);
  }
  async getAudience(sandboxId: string, id: string): Promise<AudienceRow | undefined> {
    return this.getTableDoc('audiences', 'id', sandboxId, id);
  }
  async listAudiences(sandboxId: string): Promise<AudienceRow[]> {
    return this.listTableDocs('audiences', 'id', sandboxId);
  }
  async deleteAudience(sandboxId: string, id: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.run('DELETE FROM memberships WHERE sandbox_id = ? AND audience_id = ?', sandboxId, id);
      this.run('DELETE FROM audience_sizes WHERE sandbox_id = ? AND audience_id = ?', sandboxId, id);
      return this.run('DELETE FROM audiences WHERE sandbox_id = ? AND id = ?', sandboxId, id).changes > 0;
    })();
  }

  async memberships(sandboxId: string, profileIds: readonly string[]): Promise<Map<string, Membership[]>> {
    const out = new Map<string, Membership[]>(profileIds.map((p) => [p, []]));
    const rows = this.all(
      `SELECT profile_id, audience_id, status, last_qualification_time FROM memberships
       WHERE sandbox_id = ? AND profile_id IN (SELECT value FROM json_each(?))`,
      sandboxId, JSON.stringify(profileIds),
    );
    for (const r of rows) {
      out.get(r['profile_id'] as string)?.push({
        audienceId: r['audience_id'] as string,
        status: r['status'] as Membership['status'],
        lastQualificationTime: r['last_qualification_time'] as number,
      });
    }
    return out;
  }

  /**
   * Group commit: the writes of every call made in one turn of the event loop (concurrent edge
   * requests, each evaluating its visitor) are committed in one transaction, in call order, so
   * the outcome equals committing the calls one after another; each call resolves once that
   * transaction committed. A commit writes every index page the writes touch, whatever their
   * number, so one commit per request cost more than the rest of the write. If a group fails,
   * its calls are retried one by one: a failing call never costs the others.
   */
  async writeMemberships(sandboxId: string, writes: readonly MembershipWrite[], now: number): Promise<MembershipEventRow[]> {
    if (writes.length === 0) return [];
    return this.queueMembershipWrite({ sandboxId, writes, now });
  }

  private queueMembershipWrite(w: Omit<PendingMembershipWrite, 'resolve' | 'reject'>): Promise<MembershipEventRow[]> {
    return new Promise((resolve, reject) => {
      this.membershipQueue.push({ ...w, resolve, reject });
      if (this.membershipQueue.length === 1) void this.flushMemberships();
    });
  }

  private membershipQueue: PendingMembershipWrite[] = [];

  private async flushMemberships(): Promise<void> {
    // Taken between ingestion transactions (the writers' mutex): this connection's open
    // ingestion transaction would otherwise take these writes in as a savepoint, and their
    // events could be published before (or without) the commit. Queued for the mutex at once
    // (a close() after the call waits for it), then one turn for the calls of this turn to join.
    await this.writers.run(async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const group = this.membershipQueue;
      this.membershipQueue = [];
      try {
        const results = this.db.transaction(() => group.map((g) => this.applyMembershipWrites(g)))();
        this.wrote();
        group.forEach((g, i) => g.resolve(results[i]!));
      } catch (err) {
        if (group.length === 1) group[0]!.reject(err);
        else {
          for (const g of group) {
            try {
              g.resolve(this.db.transaction(() => this.applyMembershipWrites(g))());
            } catch (e) {
              g.reject(e);
            }
          }
        }
      }
    });
  }

  /**
   * One call's writes, applied one by one in order (so the last write of a key decides its row).
   * Memberships are upserted and deleted one prepared statement run per row: measured cheaper
   * than one statement reading a JSON array (the per-row `->>` extractions cost more than a
   * bound run), whereas the events go in one statement from a JSON array, which beats a run per
   * row there (no conflict clause, one parse of the array).
   */
  private applyMembershipWrites({ sandboxId, writes: all, now, schedule, cursor }: PendingMembershipWrite): MembershipEventRow[] {
    if (cursor) this.stmt('INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq').run(cursor.name, cursor.seq);
    if (schedule?.length) this.applySchedule(sandboxId, schedule);
    const writes = this.withoutDeletedProfiles(sandboxId, all);
    let put: Database.Statement | undefined;
    let del: Database.Statement | undefined;
    for (const w of writes) {
      if (w.membership) {
        put ??= this.stmt(
          `INSERT INTO memberships (sandbox_id, profile_id, audience_id, status, last_qualification_time) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (sandbox_id, profile_id, audience_id) DO UPDATE SET status = excluded.status, last_qualification_time = excluded.last_qualification_time`,
        );
        put.run(sandboxId, w.profileId, w.audienceId, w.membership.status, w.membership.lastQualificationTime);
      } else {
        del ??= this.stmt('DELETE FROM memberships WHERE sandbox_id = ? AND profile_id = ? AND audience_id = ?');
        del.run(sandboxId, w.profileId, w.audienceId);
      }
    }
    const logged: Array<MembershipWrite & { event: 'realized' | 'exited' }> = [];
    const rows: Array<[string, string, string]> = [];
    for (const w of writes) {
      if (w.event === undefined) continue;
      logged.push(w as MembershipWrite & { event: 'realized' | 'exited' });
      rows.push([w.audienceId, w.profileId, w.event]);
    }
    if (!logged.length) return [];
    const done = this.run(
      `INSERT INTO membership_events (sandbox_id, audience_id, profile_id, status, at)
       SELECT ?, value ->> 0, value ->> 1, value ->> 2, ? FROM json_each(?) ORDER BY key`,
      sandboxId, now, JSON.stringify(rows),
    );
    // One statement inserting in array order under the write lock: AUTOINCREMENT hands out
    // consecutive seqs, the last of which is lastInsertRowid (no RETURNING rows to read and sort).
    if (done.changes !== logged.length) throw new Error(`membership events: ${done.changes} logged of ${logged.length}`);
    const first = Number(done.lastInsertRowid) - logged.length + 1;
    const out = new Array<MembershipEventRow>(logged.length);
    for (let i = 0; i < logged.length; i++) {
      const w = logged[i]!;
      out[i] = { seq: first + i, sandboxId, audienceId: w.audienceId, profileId: w.profileId, status: w.event, at: now };
    }
    return out;
  }

  /** One transaction for them all, between ingestion transactions (the writers' mutex). */
  async confirmMemberships(sandboxId: string, confirmations: readonly MembershipConfirmation[]): Promise<number> {
    if (!confirmations.length) return 0;
    return this.writers.run(async () => {
      const confirm = this.stmt(
        `UPDATE memberships SET status = 'existing'
         WHERE sandbox_id = ? AND profile_id = ? AND audience_id = ? AND status = 'realized' AND last_qualification_time = ?`,
      );
      const changed = this.db.transaction(() => {
        let n = 0;
        for (const c of confirmations) n += confirm.run(sandboxId, c.profileId, c.audienceId, c.lastQualificationTime).changes;
        return n;
      })();
      this.wrote();
      return changed;
    });
  }

  /**
   * The writes minus the puts and events of privacy-deleted profiles (deletes still apply). In
   * the writers' order, so a delete committed before this transaction is always seen.
   */
  private withoutDeletedProfiles(sandboxId: string, writes: readonly MembershipWrite[]): readonly MembershipWrite[] {
    if (!writes.length) return writes;
    const gone = batch.deletedAmong(this.db, sandboxId, () => [...new Set(writes.map((w) => w.profileId))]);
    if (!gone.size) return writes;
    return writes.flatMap((w) => (!gone.has(w.profileId) ? [w] : w.membership === null ? [{ ...w, event: undefined }] : []));
  }

  async listMembers(
    sandboxId: string,
    audienceId: string,
    opts: { statuses: ReadonlyArray<Membership['status']>; limit: number; after?: string | undefined },
  ): Promise<Array<{ profileId: string; membership: Membership }>> {
    const marks = opts.statuses.map(() => '?').join(', ');
    return this.all(
      // INDEXED BY: without statistics the planner walks the whole sandbox by primary key instead.
      `SELECT profile_id, status, last_qualification_time FROM memberships INDEXED BY memberships_audience
       WHERE sandbox_id = ? AND audience_id = ? AND profile_id > ? AND status IN (${marks}) ORDER BY profile_id LIMIT ?`,
      sandboxId, audienceId, opts.after ?? '', ...opts.statuses, opts.limit,
    ).map((r) => ({
      profileId: r['profile_id'] as string,
      membership: { audienceId, status: r['status'] as Membership['status'], lastQualificationTime: r['last_qualification_time'] as number },
    }));
  }

  async countMembers(sandboxId: string, audienceId: string): Promise<Record<Membership['status'], number>> {
    const counts: Record<Membership['status'], number> = { realized: 0, existing: 0, exited: 0 };
    for (const r of this.all('SELECT status, COUNT(*) AS n FROM memberships INDEXED BY memberships_audience WHERE sandbox_id = ? AND audience_id = ? GROUP BY status', sandboxId, audienceId)) {
      counts[r['status'] as Membership['status']] = r['n'] as number;
    }
    return counts;
  }

  async readMembershipEvents(sandboxId: string | undefined, afterSeq: number, limit: number): Promise<MembershipEventRow[]> {
    const rows = sandboxId
      ? this.all('SELECT * FROM membership_events WHERE sandbox_id = ? AND seq > ? ORDER BY seq LIMIT ?', sandboxId, afterSeq, limit)
      : this.all('SELECT * FROM membership_events WHERE seq > ? ORDER BY seq LIMIT ?', afterSeq, limit);
    return rows.map((r) => ({
      seq: r['seq'] as number,
      sandboxId: r['sandbox_id'] as string,
      audienceId: r['audience_id'] as string,
      profileId: r['profile_id'] as string,
      status: r['status'] as MembershipEventRow['status'],
      at: r['at'] as number,
    }));
  }

  async membershipEventHead(sandboxId: string): Promise<number> {
    return (this.get('SELECT MAX(seq) AS s FROM membership_events WHERE sandbox_id = ?', sandboxId)?.['s'] as number | null) ?? 0;
  }

  async purgeExitedMemberships(before: number): Promise<number> {
    this.run('DELETE FROM deleted_profiles WHERE at < ?', before);
    return this.run("DELETE FROM memberships WHERE status = 'exited' AND last_qualification_time < ?", before).changes;
  }

  async countProfiles(sandboxId: string): Promise<number> {
    return this.get('SELECT COUNT(DISTINCT graph_id) AS n FROM identities WHERE sandbox_id = ?', sandboxId)?.['n'] as number;
  }

  async listProfileIds(sandboxId: string, after: string | undefined, limit: number): Promise<string[]> {
    return this.all(
      'SELECT DISTINCT graph_id FROM identities INDEXED BY identities_graph WHERE sandbox_id = ? AND graph_id > ? ORDER BY graph_id LIMIT ?',
      sandboxId, after ?? '', limit,
    ).map((r) => r['graph_id'] as string);
  }

  async loadProfiles(
    sandboxId: string,
    profileIds: readonly string[],
    eventsSince: number,
  ): Promise<Map<string, { fragments: StoredFragment[]; events: EventRow[] }>> {
    const out = new Map<string, { fragments: StoredFragment[]; events: EventRow[] }>(profileIds.map((p) => [p, { fragments: [], events: [] }]));
    const ids = JSON.stringify(profileIds);
    for (const r of this.all(
      'SELECT * FROM fragments INDEXED BY fragments_graph WHERE sandbox_id = ? AND graph_id IN (SELECT value FROM json_each(?))',
      sandboxId, ids,
    )) {
      out.get(r['graph_id'] as string)?.fragments.push(toFragment(r));
    }
    for (const [id, events] of this.profileEventRows(sandboxId, profileIds, eventsSince)) {
      const p = out.get(id);
      if (p) p.events = events;
    }
    return out;
  }

  async loadEvents(sandboxId: string, profileIds: readonly string[], eventsSince: number): Promise<Map<string, EventRow[]>> {
    return this.profileEventRows(sandboxId, profileIds, eventsSince);
  }

  /** Events of the profiles at or after `eventsSince`, oldest first; only profiles with events are keys. */
  private profileEventRows(sandboxId: string, profileIds: readonly string[], eventsSince: number): Map<string, EventRow[]> {
    const out = new Map<string, EventRow[]>();
    // One profile (an edge request, most streaming changes) is a plain range of the index:
    // json_each's table of ids costs more than the read itself there.
    const rows = profileIds.length === 1
      ? this.all(
          `SELECT graph_id, dataset_id, event_id, ts, body FROM events INDEXED BY events_graph
           WHERE sandbox_id = ? AND graph_id = ? AND ts >= ? ORDER BY ts, event_id`,
          sandboxId, profileIds[0], eventsSince,
        )
      : this.all(
          `SELECT graph_id, dataset_id, event_id, ts, body FROM events INDEXED BY events_graph
           WHERE sandbox_id = ? AND graph_id IN (SELECT value FROM json_each(?)) AND ts >= ? ORDER BY graph_id, ts, event_id`,
          sandboxId, JSON.stringify(profileIds), eventsSince,
        );
    for (const r of rows) {
      const id = r['graph_id'] as string;
      let list = out.get(id);
      if (!list) out.set(id, (list = []));
      list.push(toEvent(r));
    }
    return out;
  }

  async changeHead(_sandboxId: string): Promise<number> {
    return this.writers.run(async () => (this.get('SELECT MAX(seq) AS s FROM changes')?.['s'] as number | null) ?? 0);
  }

  /**
   * One statement per chunk builds each snapshot in SQLite by concatenation: the stored JSON
   * texts of fragments (rowid order, as loadProfiles reads them) and events (ts, event_id order)
   * are spliced into `{"f":[[dataset, ns, id, ts, attributes]…],"e":[[dataset, eventId, ts, body]…]}`
   * without being parsed. Chunks are separate transactions, each taken between ingestion batches
   * (the writers' mutex), so ingestion is not held up long and no half-applied batch is read.
   */
  async refreshProfileSnapshots(sandboxId: string, profileIds: readonly string[] | undefined, eventsSince: number): Promise<{ written: number; removed: number }> {
    const build = (ids: string) => `
      INSERT OR REPLACE INTO profile_snapshots (sandbox_id, profile_id, body)
      SELECT @sb, g.graph_id, '{"f":[' || coalesce((
          SELECT group_concat('[' || json_quote(f.dataset_id) || ',' || json_quote(f.ns) || ',' || json_quote(f.id) || ',' || f.ts || ',' || f.attributes || ']', ',' ORDER BY f.rowid)
          FROM fragments f INDEXED BY fragments_graph WHERE f.sandbox_id = @sb AND f.graph_id = g.graph_id), '')
        || '],"e":[' || coalesce((
          SELECT group_concat('[' || json_quote(e.dataset_id) || ',' || json_quote(e.event_id) || ',' || e.ts || ',' || e.body || ']', ',' ORDER BY e.ts, e.event_id)
          FROM events e INDEXED BY events_graph WHERE e.sandbox_id = @sb AND e.graph_id = g.graph_id AND e.ts >= @since), '')
        || ']}'
      FROM (SELECT DISTINCT graph_id FROM identities INDEXED BY identities_graph WHERE sandbox_id = @sb AND ${ids}) g`;
    let written = 0;
    let removed = 0;
    if (profileIds === undefined) {
      removed += await this.writers.run(async () =>
        this.run('DELETE FROM profile_snapshots WHERE sandbox_id = ? AND profile_id NOT IN (SELECT graph_id FROM identities INDEXED BY identities_graph WHERE sandbox_id = ?)', sandboxId, sandboxId).changes,
      );
      let after = '';
      for (;;) {
        const last = this.get(
          'SELECT MAX(graph_id) AS g FROM (SELECT DISTINCT graph_id FROM identities INDEXED BY identities_graph WHERE sandbox_id = ? AND graph_id > ? ORDER BY graph_id LIMIT 2000)',
          sandboxId, after,
        )?.['g'] as string | null | undefined;
        if (last === null || last === undefined) break;
        const range = { sb: sandboxId, since: eventsSince, after, last };
        written += await this.writers.run(async () => this.db.transaction(() => this.run(build('graph_id > @after AND graph_id <= @last'), range).changes)());
        after = last;
      }
      return { written, removed };
    }
    const CHUNK = 1000;
    for (let i = 0; i < profileIds.length; i += CHUNK) {
      const ids = JSON.stringify(profileIds.slice(i, i + CHUNK));
      await this.writers.run(async () => this.db.transaction(() => {
        removed += this.run(
          `DELETE FROM profile_snapshots WHERE sandbox_id = @sb AND profile_id IN (SELECT value FROM json_each(@ids))
           AND profile_id NOT IN (SELECT graph_id FROM identities INDEXED BY identities_graph WHERE sandbox_id = @sb AND graph_id IN (SELECT value FROM json_each(@ids)))`,
          { sb: sandboxId, ids },
        ).changes;
        written += this.run(build('graph_id IN (SELECT value FROM json_each(@ids))'), { sb: sandboxId, since: eventsSince, ids }).changes;
      })());
    }
    return { written, removed };
  }

  async scanProfileSnapshots(sandboxId: string, after: string | undefined, limit: number, eventsSince: number): Promise<ProfileSnapshot[]> {
    return this.all('SELECT profile_id, body FROM profile_snapshots WHERE sandbox_id = ? AND profile_id > ? ORDER BY profile_id LIMIT ?', sandboxId, after ?? '', limit).map(
      (r) => decodeSnapshot(r['profile_id'] as string, r['body'] as string, eventsSince),
    );
  }

  async scanBatchProfiles(sandboxId: string, after: string | undefined, limit: number, chunk: number): Promise<BatchProfileChunk[]> {
    return batch.scanBatchProfiles(this.db, sandboxId, after, limit, chunk);
  }

  /** Between ingestion transactions (the writers' mutex), as writeMemberships. */
  async writeBatchMemberships(sandboxId: string, page: BatchMembershipPage, now: number): Promise<MembershipEventRow[]> {
    return this.writers.run(async () => batch.writeBatchMemberships(this.db, sandboxId, page, now));
  }

  /**
   * Per profile the earliest request wins; an equal or later one leaves the row unwritten. One
   * statement, between ingestion transactions (see writeMemberships).
   */
  /**
   * Joins the membership writes' group commit: an evaluation asks for its re-evaluations beside
   * its membership writes, and a commit of their own per evaluation cost as much as the upsert.
   */
  async scheduleReevaluations(sandboxId: string, items: ReadonlyArray<{ profileId: string; dueAt: number }>): Promise<void> {
    if (!items.length) return;
    await this.queueMembershipWrite({ sandboxId, writes: [], now: 0, schedule: items });
  }

  private applySchedule(sandboxId: string, items: ReadonlyArray<{ profileId: string; dueAt: number }>): void {
    this.run(
      `INSERT INTO reevaluations (sandbox_id, profile_id, due_at)
       SELECT ?, value ->> 0, MIN(value ->> 1) FROM json_each(?) GROUP BY value ->> 0
       ON CONFLICT (sandbox_id, profile_id) DO UPDATE SET due_at = excluded.due_at WHERE excluded.due_at < due_at`,
      sandboxId, JSON.stringify(items.map((i) => [i.profileId, i.dueAt])),
    );
  }

  /**
   * Leases up to `limit` due re-evaluations (requests due at `now`, expired leases), earliest
   * first; see REEVALUATION_NOT_DUE. Each kind is read in order from its own index and merged (one
   * OR would read and sort every due row). Between ingestion transactions, as the writes.
   */
  async takeDueReevaluations(now: number, limit: number): Promise<Array<{ sandboxId: string; profileId: string; dueAt: number }>> {
    return this.writers.run(async () =>
      this.db.transaction(() => {
        const rows = this.all(
          `SELECT sandbox_id, profile_id, due_at, taken FROM (
             SELECT sandbox_id, profile_id, due_at, min(due_at, coalesce(lease, due_at)) AS taken FROM (SELECT * FROM reevaluations WHERE due_at <= ? ORDER BY due_at LIMIT ?)
             UNION
             SELECT sandbox_id, profile_id, due_at, min(due_at, lease) FROM (SELECT * FROM reevaluations WHERE lease <= ? ORDER BY lease LIMIT ?))
           ORDER BY taken LIMIT ?`,
          now, limit, now, limit, limit,
        );
        const lease = now + REEVALUATION_LEASE_MS;
        for (const r of rows) {
          const dueAt = (r['due_at'] as number) <= now ? REEVALUATION_NOT_DUE : r['due_at'];
          this.run('UPDATE reevaluations SET due_at = ?, lease = ? WHERE sandbox_id = ? AND profile_id = ?', dueAt, lease, r['sandbox_id'], r['profile_id']);
        }
        return rows.map((r) => ({ sandboxId: r['sandbox_id'] as string, profileId: r['profile_id'] as string, dueAt: r['taken'] as number }));
      })(),
    );
  }

  /** Removes the leased rows no request came for since their take; the others keep theirs, unleased. */
  async finishReevaluations(sandboxId: string, profileIds: readonly string[], takenAt: number): Promise<void> {
    if (!profileIds.length) return;
    const ids = JSON.stringify(profileIds);
    const lease = takenAt + REEVALUATION_LEASE_MS;
    await this.writers.run(async () =>
      this.db.transaction(() => {
        this.run(
          'DELETE FROM reevaluations WHERE sandbox_id = ? AND profile_id IN (SELECT value FROM json_each(?)) AND lease = ? AND due_at = ?',
          sandboxId, ids, lease, REEVALUATION_NOT_DUE,
        );
        this.run('UPDATE reevaluations SET lease = NULL WHERE sandbox_id = ? AND profile_id IN (SELECT value FROM json_each(?)) AND lease = ?', sandboxId, ids, lease);
      })(),
    );
  }

  async addAudienceSize(sandboxId: string, audienceId: string, point: AudienceSizePoint): Promise<void> {
    this.run('INSERT INTO audience_sizes (sandbox_id, audience_id, at, size, source) VALUES (?, ?, ?, ?, ?)', sandboxId, audienceId, point.at, point.size, point.source);
  }

  async audienceSizes(sandboxId: string, audienceId: string, limit: number): Promise<AudienceSizePoint[]> {
    return this.all('SELECT at, size, source FROM audience_sizes WHERE sandbox_id = ? AND audience_id = ? ORDER BY at DESC LIMIT ?', sandboxId, audienceId, limit).map(
      (r) => ({ at: r['at'] as number, size: r['size'] as number, source: r['source'] as AudienceSizePoint['source'] }),
    );
  }

  async putDoc(sandboxId: string, kind: string, id: string, body: unknown): Promise<void> {
    this.run(
      'INSERT INTO docs (sandbox_id, kind, id, body) VALUES (?, ?, ?, ?) ON CONFLICT (sandbox_id, kind, id) DO UPDATE SET body = excluded.body',
      sandboxId, kind, id, JSON.stringify(body),
    );
  }

  async getDoc<T>(sandboxId: string, kind: string, id: string): Promise<T | undefined> {
    const r = this.get('SELECT body FROM docs WHERE sandbox_id = ? AND kind = ? AND id = ?', sandboxId, kind, id);
    return r ? (JSON.parse(r['body'] as string) as T) : undefined;
  }

  async listDocs<T>(sandboxId: string, kind: string): Promise<T[]> {
    return this.all('SELECT body FROM docs WHERE sandbox_id = ? AND kind = ? ORDER BY id', sandboxId, kind).map((r) => JSON.parse(r['body'] as string) as T);
  }

  async deleteDoc(sandboxId: string, kind: string, id: string): Promise<boolean> {
    return this.run('DELETE FROM docs WHERE sandbox_id = ? AND kind = ? AND id = ?', sandboxId, kind, id).changes > 0;
  }

  async enqueueExports(rows: ReadonlyArray<Pick<OutboxRow, 'sandboxId' | 'dataflowId' | 'profileId' | 'idempotencyKey' | 'payload' | 'createdAt'>>): Promise<void> {
    this.db.transaction(() => {
      for (const r of rows) {
        this.run(
          `INSERT INTO outbox (sandbox_id, dataflow_id, profile_id, idempotency_key, status, next_attempt_at, created_at)
           VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
          r.sandboxId, r.dataflowId, r.profileId, r.idempotencyKey, r.createdAt, r.createdAt,
        );
        this.run('INSERT INTO outbox_payloads (id, payload) VALUES (last_insert_rowid(), ?)', JSON.stringify(r.payload));
      }
    })();
  }

  async claimExports(now: number, limit: number, leaseMs: number): Promise<OutboxRow[]> {
    // One statement takes the lease on exactly the rows read (RETURNING gives no order). Each
    // kind is read in id order from outbox_claim, so a claim costs its rows, not the backlog. The
    // rows carry a new random lease token, which fences their settlement. Payloads live beside
    // (outbox_payloads) so the update rewrites small rows; they are read in the same transaction.
    return this.db.transaction(() => {
      const rows = this.all(
        `UPDATE outbox SET status = 'inflight', lease_until = ?, lease_token = ? WHERE id IN (
           SELECT id FROM (SELECT id FROM outbox INDEXED BY outbox_claim WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?)
           UNION ALL
           SELECT id FROM (SELECT id FROM outbox INDEXED BY outbox_claim WHERE status = 'inflight' AND lease_until <= ? ORDER BY id LIMIT ?)
           ORDER BY id LIMIT ?)
         RETURNING *`,
        now + leaseMs, newLeaseToken(), now, limit, now, limit, limit,
      );
      if (!rows.length) return [];
      const byId = new Map<number, Row>();
      for (const r of rows) byId.set(r['id'] as number, r);
      for (const p of this.all('SELECT id, payload FROM outbox_payloads WHERE id IN (SELECT value FROM json_each(?))', JSON.stringify([...byId.keys()]))) {
        byId.get(p['id'] as number)!['payload'] = p['payload'];
      }
      return rows.map(toLeased).sort((a, b) => a.id - b.id);
    })();
  }

  async settleExports(outcomes: ExportSettlement): Promise<number[]> {
    // Set-based per lease token (one claim's rows share one): a row is settled only while it
    // still carries the lease its outcome was reached under.
    const byLease = <T extends { id: number; lease: number }>(rows: ReadonlyArray<T>): Map<number, T[]> => {
      const m = new Map<number, T[]>();
      for (const r of rows) {
        const list = m.get(r.lease);
        if (list) list.push(r);
        else m.set(r.lease, [r]);
      }
      return m;
    };
    return this.db.transaction(() => {
      const settled: number[] = [];
      const took = (rows: Row[]): void => {
        for (const r of rows) settled.push(r['id'] as number);
      };
      for (const [lease, rows] of byLease(outcomes.done)) {
        took(this.all('DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?)) AND lease_token = ? RETURNING id', JSON.stringify(rows.map((r) => r.id)), lease));
      }
      for (const [lease, rows] of byLease(outcomes.retry)) {
        took(this.all(
          `UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = j.value ->> 1, last_error = j.value ->> 2,
             lease_until = NULL, lease_token = NULL
           FROM json_each(?) AS j WHERE outbox.id = j.value ->> 0 AND outbox.lease_token = ? RETURNING outbox.id`,
          JSON.stringify(rows.map((r) => [r.id, r.nextAttemptAt, r.lastError])), lease,
        ));
      }
      for (const [lease, rows] of byLease(outcomes.dead)) {
        took(this.all(
          `UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = j.value ->> 1, lease_until = NULL, lease_token = NULL
           FROM json_each(?) AS j WHERE outbox.id = j.value ->> 0 AND outbox.lease_token = ? RETURNING outbox.id`,
          JSON.stringify(rows.map((r) => [r.id, r.lastError])), lease,
        ));
      }
      return settled;
    })();
  }

  async listOutbox(
    sandboxId: string,
    filter: { dataflowId?: string | undefined; status: OutboxRow['status'] },
    page: { limit: number; after?: number | undefined },
  ): Promise<OutboxRow[]> {
    const where = ['o.sandbox_id = ?', 'o.status = ?', 'o.id > ?'];
    const params: unknown[] = [sandboxId, filter.status, page.after ?? 0];
    if (filter.dataflowId) (where.push('o.dataflow_id = ?'), params.push(filter.dataflowId));
    return this.all(
      `SELECT o.*, p.payload FROM outbox o JOIN outbox_payloads p ON p.id = o.id WHERE ${where.join(' AND ')} ORDER BY o.id LIMIT ?`,
      ...params, page.limit,
    ).map(toOutbox);
  }

  async requeueDeadLetters(sandboxId: string, which: { ids: readonly number[] } | { dataflowId: string }, now: number): Promise<number> {
    const sql = "UPDATE outbox SET status = 'pending', next_attempt_at = ?, lease_until = NULL, lease_token = NULL WHERE sandbox_id = ? AND status = 'dead'";
    if ('dataflowId' in which) return this.run(`${sql} AND dataflow_id = ?`, now, sandboxId, which.dataflowId).changes;
    return this.db.transaction(() => which.ids.reduce((n, id) => n + this.run(`${sql} AND id = ?`, now, sandboxId, id).changes, 0))();
  }

  async outboxCounts(sandboxId: string, dataflowId: string): Promise<{ pending: number; inflight: number; dead: number; oldestPendingAt: number | null }> {
    const out = { pending: 0, inflight: 0, dead: 0, oldestPendingAt: null as number | null };
    for (const r of this.all(
      'SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE sandbox_id = ? AND dataflow_id = ? GROUP BY status',
      sandboxId, dataflowId,
    )) {
      const status = r['status'] as OutboxRow['status'];
      out[status] = r['n'] as number;
      if (status === 'pending') out.oldestPendingAt = r['oldest'] as number;
    }
    return out;
  }

  async addActivationStats(sandboxId: string, dataflowId: string, hour: number, deltas: Readonly<Record<string, number>>): Promise<void> {
    this.db.transaction(() => {
      for (const [metric, value] of Object.entries(deltas)) {
        this.run(
          `INSERT INTO activation_stats (sandbox_id, dataflow_id, hour, metric, value) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (sandbox_id, dataflow_id, hour, metric) DO UPDATE SET
           value = CASE WHEN excluded.metric LIKE 'max:%' THEN MAX(value, excluded.value) ELSE value + excluded.value END`,
          sandboxId, dataflowId, hour, metric, value,
        );
      }
    })();
  }

  async activationStats(sandboxId: string, dataflowId: string, sinceHour: number): Promise<Array<{ hour: number; metrics: Record<string, number> }>> {
    const byHour = new Map<number, Record<string, number>>();
    for (const r of this.all(
      'SELECT hour, metric, value FROM activation_stats WHERE sandbox_id = ? AND dataflow_id = ? AND hour >= ? ORDER BY hour',
      sandboxId, dataflowId, sinceHour,
    )) {
      const h = r['hour'] as number;
      const m = byHour.get(h) ?? {};
      m[r['metric'] as string] = r['value'] as number;
      byHour.set(h, m);
    }
    return [...byHour].map(([hour, metrics]) => ({ hour, metrics }));
  }

  async putIdSyncs(rows: readonly IdSyncRow[]): Promise<void> {
    if (!rows.length) return;
    this.db.transaction(() => {
      for (const r of rows) {
        this.run(
          `INSERT INTO id_syncs (sandbox_id, partner_id, ecid, partner_uid, synced_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (sandbox_id, partner_id, ecid) DO UPDATE SET partner_uid = excluded.partner_uid, synced_at = excluded.synced_at`,
          r.sandboxId, r.partnerId, r.ecid, r.partnerUid, r.syncedAt,
        );
      }
    })();
  }

  async idSyncsOf(sandboxId: string, partnerId: string, ecids: readonly string[]): Promise<IdSyncRow[]> {
    const out: IdSyncRow[] = [];
    for (const ecid of new Set(ecids)) {
      const r = this.get('SELECT partner_uid, synced_at FROM id_syncs WHERE sandbox_id = ? AND partner_id = ? AND ecid = ?', sandboxId, partnerId, ecid);
      if (r) out.push({ sandboxId, partnerId, ecid, partnerUid: r['partner_uid'] as string, syncedAt: r['synced_at'] as number });
    }
    return out;
  }

  async deleteIdSyncs(sandboxId: string, partnerId: string, ecids?: readonly string[]): Promise<number> {
    if (!ecids) return this.run('DELETE FROM id_syncs WHERE sandbox_id = ? AND partner_id = ?', sandboxId, partnerId).changes;
    return this.db.transaction(() =>
      ecids.reduce((n, ecid) => n + this.run('DELETE FROM id_syncs WHERE sandbox_id = ? AND partner_id = ? AND ecid = ?', sandboxId, partnerId, ecid).changes, 0),
    )();
  }

  async putJob(job: JobRow): Promise<void> {
    this.run(
      `INSERT INTO jobs (id, sandbox_id, kind, status, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, state = excluded.state, updated_at = excluded.updated_at
       WHERE jobs.sandbox_id = excluded.sandbox_id`,
      job.id, job.sandboxId, job.kind, job.status, JSON.stringify(job.state), job.createdAt, job.updatedAt,
    );
  }

  async getJob(sandboxId: string, id: string): Promise<JobRow | undefined> {
    const r = this.get('SELECT * FROM jobs WHERE sandbox_id = ? AND id = ?', sandboxId, id);
    return r && toJob(r);
  }

  async listJobs(sandboxId: string, kind: string | undefined, page: Page): Promise<JobRow[]> {
    const where = ['sandbox_id = ?'];
    const params: unknown[] = [sandboxId];
    if (kind) (where.push('kind = ?'), params.push(kind));
    if (page.cursor) (where.push('id < ?'), params.push(page.cursor));
    params.push(page.limit);
    return this.all(`SELECT * FROM jobs WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`, ...params).map(toJob);
  }
}

