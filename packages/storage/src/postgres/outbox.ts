/**
 * The PostgreSQL store's activation outbox and per-hour activation metrics.
 *
 * Exports are written here before anything is sent; delivery workers, possibly in several
 * processes, lease due rows, then finish, retry or dead-letter them. Every method is one
 * statement whatever the number of rows (`unnest`-based writes, `= ANY` lookups), and one
 * statement is one transaction.
 */
import type pg from 'pg';
import { newLeaseToken } from '../lease.js';
import type { ExportSettlement, OutboxRow } from '../port.js';

/** What these functions need of the pool. */
type Db = Pick<pg.Pool, 'query'>;

/** Fields of a new export, as `Store.enqueueExports` takes them. */
type NewExport = Pick<OutboxRow, 'sandboxId' | 'dataflowId' | 'profileId' | 'idempotencyKey' | 'payload' | 'createdAt'>;

interface OutboxDbRow {
  id: number; sandbox_id: string; dataflow_id: string; profile_id: string; idempotency_key: string;
  payload: OutboxRow['payload']; status: OutboxRow['status']; attempts: number; next_attempt_at: number;
  created_at: number; last_error: string | null;
}

/** The columns read back; `lease_until` stays internal, like in the SQLite adapter. */
const COLUMNS = 'id, sandbox_id, dataflow_id, profile_id, idempotency_key, payload, status, attempts, next_attempt_at, created_at, last_error';

const toOutbox = (r: OutboxDbRow): OutboxRow => ({
  id: r.id, sandboxId: r.sandbox_id, dataflowId: r.dataflow_id, profileId: r.profile_id, idempotencyKey: r.idempotency_key,
  payload: r.payload, status: r.status, attempts: r.attempts, nextAttemptAt: r.next_attempt_at, createdAt: r.created_at,
  lastError: r.last_error,
});

/** Writes new exports as pending, due at their creation time; ids follow the order given. */
export async function enqueueExports(db: Db, rows: readonly NewExport[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO outbox (sandbox_id, dataflow_id, profile_id, idempotency_key, payload, status, attempts, next_attempt_at, created_at)
     SELECT sb, df, pr, ik, pl, 'pending', 0, ca, ca
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int8[]) WITH ORDINALITY AS r(sb, df, pr, ik, pl, ca, n)
     ORDER BY n`,
    [
      rows.map((r) => r.sandboxId), rows.map((r) => r.dataflowId), rows.map((r) => r.profileId),
      rows.map((r) => r.idempotencyKey), rows.map((r) => JSON.stringify(r.payload)), rows.map((r) => r.createdAt),
    ],
  );
}

/**
 * Leases due exports, oldest first. Pending rows are read in id order from the partial index of
 * pending rows and expired leases from `outbox_lease`, each up to the limit, so a claim reads
 * about the rows it takes. `FOR UPDATE SKIP LOCKED` makes concurrent claimers (other pools,
 * other processes) pass over rows another claim is taking instead of waiting for it or taking
 * them too; a row whose claim committed meanwhile is re-checked and no longer matches. The rows
 * get a new random lease token, which fences their settlement.
 */
export async function claimExports(db: Db, now: number, limit: number, leaseMs: number): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxDbRow & { lease_token: string }>(
    `WITH due AS (
       SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1::int8 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED),
     expired AS (
       SELECT id FROM outbox WHERE status = 'inflight' AND lease_until <= $1::int8 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED),
     claimed AS (
       UPDATE outbox o SET status = 'inflight', lease_until = $1::int8 + $3::int8, lease_token = $4::int8
       -- An id array (not a join, which the planner may hash over the whole table): primary key lookups.
       WHERE o.id = ANY(ARRAY(SELECT id FROM (SELECT id FROM due UNION ALL SELECT id FROM expired) AS u ORDER BY id LIMIT $2))
       RETURNING ${COLUMNS.split(', ').map((c) => `o.${c}`).join(', ')}, o.lease_token)
     SELECT * FROM claimed ORDER BY id`,
    [now, limit, leaseMs, newLeaseToken()],
  );
  return rows.map((r) => ({ ...toOutbox(r), lease: Number(r.lease_token) }));
}

/**
 * Applies delivery outcomes in one statement (one transaction), each only to a row that still
 * carries the lease token it was claimed with; returns the ids applied to.
 */
export async function settleExports(db: Db, o: ExportSettlement): Promise<number[]> {
  if (!o.done.length && !o.retry.length && !o.dead.length) return [];
  const { rows } = await db.query<{ id: number }>(
    `WITH d AS (
       DELETE FROM outbox o USING unnest($1::int8[], $2::int8[]) AS r(id, lease)
       WHERE o.id = r.id AND o.lease_token = r.lease RETURNING o.id),
     t AS (
       UPDATE outbox o SET status = 'pending', attempts = o.attempts + 1, next_attempt_at = r.next, last_error = r.err,
         lease_until = NULL, lease_token = NULL
       FROM unnest($3::int8[], $4::int8[], $5::int8[], $6::text[]) AS r(id, lease, next, err)
       WHERE o.id = r.id AND o.lease_token = r.lease RETURNING o.id),
     x AS (
       UPDATE outbox o SET status = 'dead', attempts = o.attempts + 1, last_error = r.err, lease_until = NULL, lease_token = NULL
       FROM unnest($7::int8[], $8::int8[], $9::text[]) AS r(id, lease, err)
       WHERE o.id = r.id AND o.lease_token = r.lease RETURNING o.id)
     SELECT id FROM d UNION ALL SELECT id FROM t UNION ALL SELECT id FROM x`,
    [
      o.done.map((r) => r.id), o.done.map((r) => r.lease),
      o.retry.map((r) => r.id), o.retry.map((r) => r.lease), o.retry.map((r) => Math.round(r.nextAttemptAt)), o.retry.map((r) => r.lastError),
      o.dead.map((r) => r.id), o.dead.map((r) => r.lease), o.dead.map((r) => r.lastError),
    ],
  );
  return rows.map((r) => Number(r.id));
}

/** Outbox rows of a sandbox with one status (of one dataflow when given), by id after `after`. */
export async function listOutbox(
  db: Db,
  sandboxId: string,
  filter: { dataflowId?: string | undefined; status: OutboxRow['status'] },
  page: { limit: number; after?: number | undefined },
): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxDbRow>(
    `SELECT ${COLUMNS} FROM outbox
     WHERE sandbox_id = $1 AND status = $2 AND id > $3 AND ($4::text IS NULL OR dataflow_id = $4)
     ORDER BY id LIMIT $5`,
    // An empty dataflow id means no filter, as in the SQLite adapter.
    [sandboxId, filter.status, page.after ?? 0, filter.dataflowId || null, page.limit],
  );
  return rows.map(toOutbox);
}

/** Dead letters of a sandbox back to pending, due now; attempts and last error are kept. */
export async function requeueDeadLetters(
  db: Db,
  sandboxId: string,
  which: { ids: readonly number[] } | { dataflowId: string },
  now: number,
): Promise<number> {
  const set = "UPDATE outbox SET status = 'pending', next_attempt_at = $1, lease_until = NULL, lease_token = NULL WHERE sandbox_id = $2 AND status = 'dead'";
  const { rowCount } = 'dataflowId' in which
    ? await db.query(`${set} AND dataflow_id = $3`, [now, sandboxId, which.dataflowId])
    : await db.query(`${set} AND id = ANY($3::int8[])`, [now, sandboxId, which.ids]);
  return rowCount ?? 0;
}

/** Counts of a dataflow's exports by status, and when its oldest pending one was created. */
export async function outboxCounts(
  db: Db,
  sandboxId: string,
  dataflowId: string,
): Promise<{ pending: number; inflight: number; dead: number; oldestPendingAt: number | null }> {
  const { rows } = await db.query<{ status: OutboxRow['status']; n: number; oldest: number }>(
    'SELECT status, count(*) AS n, min(created_at) AS oldest FROM outbox WHERE sandbox_id = $1 AND dataflow_id = $2 GROUP BY status',
    [sandboxId, dataflowId],
  );
  const out = { pending: 0, inflight: 0, dead: 0, oldestPendingAt: null as number | null };
  for (const r of rows) {
    out[r.status] = r.n;
    if (r.status === 'pending') out.oldestPendingAt = r.oldest;
  }
  return out;
}

/** Adds to one hour's metrics of a dataflow; `max:` metrics keep the greatest value instead. */
export async function addActivationStats(
  db: Db,
  at: { sandboxId: string; dataflowId: string; hour: number; deltas: Readonly<Record<string, number>> },
): Promise<void> {
  const entries = Object.entries(at.deltas);
  if (entries.length === 0) return;
  await db.query(
    `INSERT INTO activation_stats (sandbox_id, dataflow_id, hour, metric, value)
     SELECT $1, $2, $3, metric, value FROM unnest($4::text[], $5::float8[]) AS d(metric, value)
     ON CONFLICT (sandbox_id, dataflow_id, hour, metric) DO UPDATE SET value = CASE
       WHEN starts_with(excluded.metric, 'max:') THEN greatest(activation_stats.value, excluded.value)
       ELSE activation_stats.value + excluded.value END`,
    [at.sandboxId, at.dataflowId, at.hour, entries.map(([m]) => m), entries.map(([, v]) => v)],
  );
}

/** A dataflow's metrics per hour since `sinceHour`, oldest hour first. */
export async function activationStats(
  db: Db,
  sandboxId: string,
  dataflowId: string,
  sinceHour: number,
): Promise<Array<{ hour: number; metrics: Record<string, number> }>> {
  const { rows } = await db.query<{ hour: number; metric: string; value: number }>(
    'SELECT hour, metric, value FROM activation_stats WHERE sandbox_id = $1 AND dataflow_id = $2 AND hour >= $3 ORDER BY hour, metric',
    [sandboxId, dataflowId, sinceHour],
  );
  const byHour = new Map<number, Record<string, number>>();
  for (const r of rows) {
    const metrics = byHour.get(r.hour) ?? {};
    metrics[r.metric] = r.value;
    byHour.set(r.hour, metrics);
  }
  return [...byHour].map(([hour, metrics]) => ({ hour, metrics }));
}
