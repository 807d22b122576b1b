/**
 * PostgreSQL adapter (node-postgres pool) for deployments that outgrow the embedded SQLite file
 * or run several server processes. Behaviour follows the SQLite adapter, the reference.
 * Ingestion batches of one sandbox are serialised across processes by a transaction-scoped
 * advisory lock and, within this process, by a mutex.
 */
import {
  namespaceKey,
  type DatasetDef,
  type IdentityRef,
  type Membership,
  type NamespaceDef,
  type SchemaDef,
  type StoredFragment,
  type StoredIdentity,
} from '@audient/core';
import pg from 'pg';
import { GraphCache } from '../graph-cache.js';
import { Mutex } from '../mutex.js';
import type {
  ApiKeyRow, AudienceRow, AudienceSizePoint, BatchMembershipPage, BatchProfileChunk, ChangeRow, EventRow, FailedRecordRow, IngestTx, JobRow,
  ExportSettlement, IdSyncRow, MembershipConfirmation, MembershipEventRow, MembershipWrite, OutboxRow, Page, ProfileRead, ProfileSnapshot, SandboxRow, Store,
} from '../port.js';
import * as failed from './failed-records.js';
import { GRAPH_EPOCH_BUMP, isStaleGraphs, postgresIngestTx, StaleGraphsError, toFragment, toIdentity, type FragmentRow, type IdentityRow } from './ingest-tx.js';
import { logLockSql, sandboxLockKey, type LogName } from './log-lock.js';
import { applyMigrations } from './migrations.js';
import * as idSyncs from './id-syncs.js';
import * as outbox from './outbox.js';
import * as batch from './batch-memberships.js';
import * as seg from './segmentation.js';

/** Options of the PostgreSQL store. */
export interface PostgresStoreOptions {
  /**
   * Schema holding Audient's tables (created by `migrate()` if missing); every pooled connection
   * gets it as its `search_path`. Lowercase letters, digits and `_` only. Default: the server's
   * `search_path` (normally `public`).
   */
  schema?: string | undefined;
}

/** Identities the graph cache holds at most (past that it starts over). */
const GRAPH_CACHE_IDENTITIES = 200_000;

/** INT8 (BIGINT, COUNT(*)) as a JS number: epoch ms and seqs fit in a double. Scoped to our pool. */
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

interface SandboxDbRow { id: string; name: string; created_at: string }
interface ApiKeyDbRow {
  id: string; sandbox_id: string; name: string; key_hash: string; role: string;
  instance_admin: boolean; created_at: string; revoked_at: string | null;
}
interface JobDbRow {
  id: string; sandbox_id: string; kind: string; status: JobRow['status']; state: Record<string, unknown>;
  created_at: string; updated_at: string;
}

const toSandbox = (r: SandboxDbRow): SandboxRow => ({ id: r.id, name: r.name, createdAt: r.created_at });
const toKey = (r: ApiKeyDbRow): ApiKeyRow => ({
  id: r.id, sandboxId: r.sandbox_id, name: r.name, keyHash: r.key_hash, role: r.role,
  instanceAdmin: r.instance_admin, createdAt: r.created_at, revokedAt: r.revoked_at,
});
const toJob = (r: JobDbRow): JobRow => ({
  id: r.id, sandboxId: r.sandbox_id, kind: r.kind, status: r.status, state: r.state,
  createdAt: r.created_at, updatedAt: r.updated_at,
});

/** Document tables and their key column; never user input. */
type DocTable = { table: 'schemas' | 'datasets' | 'audiences'; key: 'id' } | { table: 'namespaces'; key: 'code_key' };
const SCHEMAS: DocTable = { table: 'schemas', key: 'id' };
const DATASETS: DocTable = { table: 'datasets', key: 'id' };
const AUDIENCES: DocTable = { table: 'audiences', key: 'id' };
const NAMESPACES: DocTable = { table: 'namespaces', key: 'code_key' };

/** The PostgreSQL store. `url` is a `postgres://` connection string. */
/** A string as an SQL literal (quotes doubled; with backslashes, an E'' literal with them doubled). */
function sqlLiteral(text: string): string {
  const quoted = `'${text.replace(/'/g, "''")}'`;
  return text.includes('\\') ? `E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}

/**
 * BEGIN, the sandbox's lock, its graph epoch and the change log's lock: one simple query (no
 * parameters, hence the literals), answering the epoch as its third result.
 */
function ingestBegin(sandboxId: string): string {
  return `BEGIN; SELECT pg_advisory_xact_lock(${sandboxLockKey(sqlLiteral(sandboxId))}); SELECT epoch FROM graph_epochs WHERE sandbox_id = ${sqlLiteral(sandboxId)}; ${logLockSql('changes')}`;
}

/** The graph epoch answered by ingestBegin's query (0 before the sandbox's first identity write). */
function begunEpoch(begun: readonly pg.QueryResult[]): number {
  return Number((begun[2]?.rows[0] as { epoch?: unknown } | undefined)?.epoch ?? 0);
}

/** A writeMemberships call waiting for the membership log's next transaction. */
interface PendingMembershipWrite {
  sandboxId: string;
  writes: readonly MembershipWrite[];
  now: number;
  resolve: (events: MembershipEventRow[]) => void;
  reject: (err: unknown) => void;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly schema: string | undefined;
  private readonly writers = new Mutex();
  /** Graphs ingestion read (see graph-cache.ts), current while their sandbox's graph epoch is the one in graphEpochs. */
  private readonly graphs = new GraphCache(GRAPH_CACHE_IDENTITIES);
  /** Per sandbox, the graph epoch (see GRAPH_EPOCH_BUMP in ingest-tx.ts) the cached graphs are current at. */
  private readonly graphEpochs = new Map<string, number>();

  constructor(url: string, opts: PostgresStoreOptions = {}) {
    this.schema = opts.schema;
    if (this.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(this.schema)) {
      throw new Error(`PostgreSQL schema name must match [a-z_][a-z0-9_]*: ${JSON.stringify(this.schema)}`);
    }
    if (this.schema !== undefined && /[?&]options=/.test(url)) {
      throw new Error('PostgreSQL: give either a schema or an `options` URL parameter, not both');
    }
    this.pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      statement_timeout: 30_000,
      // A startup parameter, so the schema applies before a connection's first query.
      ...(this.schema !== undefined ? { options: `-c search_path=${this.schema}` } : {}),
      types,
    });
    // An idle client losing its connection emits on the pool; without a listener that crashes the process.
    this.pool.on('error', () => undefined);
  }

  private async rows<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  private async exec(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.pool.query(sql, params)).rowCount ?? 0;
  }

  /** The purge's folding of payloads (see failed.payloadFolding), once known. */
  private payloadFold: Promise<string> | undefined;

  async migrate(): Promise<void> {
    await applyMigrations(this.pool, this.schema);
  }

  async close(): Promise<void> {
    await this.writers.run(async () => this.pool.end());
  }

  /**
   * Runs `fn` in one transaction holding the sandbox's advisory lock. Identity resolution reads a
   * snapshot (graph members, fragments, known events) and then writes a plan computed from it;
   * two writers of one sandbox interleaving would each plan from a stale snapshot and could
   * split a graph or duplicate identities, so they take turns across processes. The in-process
   * mutex (taken by callers) additionally keeps change seq order equal to commit order here.
   */
  private async sandboxTx<T>(sandboxId: string, fn: (client: pg.PoolClient, begun: pg.QueryResult[]) => Promise<T>, then = ''): Promise<T> {
    // One round trip: BEGIN and the lock go as one simple query (no parameters, hence the literal),
    // with `then` (statements to run under the lock) after them.
    // Advisory locks are database-wide: the key names the schema, so deployments (or test runs)
    // sharing a database in different schemas never wait on each other's sandboxes.
    return this.tx(`${ingestBegin(sandboxId)}${then}`, fn);
  }

  /** Runs `fn` in one transaction that appends to `log` (see log-lock.ts): the log's lock first. */
  private async logTx<T>(log: LogName, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.tx(`BEGIN; ${logLockSql(log)}`, fn);
  }

  /** Runs `fn` in one transaction opened by `begin` (BEGIN and its locks, one simple query; `fn` gets its results). */
  private async tx<T>(begin: string, fn: (client: pg.PoolClient, begun: pg.QueryResult[]) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      try {
        // A simple query of several statements answers one result per statement.
        const begun = (await client.query(begin)) as unknown as pg.QueryResult[];
        const result = await fn(client, begun);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  /**
   * Runs an ingestion batch in one transaction under the sandbox's lock and the change log's
   * (taken with BEGIN, after the sandbox's and before any row lock: nearly every batch appends
   * changes). The graph epoch is read in the same round trip as BEGIN: when it is not the one this
   * store expects (another process wrote identities of the sandbox), the graphs held are dropped;
   * otherwise held graphs are used without reading them again. A batch that writes identities
   * updates what is held; one that changes graphs others may hold (see movesGraphEpoch) moves the
   * epoch and expects the one it moved to. A batch that fails drops everything held.
   *
   * Once the store holds graphs of the sandbox, a batch starts without a transaction (see
   * DeferredBegin in ingest-tx.ts): one that reads nothing from the database (its graphs held,
   * its event ids minted) is sent as one guarded statement when it applies its plan last, and
   * commits in that one round trip. When the guard finds the epoch moved, or the transaction
   * opened later finds it so, the batch is run again from the start with BEGIN, as above.
   */
  async ingest<T>(sandboxId: string, fn: (tx: IngestTx) => Promise<T>): Promise<T> {
    return this.writers.run(async () => {
      const expected = this.graphEpochs.get(sandboxId);
      if (expected !== undefined) {
        try {
          return await this.deferredIngest(sandboxId, expected, fn);
        } catch (err) {
          // What is held may have followed writes that did not commit: dropped either way.
          this.graphs.clear();
          this.graphEpochs.clear();
          if (!isStaleGraphs(err)) throw err;
        }
      }
      try {
        return await this.sandboxTx(sandboxId, async (client, begun) => {
          const epoch = begunEpoch(begun);
          if (this.graphEpochs.get(sandboxId) !== epoch) {
            this.graphs.clear();
            this.graphEpochs.clear();
          }
          this.graphEpochs.set(sandboxId, epoch);
          let open = true;
          try {
            return await fn(postgresIngestTx(client, sandboxId, () => open, { graphs: this.graphs, epoch, epochs: this.graphEpochs }));
          } finally {
            open = false;
          }
        });
      } catch (err) {
        // Touches followed into what is held did not commit (they do not move the epoch).
        this.graphs.clear();
        this.graphEpochs.clear();
        throw err;
      }
    });
  }

  /** A batch whose transaction opens at its first statement, planned with graphs held at `expected` (see ingest). */
  private async deferredIngest<T>(sandboxId: string, expected: number, fn: (tx: IngestTx) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // Set from the IngestTx's callbacks: an object, so the checks below read its current value.
    const tx = { state: 'none' as 'none' | 'open' | 'committed' };
    let live = true;
    let broken: Error | undefined;
    const current = (epoch: number): void => {
      if (epoch !== expected) throw new StaleGraphsError(`the identity graphs of sandbox ${sandboxId} changed since they were read (epoch ${expected} → ${epoch})`);
    };
    const deferred = {
      expected,
      opened: () => tx.state !== 'none',
      open: async (): Promise<void> => {
        tx.state = 'open';
        current(begunEpoch((await client.query(ingestBegin(sandboxId))) as unknown as pg.QueryResult[]));
      },
      committed: (): void => {
        tx.state = 'committed';
      },
    };
    try {
      const result = await fn(postgresIngestTx(client, sandboxId, () => live && tx.state !== 'committed', { graphs: this.graphs, epoch: expected, epochs: this.graphEpochs }, deferred));
      if (tx.state === 'open') await client.query('COMMIT');
      else if (tx.state === 'none') {
        // It sent nothing (read only what is held, wrote nothing): what it read must still be current.
        const [row] = (await client.query<{ epoch: number }>('SELECT epoch FROM graph_epochs WHERE sandbox_id = $1', [sandboxId])).rows;
        current(row?.epoch ?? 0);
      }
      return result;
    } catch (err) {
      if (tx.state === 'open') {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        });
      }
      throw err;
    } finally {
      live = false;
      client.release(broken);
    }
  }

  async createSandbox(row: { id: string; name: string }): Promise<void> {
    await this.exec('INSERT INTO sandboxes (id, name, created_at) VALUES ($1, $2, $3)', [row.id, row.name, new Date().toISOString()]);
  }

  async getSandbox(id: string): Promise<SandboxRow | undefined> {
    const [r] = await this.rows<SandboxDbRow>('SELECT id, name, created_at FROM sandboxes WHERE id = $1', [id]);
    return r && toSandbox(r);
  }

  async listSandboxes(): Promise<SandboxRow[]> {
    return (await this.rows<SandboxDbRow>('SELECT id, name, created_at FROM sandboxes ORDER BY id')).map(toSandbox);
  }

  async createApiKey(row: Omit<ApiKeyRow, 'createdAt' | 'revokedAt'>): Promise<void> {
    await this.exec(
      'INSERT INTO api_keys (id, sandbox_id, name, key_hash, role, instance_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [row.id, row.sandboxId, row.name, row.keyHash, row.role, row.instanceAdmin, new Date().toISOString()],
    );
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRow | undefined> {
    const [r] = await this.rows<ApiKeyDbRow>('SELECT * FROM api_keys WHERE key_hash = $1', [hash]);
    return r && toKey(r);
  }

  async listApiKeys(sandboxId: string): Promise<ApiKeyRow[]> {
    return (await this.rows<ApiKeyDbRow>('SELECT * FROM api_keys WHERE sandbox_id = $1 ORDER BY created_at', [sandboxId])).map(toKey);
  }

  async revokeApiKey(sandboxId: string, id: string): Promise<boolean> {
    const n = await this.exec(
      'UPDATE api_keys SET revoked_at = $1 WHERE sandbox_id = $2 AND id = $3 AND revoked_at IS NULL',
      [new Date().toISOString(), sandboxId, id],
    );
    return n > 0;
  }

  private async putTableDoc(d: DocTable, sandboxId: string, key: string, body: unknown): Promise<void> {
    await this.exec(
      `INSERT INTO ${d.table} (sandbox_id, ${d.key}, body) VALUES ($1, $2, $3)
       ON CONFLICT (sandbox_id, ${d.key}) DO UPDATE SET body = excluded.body`,
      [sandboxId, key, JSON.stringify(body)],
    );
  }

  private async getTableDoc<T>(d: DocTable, sandboxId: string, key: string): Promise<T | undefined> {
    const [r] = await this.rows<{ body: T }>(`SELECT body FROM ${d.table} WHERE sandbox_id = $1 AND ${d.key} = $2`, [sandboxId, key]);
    return r?.body;
  }

  private async listTableDocs<T>(d: DocTable, sandboxId: string): Promise<T[]> {
    return (await this.rows<{ body: T }>(`SELECT body FROM ${d.table} WHERE sandbox_id = $1 ORDER BY ${d.key}`, [sandboxId])).map((r) => r.body);
  }

  async putSchema(sandboxId: string, schema: SchemaDef): Promise<void> {
    await this.putTableDoc(SCHEMAS, sandboxId, schema.id, schema);
  }
  async getSchema(sandboxId: string, id: string): Promise<SchemaDef | undefined> {
    return this.getTableDoc(SCHEMAS, sandboxId, id);
  }
  async listSchemas(sandboxId: string): Promise<SchemaDef[]> {
    return this.listTableDocs(SCHEMAS, sandboxId);
  }
  async putDataset(sandboxId: string, dataset: DatasetDef): Promise<void> {
    await this.putTableDoc(DATASETS, sandboxId, dataset.id, dataset);
  }
  async getDataset(sandboxId: string, id: string): Promise<DatasetDef | undefined> {
    return this.getTableDoc(DATASETS, sandboxId, id);
  }
  async listDatasets(sandboxId: string): Promise<DatasetDef[]> {
    return this.listTableDocs(DATASETS, sandboxId);
  }
  async putNamespace(sandboxId: string, ns: NamespaceDef): Promise<void> {
    await this.putTableDoc(NAMESPACES, sandboxId, namespaceKey(ns.code), ns);
  }
  async listNamespaces(sandboxId: string): Promise<NamespaceDef[]> {
    return this.listTableDocs(NAMESPACES, sandboxId);
  }

  /**
   * A profile read in one round trip: the graph of the identity, then its identities, fragments,
   * memberships and newest events as rows tagged by kind, each kind in the order the piecewise
   * reads give (`o`).
   */
  async readProfile(
    sandboxId: string,
    identity: IdentityRef,
    opts: { eventsLimit: number; before?: { timestamp: number; eventId: string } | undefined },
  ): Promise<ProfileRead | undefined> {
    const params: unknown[] = [sandboxId, identity.ns, identity.id, opts.eventsLimit];
    let page = '';
    if (opts.before) {
      page = 'AND (ts, event_id) < ($5::int8, $6::text)';
      params.push(opts.before.timestamp, opts.before.eventId);
    }
    const rows = await this.rows<{ k: number; o: number; a: string; b: string; c: string | null; d: string | null; j: Record<string, unknown> | null; n: number }>(
      `WITH g AS (SELECT graph_id FROM identities WHERE sandbox_id = $1 AND ns = $2 AND id = $3)
       SELECT * FROM (
         SELECT 0 AS k, row_number() OVER (ORDER BY ns, id) AS o, graph_id AS a, ns AS b, id AS c, type AS d, NULL::jsonb AS j, last_seen AS n
           FROM identities WHERE sandbox_id = $1 AND graph_id = (SELECT graph_id FROM g)
         UNION ALL
         SELECT 1, row_number() OVER (ORDER BY dataset_id, ns, id), dataset_id, ns, id, NULL, attributes, ts
           FROM fragments WHERE sandbox_id = $1 AND graph_id = (SELECT graph_id FROM g)
         UNION ALL
         SELECT 2, row_number() OVER (ORDER BY audience_id), audience_id, status, NULL, NULL, NULL, last_qualification_time
           FROM memberships WHERE sandbox_id = $1 AND profile_id = (SELECT graph_id FROM g)
         UNION ALL
         SELECT 3, row_number() OVER (ORDER BY ts DESC, event_id DESC), * FROM (
           SELECT dataset_id, event_id, NULL, NULL, body, ts FROM events
           WHERE sandbox_id = $1 AND graph_id = (SELECT graph_id FROM g) ${page}
           ORDER BY ts DESC, event_id DESC LIMIT $4) e
       ) r ORDER BY k, o`,
      params,
    );
    const first = rows[0];
    if (!first || first.k !== 0) return undefined;
    const profileId = first.a;
    const out: ProfileRead = { profileId, identities: [], fragments: [], memberships: [], events: [] };
    for (const r of rows) {
      if (r.k === 0) out.identities.push({ ns: r.b, id: r.c!, graphId: r.a, type: r.d as StoredIdentity['type'], lastSeen: Number(r.n) });
      else if (r.k === 1) out.fragments.push({ datasetId: r.a, ns: r.b, id: r.c!, graphId: profileId, attributes: r.j!, timestamp: Number(r.n) });
      else if (r.k === 2) out.memberships.push({ audienceId: r.a, status: r.b as Membership['status'], lastQualificationTime: Number(r.n) });
      else out.events.push({ datasetId: r.a, eventId: r.b, timestamp: Number(r.n), body: r.j! });
    }
    return out;
  }

  async findProfileId(sandboxId: string, identity: IdentityRef): Promise<string | undefined> {
    const [r] = await this.rows<{ graph_id: string }>(
      'SELECT graph_id FROM identities WHERE sandbox_id = $1 AND ns = $2 AND id = $3',
      [sandboxId, identity.ns, identity.id],
    );
    return r?.graph_id;
  }

  async profileIdentities(sandboxId: string, profileId: string): Promise<StoredIdentity[]> {
    return (await this.rows<IdentityRow>(
      'SELECT ns, id, graph_id, type, last_seen FROM identities WHERE sandbox_id = $1 AND graph_id = $2 ORDER BY ns, id',
      [sandboxId, profileId],
    )).map(toIdentity);
  }

  async profileFragments(sandboxId: string, profileId: string): Promise<StoredFragment[]> {
    return (await this.rows<FragmentRow>(
      'SELECT dataset_id, ns, id, graph_id, attributes, ts FROM fragments WHERE sandbox_id = $1 AND graph_id = $2 ORDER BY dataset_id, ns, id',
      [sandboxId, profileId],
    )).map(toFragment);
  }

  async profileEvents(
    sandboxId: string,
    profileId: string,
    opts: { limit: number; before?: { timestamp: number; eventId: string } | undefined },
  ): Promise<EventRow[]> {
    const params: unknown[] = [sandboxId, profileId, opts.limit];
    let page = '';
    if (opts.before) {
      page = 'AND (ts, event_id) < ($4::int8, $5::text)';
      params.push(opts.before.timestamp, opts.before.eventId);
    }
    const rows = await this.rows<{ dataset_id: string; event_id: string; ts: number; body: Record<string, unknown> }>(
      `SELECT dataset_id, event_id, ts, body FROM events WHERE sandbox_id = $1 AND graph_id = $2 ${page}
       ORDER BY ts DESC, event_id DESC LIMIT $3`,
      params,
    );
    return rows.map((r) => ({ datasetId: r.dataset_id, eventId: r.event_id, timestamp: r.ts, body: r.body }));
  }

  async deleteProfile(sandboxId: string, profileId: string, now: number): Promise<{ identities: number; fragments: number; events: number }> {
    return this.writers.run(() =>
      this.sandboxTx(sandboxId, async (client) => {
        await client.query(logLockSql('changes'));
        // Membership writes with events hold this lock to their commit and read the tombstone
        // after taking it: one that read the profile before this delete either commits first
        // (its rows are deleted below) or sees the tombstone and writes nothing of the profile.
        await client.query(logLockSql('membership_events'));
        const { rows } = await client.query<{ identities: number; fragments: number; events: number }>(
          `WITH i AS (DELETE FROM identities WHERE sandbox_id = $1 AND graph_id = $2 RETURNING 1),
           f AS (DELETE FROM fragments WHERE sandbox_id = $1 AND graph_id = $2 RETURNING 1),
           e AS (DELETE FROM events WHERE sandbox_id = $1 AND graph_id = $2 RETURNING 1),
           m AS (DELETE FROM memberships WHERE sandbox_id = $1 AND profile_id = $2),
           r AS (DELETE FROM reevaluations WHERE sandbox_id = $1 AND profile_id = $2),
           ps AS (DELETE FROM profile_snapshots WHERE sandbox_id = $1 AND profile_id = $2),
           o AS (DELETE FROM outbox WHERE sandbox_id = $1 AND profile_id = $2),
           t AS (INSERT INTO deleted_profiles (sandbox_id, profile_id, at) VALUES ($1, $2, $4::int8) ON CONFLICT (sandbox_id, profile_id) DO UPDATE SET at = excluded.at),
           s AS (DELETE FROM id_syncs WHERE sandbox_id = $1 AND ecid IN (SELECT id FROM identities WHERE sandbox_id = $1 AND graph_id = $2 AND ns = 'ecid')),
           c AS (INSERT INTO changes (sandbox_id, body, at) VALUES ($1, $3::jsonb, $4::int8)),
           g AS (${GRAPH_EPOCH_BUMP})
           SELECT (SELECT count(*) FROM i) AS identities, (SELECT count(*) FROM f) AS fragments, (SELECT count(*) FROM e) AS events`,
          [sandboxId, profileId, JSON.stringify({ profileId, type: 'delete' }), now],
        );
        return rows[0] ?? { identities: 0, fragments: 0, events: 0 };
      }),
    );
  }

  async countLake(sandboxId: string, datasetId: string): Promise<number> {
    const [r] = await this.rows<{ n: number }>('SELECT count(*) AS n FROM lake_records WHERE sandbox_id = $1 AND dataset_id = $2', [sandboxId, datasetId]);
    return r?.n ?? 0;
  }

  async readChanges(afterSeq: number, limit: number): Promise<ChangeRow[]> {
    const rows = await this.rows<{ seq: number; sandbox_id: string; body: ChangeRow['change']; at: number }>(
      'SELECT seq, sandbox_id, body, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2',
      [afterSeq, limit],
    );
    return rows.map((r) => ({ seq: r.seq, sandboxId: r.sandbox_id, change: r.body, at: r.at }));
  }

  async getCursor(name: string): Promise<number> {
    const [r] = await this.rows<{ seq: number }>('SELECT seq FROM cursors WHERE name = $1', [name]);
    return r?.seq ?? 0;
  }

  async setCursor(name: string, seq: number): Promise<void> {
    await this.exec('INSERT INTO cursors (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq', [name, seq]);
  }

  async addFailedRecords(rows: ReadonlyArray<Omit<FailedRecordRow, 'status' | 'createdAt' | 'replayedAt'>>): Promise<void> {
    await failed.addFailedRecords(this.pool, rows);
  }
  async listFailedRecords(
    sandboxId: string,
    filter: { datasetId?: string | undefined; source?: string | undefined; status?: FailedRecordRow['status'] | undefined },
    page: Page,
  ): Promise<FailedRecordRow[]> {
    return failed.listFailedRecords(this.pool, sandboxId, filter, page);
  }
  async getFailedRecords(sandboxId: string, ids: readonly string[]): Promise<FailedRecordRow[]> {
    return failed.getFailedRecords(this.pool, sandboxId, ids);
  }
  async setFailedStatus(sandboxId: string, ids: readonly string[], status: FailedRecordRow['status'], at: string): Promise<void> {
    await failed.setFailedStatus(this.pool, sandboxId, ids, status, at);
  }
  async purgeFailedRecords(sandboxId: string, needles: readonly string[]): Promise<number> {
    // Asked of the server once (a failed look-up is asked again next time).
    this.payloadFold ??= failed.payloadFolding(this.pool).catch((err: unknown) => {
      this.payloadFold = undefined;
      throw err;
    });
    return failed.purgeFailedRecords(this.pool, sandboxId, needles, await this.payloadFold);
  }

  async putAudience(sandboxId: string, audience: AudienceRow): Promise<void> {
    await this.putTableDoc(AUDIENCES, sandboxId, audience.id, audience);
  }
  async getAudience(sandboxId: string, id: string): Promise<AudienceRow | undefined> {
    return this.getTableDoc(AUDIENCES, sandboxId, id);
  }
  async listAudiences(sandboxId: string): Promise<AudienceRow[]> {
    return this.listTableDocs(AUDIENCES, sandboxId);
  }
  async deleteAudience(sandboxId: string, id: string): Promise<boolean> {
    return seg.deleteAudience(this.pool, sandboxId, id);
  }

  async memberships(sandboxId: string, profileIds: readonly string[]): Promise<Map<string, Membership[]>> {
    return seg.memberships(this.pool, sandboxId, profileIds);
  }
  /**
   * Writes that log events take the membership log's lock, so they commit one transaction at a
   * time: calls made while one commits wait for it together, then go as one transaction (one
   * statement per sandbox, in call order, so the outcome equals the calls one after another);
   * each call resolves with its own events. If a group fails, its calls are retried one by one:
   * a failing call never costs the others.
   */
  async writeMemberships(sandboxId: string, writes: readonly MembershipWrite[], now: number): Promise<MembershipEventRow[]> {
    if (!writes.some((w) => w.event)) return seg.writeMemberships(this.pool, sandboxId, writes, now);
    return new Promise((resolve, reject) => {
      this.membershipQueue.push({ sandboxId, writes, now, resolve, reject });
      if (!this.flushingMemberships) void this.flushMemberships();
    });
  }

  private readonly membershipQueue: PendingMembershipWrite[] = [];
  private flushingMemberships = false;

  private async flushMemberships(): Promise<void> {
    this.flushingMemberships = true;
    try {
      while (this.membershipQueue.length) {
        const group = this.membershipQueue.splice(0);
        // One statement per sandbox, committed on its own: it takes the log's lock itself (see
        // WRITE_MEMBERSHIPS). When one fails, its calls are tried one by one, so a bad call
        // fails alone.
        for (const sandboxId of new Set(group.map((g) => g.sandboxId))) {
          const calls = group.filter((g) => g.sandboxId === sandboxId);
          try {
            const events = await seg.writeMembershipGroup(this.pool, sandboxId, calls);
            calls.forEach((c, i) => c.resolve(events[i]!));
          } catch (err) {
            if (calls.length === 1) {
              calls[0]!.reject(err);
              continue;
            }
            for (const c of calls) {
              try {
                c.resolve(await seg.writeMemberships(this.pool, sandboxId, c.writes, c.now));
              } catch (e) {
                c.reject(e);
              }
            }
          }
        }
      }
    } finally {
      this.flushingMemberships = false;
    }
  }
  async confirmMemberships(sandboxId: string, confirmations: readonly MembershipConfirmation[]): Promise<number> {
    return seg.confirmMemberships(this.pool, sandboxId, confirmations);
  }
  async listMembers(
    sandboxId: string,
    audienceId: string,
    opts: { statuses: ReadonlyArray<Membership['status']>; limit: number; after?: string | undefined },
  ): Promise<Array<{ profileId: string; membership: Membership }>> {
    return seg.listMembers(this.pool, sandboxId, audienceId, opts);
  }
  async countMembers(sandboxId: string, audienceId: string): Promise<Record<Membership['status'], number>> {
    return seg.countMembers(this.pool, sandboxId, audienceId);
  }
  async readMembershipEvents(sandboxId: string | undefined, afterSeq: number, limit: number): Promise<MembershipEventRow[]> {
    return seg.readMembershipEvents(this.pool, sandboxId, afterSeq, limit);
  }
  async membershipEventHead(sandboxId: string): Promise<number> {
    return seg.membershipEventHead(this.pool, sandboxId);
  }
  async purgeExitedMemberships(before: number): Promise<number> {
    return seg.purgeExitedMemberships(this.pool, before);
  }

  async countProfiles(sandboxId: string): Promise<number> {
    return seg.countProfiles(this.pool, sandboxId);
  }
  async listProfileIds(sandboxId: string, after: string | undefined, limit: number): Promise<string[]> {
    return seg.listProfileIds(this.pool, sandboxId, after, limit);
  }
  async loadProfiles(
    sandboxId: string,
    profileIds: readonly string[],
    eventsSince: number,
  ): Promise<Map<string, { fragments: StoredFragment[]; events: EventRow[] }>> {
    return seg.loadProfiles(this.pool, sandboxId, profileIds, eventsSince);
  }
  async loadEvents(sandboxId: string, profileIds: readonly string[], eventsSince: number): Promise<Map<string, EventRow[]>> {
    return seg.loadEvents(this.pool, sandboxId, profileIds, eventsSince);
  }

  async changeHead(sandboxId: string): Promise<number> {
    // Under the sandbox's write lock: no write of it is in flight, so no lower seq of it can commit later.
    return this.sandboxTx(sandboxId, (client) => seg.changeHead(client));
  }
  async refreshProfileSnapshots(sandboxId: string, profileIds: readonly string[] | undefined, eventsSince: number): Promise<{ written: number; removed: number }> {
    return seg.refreshProfileSnapshots(this.pool, sandboxId, profileIds, eventsSince);
  }
  async scanProfileSnapshots(sandboxId: string, after: string | undefined, limit: number, eventsSince: number): Promise<ProfileSnapshot[]> {
    return seg.scanProfileSnapshots(this.pool, sandboxId, after, limit, eventsSince);
  }
  async scanBatchProfiles(sandboxId: string, after: string | undefined, limit: number, chunk: number): Promise<BatchProfileChunk[]> {
    return batch.scanBatchProfiles(this.pool, sandboxId, after, limit, chunk);
  }
  async writeBatchMemberships(sandboxId: string, page: BatchMembershipPage, now: number): Promise<MembershipEventRow[]> {
    if (!page.changes.length) return batch.writeBatchMemberships(this.pool, sandboxId, page, now);
    return this.logTx('membership_events', (client) => batch.writeBatchMemberships(client, sandboxId, page, now, true));
  }

  async scheduleReevaluations(sandboxId: string, items: ReadonlyArray<{ profileId: string; dueAt: number }>): Promise<void> {
    await seg.scheduleReevaluations(this.pool, sandboxId, items);
  }
  async takeDueReevaluations(now: number, limit: number): Promise<Array<{ sandboxId: string; profileId: string; dueAt: number }>> {
    return seg.takeDueReevaluations(this.pool, now, limit);
  }
  async finishReevaluations(sandboxId: string, profileIds: readonly string[], takenAt: number): Promise<void> {
    await seg.finishReevaluations(this.pool, sandboxId, profileIds, takenAt);
  }

  async addAudienceSize(sandboxId: string, audienceId: string, point: AudienceSizePoint): Promise<void> {
    await seg.addAudienceSize(this.pool, sandboxId, audienceId, point);
  }
  async audienceSizes(sandboxId: string, audienceId: string, limit: number): Promise<AudienceSizePoint[]> {
    return seg.audienceSizes(this.pool, sandboxId, audienceId, limit);
  }

  async putDoc(sandboxId: string, kind: string, id: string, body: unknown): Promise<void> {
    await this.exec(
      'INSERT INTO docs (sandbox_id, kind, id, body) VALUES ($1, $2, $3, $4) ON CONFLICT (sandbox_id, kind, id) DO UPDATE SET body = excluded.body',
      [sandboxId, kind, id, JSON.stringify(body)],
    );
  }
  async getDoc<T>(sandboxId: string, kind: string, id: string): Promise<T | undefined> {
    const [r] = await this.rows<{ body: T }>('SELECT body FROM docs WHERE sandbox_id = $1 AND kind = $2 AND id = $3', [sandboxId, kind, id]);
    return r?.body;
  }
  async listDocs<T>(sandboxId: string, kind: string): Promise<T[]> {
    return (await this.rows<{ body: T }>('SELECT body FROM docs WHERE sandbox_id = $1 AND kind = $2 ORDER BY id', [sandboxId, kind])).map((r) => r.body);
  }
  async deleteDoc(sandboxId: string, kind: string, id: string): Promise<boolean> {
    return (await this.exec('DELETE FROM docs WHERE sandbox_id = $1 AND kind = $2 AND id = $3', [sandboxId, kind, id])) > 0;
  }

  async enqueueExports(rows: ReadonlyArray<Pick<OutboxRow, 'sandboxId' | 'dataflowId' | 'profileId' | 'idempotencyKey' | 'payload' | 'createdAt'>>): Promise<void> {
    await outbox.enqueueExports(this.pool, rows);
  }
  async claimExports(now: number, limit: number, leaseMs: number): Promise<OutboxRow[]> {
    return outbox.claimExports(this.pool, now, limit, leaseMs);
  }
  async settleExports(outcomes: ExportSettlement): Promise<number[]> {
    return outbox.settleExports(this.pool, outcomes);
  }
  async listOutbox(
    sandboxId: string,
    filter: { dataflowId?: string | undefined; status: OutboxRow['status'] },
    page: { limit: number; after?: number | undefined },
  ): Promise<OutboxRow[]> {
    return outbox.listOutbox(this.pool, sandboxId, filter, page);
  }
  async requeueDeadLetters(sandboxId: string, which: { ids: readonly number[] } | { dataflowId: string }, now: number): Promise<number> {
    return outbox.requeueDeadLetters(this.pool, sandboxId, which, now);
  }
  async outboxCounts(sandboxId: string, dataflowId: string): Promise<{ pending: number; inflight: number; dead: number; oldestPendingAt: number | null }> {
    return outbox.outboxCounts(this.pool, sandboxId, dataflowId);
  }
  async addActivationStats(sandboxId: string, dataflowId: string, hour: number, deltas: Readonly<Record<string, number>>): Promise<void> {
    await outbox.addActivationStats(this.pool, { sandboxId, dataflowId, hour, deltas });
  }
  async activationStats(sandboxId: string, dataflowId: string, sinceHour: number): Promise<Array<{ hour: number; metrics: Record<string, number> }>> {
    return outbox.activationStats(this.pool, sandboxId, dataflowId, sinceHour);
  }

  async putIdSyncs(rows: readonly IdSyncRow[]): Promise<void> {
    await idSyncs.putIdSyncs(this.pool, rows);
  }
  async idSyncsOf(sandboxId: string, partnerId: string, ecids: readonly string[]): Promise<IdSyncRow[]> {
    return idSyncs.idSyncsOf(this.pool, sandboxId, partnerId, ecids);
  }
  async deleteIdSyncs(sandboxId: string, partnerId: string, ecids?: readonly string[]): Promise<number> {
    return idSyncs.deleteIdSyncs(this.pool, sandboxId, partnerId, ecids);
  }

  async putJob(job: JobRow): Promise<void> {
    await this.exec(
      `INSERT INTO jobs (id, sandbox_id, kind, status, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, state = excluded.state, updated_at = excluded.updated_at
       WHERE jobs.sandbox_id = excluded.sandbox_id`,
      [job.id, job.sandboxId, job.kind, job.status, JSON.stringify(job.state), job.createdAt, job.updatedAt],
    );
  }

  async getJob(sandboxId: string, id: string): Promise<JobRow | undefined> {
    const [r] = await this.rows<JobDbRow>('SELECT * FROM jobs WHERE sandbox_id = $1 AND id = $2', [sandboxId, id]);
    return r && toJob(r);
  }

  async listJobs(sandboxId: string, kind: string | undefined, page: Page): Promise<JobRow[]> {
    const where = ['sandbox_id = $1'];
    const params: unknown[] = [sandboxId];
    if (kind) (params.push(kind), where.push(`kind = $${params.length}`));
    if (page.cursor) (params.push(page.cursor), where.push(`id < $${params.length}`));
    params.push(page.limit);
    const sql = `SELECT * FROM jobs WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.length}`;
    return (await this.rows<JobDbRow>(sql, params)).map(toJob);
  }
}
