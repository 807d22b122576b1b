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
import { Mutex } from '../mutex.js';
import type {
  ApiKeyRow, AudienceRow, AudienceSizePoint, ChangeRow, EventRow, FailedRecordRow, IngestTx, JobRow,
  MembershipEventRow, MembershipWrite, Page, SandboxRow, Store,
} from '../port.js';
import { postgresIngestTx, toFragment, toIdentity, type FragmentRow, type IdentityRow } from './ingest-tx.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';
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

/** INT8 (BIGINT, COUNT(*)) as a JS number: epoch ms and seqs fit in a double. Scoped to our pool. */
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

interface SandboxDbRow { id: string; name: string; created_at: string }
interface ApiKeyDbRow {
  id: string; sandbox_id: string; name: string; key_hash: string; role: string;
  instance_admin: boolean; created_at: string; revoked_at: string | null;
}
interface FailedDbRow {
  id: string; sandbox_id: string; dataset_id: string; source: string; position: number; code: string;
  message: string; details: FailedRecordRow['details']; payload: string; status: FailedRecordRow['status'];
  created_at: string; replayed_at: string | null;
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
const toFailed = (r: FailedDbRow): FailedRecordRow => ({
  id: r.id, sandboxId: r.sandbox_id, datasetId: r.dataset_id, source: r.source, position: r.position,
  code: r.code, message: r.message, details: r.details, payload: r.payload, status: r.status,
  createdAt: r.created_at, replayedAt: r.replayed_at,
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
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly schema: string | undefined;
  private readonly writers = new Mutex();

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

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      // Session-level lock: two processes starting together must not both apply a migration.
      await client.query(`SELECT pg_advisory_lock(hashtext('audient:migrate:' || coalesce($1::text, current_schema()::text, '')))`, [this.schema ?? null]);
      try {
        if (this.schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
        await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
        const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
        for (const [i, sql] of POSTGRES_MIGRATIONS.entries()) {
          const version = i + 1;
          if (done.has(version)) continue;
          await client.query('BEGIN');
          try {
            await client.query(sql);
            await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [version, new Date().toISOString()]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          }
        }
      } finally {
        await client.query(`SELECT pg_advisory_unlock(hashtext('audient:migrate:' || coalesce($1::text, current_schema()::text, '')))`, [this.schema ?? null]);
      }
    } catch (err) {
      // Do not return a client that may still hold the lock or a transaction; closing it frees both.
      broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.release(broken);
    }
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
  private async sandboxTx<T>(sandboxId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('audient:ingest:' || $1))`, [sandboxId]);
        const result = await fn(client);
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

  async ingest<T>(sandboxId: string, fn: (tx: IngestTx) => Promise<T>): Promise<T> {
    return this.writers.run(() =>
      this.sandboxTx(sandboxId, async (client) => {
        let open = true;
        try {
          return await fn(postgresIngestTx(client, sandboxId, () => open));
        } finally {
          open = false;
        }
      }),
    );
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
        const { rows } = await client.query<{ identities: number; fragments: number; events: number }>(
          `WITH i AS (DELETE FROM identities WHERE sandbox_id = $1 AND graph_id = $2 RETURNING 1),
           f AS (DELETE FROM fragments WHERE sandbox_id = $1 AND graph_id = $2 RETURNING 1),
           e AS (DELETE FROM events WHERE sandbox_id = $1 AND graph_id = $2 RETURNING 1),
           m AS (DELETE FROM memberships WHERE sandbox_id = $1 AND profile_id = $2),
           r AS (DELETE FROM reevaluations WHERE sandbox_id = $1 AND profile_id = $2),
           c AS (INSERT INTO changes (sandbox_id, body, at) VALUES ($1, $3::jsonb, $4::int8))
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
    if (rows.length === 0) return;
    await this.exec(
      `INSERT INTO failed_records (id, sandbox_id, dataset_id, source, position, code, message, details, payload, status, created_at)
       SELECT id, sb, ds, src, pos, code, msg, det, payload, 'failed', $10
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::jsonb[], $9::text[])
         AS r(id, sb, ds, src, pos, code, msg, det, payload)`,
      [
        rows.map((r) => r.id), rows.map((r) => r.sandboxId), rows.map((r) => r.datasetId), rows.map((r) => r.source),
        rows.map((r) => r.position), rows.map((r) => r.code), rows.map((r) => r.message),
        rows.map((r) => JSON.stringify(r.details)), rows.map((r) => r.payload), new Date().toISOString(),
      ],
    );
  }

  async listFailedRecords(
    sandboxId: string,
    filter: { datasetId?: string | undefined; source?: string | undefined; status?: FailedRecordRow['status'] | undefined },
    page: Page,
  ): Promise<FailedRecordRow[]> {
    const where = ['sandbox_id = $1'];
    const params: unknown[] = [sandboxId];
    const add = (cond: string, value: unknown): void => {
      params.push(value);
      where.push(`${cond} $${params.length}`);
    };
    if (filter.datasetId) add('dataset_id =', filter.datasetId);
    if (filter.source) add('source =', filter.source);
    if (filter.status) add('status =', filter.status);
    if (page.cursor) add('id <', page.cursor);
    params.push(page.limit);
    const sql = `SELECT * FROM failed_records WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.length}`;
    return (await this.rows<FailedDbRow>(sql, params)).map(toFailed);
  }

  async getFailedRecords(sandboxId: string, ids: readonly string[]): Promise<FailedRecordRow[]> {
    if (ids.length === 0) return [];
    const rows = await this.rows<FailedDbRow>('SELECT * FROM failed_records WHERE sandbox_id = $1 AND id = ANY($2::text[])', [sandboxId, ids]);
    const byId = new Map(rows.map((r) => [r.id, toFailed(r)]));
    // In the order asked for, like the SQLite adapter.
    return ids.map((id) => byId.get(id)).filter((r): r is FailedRecordRow => r !== undefined);
  }

  async setFailedStatus(sandboxId: string, ids: readonly string[], status: FailedRecordRow['status'], at: string): Promise<void> {
    if (ids.length === 0) return;
    await this.exec(
      'UPDATE failed_records SET status = $1, replayed_at = $2 WHERE sandbox_id = $3 AND id = ANY($4::text[])',
      [status, at, sandboxId, ids],
    );
  }

  async purgeFailedRecords(sandboxId: string, needles: readonly string[]): Promise<number> {
    // An empty needle is in every payload: it must not purge the sandbox's records.
    const nonEmpty = needles.filter((n) => n.length > 0);
    if (nonEmpty.length === 0) return 0;
    return this.exec(
      `DELETE FROM failed_records WHERE sandbox_id = $1
       AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS n(needle) WHERE strpos(lower(payload), lower(n.needle)) > 0)`,
      [sandboxId, nonEmpty],
    );
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
  async writeMemberships(sandboxId: string, writes: readonly MembershipWrite[], now: number): Promise<MembershipEventRow[]> {
    return seg.writeMemberships(this.pool, sandboxId, writes, now);
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

  async scheduleReevaluation(sandboxId: string, profileId: string, dueAt: number): Promise<void> {
    await seg.scheduleReevaluation(this.pool, sandboxId, profileId, dueAt);
  }
  async takeDueReevaluations(now: number, limit: number): Promise<Array<{ sandboxId: string; profileId: string; dueAt: number }>> {
    return seg.takeDueReevaluations(this.pool, now, limit);
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
