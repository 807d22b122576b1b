/**
 * The PostgreSQL store's activation outbox and per-hour activation metrics.
 *
 * Exports are written here before anything is sent; delivery workers, possibly in several
 * processes, lease due rows, then finish, retry or dead-letter them. Every method is one
 * statement whatever the number of rows (`unnest`-based writes, `= ANY` lookups), and one
 * statement is one transaction.
 */
import type pg from 'pg';
import type { OutboxRow } from '../port.js';

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
 * Leases due exports, oldest first. `FOR UPDATE SKIP LOCKED` makes concurrent claimers (other
 * pools, other processes) pass over rows another claim is taking instead of waiting for it or
 * taking them too; a row whose claim committed meanwhile is re-checked and no longer matches.
 */
export async function claimExports(db: Db, now: number, limit: number, leaseMs: number): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxDbRow>(
    `WITH claimed AS (
       UPDATE outbox SET status = 'inflight', lease_until = $1::int8 + $3::int8
       WHERE id IN (
         SELECT id FROM outbox
         WHERE (status = 'pending' AND next_attempt_at <= $1::int8) OR (status = 'inflight' AND lease_until <= $1::int8)
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING ${COLUMNS})
     SELECT * FROM claimed ORDER BY id`,
    [now, limit, leaseMs],
  );
  return rows.map(toOutbox);
}

/** Removes delivered exports. */
export async function finishExports(db: Db, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query('DELETE FROM outbox WHERE id = ANY($1::int8[])', [ids]);
}

/** Back to pending, due at `nextAttemptAt`, one more attempt counted. */
export async function retryExports(db: Db, rows: ReadonlyArray<{ id: number; nextAttemptAt: number; lastError: string }>): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `UPDATE outbox o SET status = 'pending', attempts = o.attempts + 1, next_attempt_at = r.next, last_error = r.err, lease_until = NULL
     FROM unnest($1::int8[], $2::int8[], $3::text[]) AS r(id, next, err) WHERE o.id = r.id`,
    [rows.map((r) => r.id), rows.map((r) => r.nextAttemptAt), rows.map((r) => r.lastError)],
  );
}

/** To the dead letters with the reason, one more attempt counted. */
export async function deadLetterExports(db: Db, rows: ReadonlyArray<{ id: number; lastError: string }>): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `UPDATE outbox o SET status = 'dead', attempts = o.attempts + 1, last_error = r.err, lease_until = NULL
     FROM unnest($1::int8[], $2::text[]) AS r(id, err) WHERE o.id = r.id`,
    [rows.map((r) => r.id), rows.map((r) => r.lastError)],
  );
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
  const set = "UPDATE outbox SET status = 'pending', next_attempt_at = $1, lease_until = NULL WHERE sandbox_id = $2 AND status = 'dead'";
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
