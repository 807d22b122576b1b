/**
 * The PostgreSQL store's failed-record methods: records refused at ingestion, kept with why
 * until they are replayed, discarded or purged by a privacy delete. Every method is one
 * statement, whatever the number of rows or ids.
 */
import type pg from 'pg';
import type { FailedRecordRow, Page } from '../port.js';

/** What these functions need of the pool. */
type Db = Pick<pg.Pool, 'query'>;

interface FailedDbRow {
  id: string; sandbox_id: string; dataset_id: string; source: string; position: number; code: string;
  message: string; details: FailedRecordRow['details']; payload: string; status: FailedRecordRow['status'];
  created_at: string; replayed_at: string | null;
}

const toFailed = (r: FailedDbRow): FailedRecordRow => ({
  id: r.id, sandboxId: r.sandbox_id, datasetId: r.dataset_id, source: r.source, position: r.position,
  code: r.code, message: r.message, details: r.details, payload: r.payload, status: r.status,
  createdAt: r.created_at, replayedAt: r.replayed_at,
});

/** Stores refused records as `failed`, created now. */
export async function addFailedRecords(db: Db, rows: ReadonlyArray<Omit<FailedRecordRow, 'status' | 'createdAt' | 'replayedAt'>>): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
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

/** Failed records of a sandbox, newest id first, filtered and paged by id cursor. */
export async function listFailedRecords(
  db: Db,
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
  return (await db.query<FailedDbRow>(sql, params)).rows.map(toFailed);
}

/** Failed records by id, in the order asked for (unknown ids are left out). */
export async function getFailedRecords(db: Db, sandboxId: string, ids: readonly string[]): Promise<FailedRecordRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<FailedDbRow>('SELECT * FROM failed_records WHERE sandbox_id = $1 AND id = ANY($2::text[])', [sandboxId, ids]);
  const byId = new Map(rows.map((r) => [r.id, toFailed(r)]));
  // In the order asked for, like the SQLite adapter.
  return ids.map((id) => byId.get(id)).filter((r): r is FailedRecordRow => r !== undefined);
}

/** Marks failed records replayed or discarded at `at`. */
export async function setFailedStatus(db: Db, sandboxId: string, ids: readonly string[], status: FailedRecordRow['status'], at: string): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    'UPDATE failed_records SET status = $1, replayed_at = $2 WHERE sandbox_id = $3 AND id = ANY($4::text[])',
    [status, at, sandboxId, ids],
  );
}

/**
 * How payloads are folded for a case-insensitive match: `lower()` under the ICU root collation
 * when the server has it. A bare `lower()` folds by the database's ctype, and under a `C` ctype
 * it folds ASCII letters only ('JOSÉ' stays 'josÉ'), so a privacy delete would miss a payload
 * holding an identity in capitals.
 */
export async function payloadFolding(db: Db): Promise<string> {
  const { rows } = await db.query(`SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu' LIMIT 1`);
  return rows.length > 0 ? 'lower(payload COLLATE "und-x-icu")' : 'lower(payload)';
}

/**
 * Deletes failed records whose payload mentions any needle (case-insensitive); returns how many.
 * Needles are folded here, as ingestion folds identities; `fold` is payloadFolding's expression.
 */
export async function purgeFailedRecords(db: Db, sandboxId: string, needles: readonly string[], fold: string): Promise<number> {
  // An empty needle is in every payload: it must not purge the sandbox's records.
  const nonEmpty = needles.filter((n) => n.length > 0).map((n) => n.toLowerCase());
  if (nonEmpty.length === 0) return 0;
  const { rowCount } = await db.query(
    `DELETE FROM failed_records WHERE sandbox_id = $1
     AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS n(needle) WHERE strpos(${fold}, n.needle) > 0)`,
    [sandboxId, nonEmpty],
  );
  return rowCount ?? 0;
}
