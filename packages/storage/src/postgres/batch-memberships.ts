/**
 * The PostgreSQL store's batch segmentation reads and writes (see Store.scanBatchProfiles and
 * Store.writeBatchMemberships): one statement each per page, whatever its size; confirmations
 * (realized → existing) are one UPDATE over the page's profiles instead of one per membership.
 */
import type pg from 'pg';
import { pageProfileIds, withoutDeleted } from '../deleted-profiles.js';
import type { BatchMembershipPage, BatchProfileChunk, MembershipEventRow } from '../port.js';

type Db = Pick<pg.Pool, 'query'>;

/**
 * As the SQLite store, one query per page: the page numbered into chunks, each aggregated in one
 * pass (the three texts list its profiles in the same order); rows as arrays.
 */
const SCAN = {
  name: 'audient_scan_batch_profiles',
  rowMode: 'array' as const,
  text: `
  WITH page AS (
    SELECT profile_id, body FROM profile_snapshots WHERE sandbox_id = $1 AND profile_id > $2 ORDER BY profile_id LIMIT $3),
  numbered AS (
    SELECT p.profile_id, p.body, (row_number() OVER (ORDER BY p.profile_id) - 1) / $4 AS c, coalesce((
        SELECT json_agg(json_build_array(m.audience_id, m.status, m.last_qualification_time))::text
        FROM memberships m WHERE m.sandbox_id = $1 AND m.profile_id = p.profile_id), '[]') AS ms
    FROM page p)
  SELECT json_agg(profile_id)::text, '[' || string_agg(body, ',') || ']', '[' || string_agg(ms, ',') || ']', max(profile_id)
  FROM numbered GROUP BY c ORDER BY c`,
};

export async function scanBatchProfiles(db: Db, sandboxId: string, after: string | undefined, limit: number, chunk: number): Promise<BatchProfileChunk[]> {
  const { rows } = await db.query<[string, string, string, string]>({ ...SCAN, values: [sandboxId, after ?? '', limit, chunk] } as pg.QueryArrayConfig);
  return rows.map((r) => ({ profileIds: JSON.parse(r[0]) as string[], snapshots: r[1], memberships: r[2], last: r[3] }));
}

/**
 * Confirmations, changes, re-evaluations and events as one statement (one transaction, one
 * round trip). Sub-statements of one statement must not modify the same row, so confirmations
 * leave out the pairs changed here (exits of realized rows) as well as the unconfirmed ones.
 * Confirmations find their rows by primary-key probes per profile (OFFSET 0 keeps the probe a
 * nested loop) and update them by ctid (a TID scan): planned on stale statistics, a plain
 * UPDATE or a flattened join scanned every membership of the sandbox per page. A row updated concurrently since the probe is skipped (its new version has
 * another ctid) and confirmed by the next run.
 * Events are inserted in input order: the serial default is drawn row by row as the ordered
 * SELECT feeds the insert, so seqs follow it (RETURNING's order is not promised: sorted below).
 */
const WRITE = {
  name: 'audient_write_batch_memberships',
  text: `
  WITH ch AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS c(p, a, s, n)),
  conf AS (
    UPDATE memberships m SET status = 'existing'
    WHERE m.ctid = ANY (ARRAY(
      SELECT r.ctid FROM unnest($5::text[]) AS g(id) CROSS JOIN LATERAL (
        SELECT ctid, audience_id FROM memberships WHERE sandbox_id = $1 AND profile_id = g.id AND status = 'realized' OFFSET 0) r
      WHERE r.audience_id = ANY($6::text[])
        AND (g.id, r.audience_id) NOT IN (SELECT p, a FROM ch)
        AND (g.id, r.audience_id) NOT IN (SELECT * FROM unnest($7::text[], $8::text[]))))
      AND m.status = 'realized'),
  up AS (
    INSERT INTO memberships (sandbox_id, profile_id, audience_id, status, last_qualification_time)
    SELECT $1, p, a, s, $9 FROM ch ORDER BY p, a
    ON CONFLICT (sandbox_id, profile_id, audience_id)
    DO UPDATE SET status = excluded.status, last_qualification_time = excluded.last_qualification_time),
  sch AS (
    INSERT INTO reevaluations AS r (sandbox_id, profile_id, due_at)
    SELECT $1, p, MIN(d) FROM unnest($10::text[], $11::bigint[]) AS u(p, d) GROUP BY p
    ON CONFLICT (sandbox_id, profile_id) DO UPDATE SET due_at = excluded.due_at WHERE excluded.due_at < r.due_at)
  INSERT INTO membership_events (sandbox_id, audience_id, profile_id, status, at)
  SELECT $1, a, p, s, $9 FROM ch ORDER BY n
  RETURNING seq`,
};

/**
 * Turns JIT compilation off for the rest of the transaction. The write's estimated cost passes
 * jit_above_cost whenever the statistics predate the run's memberships (the first run of a
 * sandbox, planned on an empty table): PostgreSQL then compiled the statement for each page,
 * about half a second per page of 2,000 profiles (measured: 515 ms of a 1,160 ms write), for a
 * statement that only moves rows, where compiled expressions gain nothing.
 */
export const NO_JIT = 'SET LOCAL jit = off';

/**
 * Writes a page. `inTransaction`: `db` is a client inside a transaction (the store's, taken
 * when the page logs events), where JIT is turned off first (see NO_JIT); outside one, SET LOCAL
 * would have no effect.
 */
export async function writeBatchMemberships(db: Db, sandboxId: string, whole: BatchMembershipPage, now: number, inTransaction = false): Promise<MembershipEventRow[]> {
  if (!whole.changes.length && !whole.schedule.length && !(whole.confirm.profileIds.length && whole.confirm.audienceIds.length)) return [];
  if (inTransaction) await db.query(NO_JIT);
  // Read after the membership-event log lock (taken by the store when the page logs events),
  // which a privacy delete also takes: a delete committed before it is seen here.
  const gone = whole.changes.length || whole.schedule.length
    ? new Set((await db.query<{ profile_id: string }>(
        'SELECT profile_id FROM deleted_profiles WHERE sandbox_id = $1 AND profile_id = ANY($2::text[])', [sandboxId, pageProfileIds(whole)],
      )).rows.map((r) => r.profile_id))
    : new Set<string>();
  const { changes, confirm, schedule } = withoutDeleted(whole, gone);
  const { rows } = await db.query<{ seq: number }>({
    ...WRITE,
    values: [
      sandboxId,
      changes.map((c) => c.profileId), changes.map((c) => c.audienceId), changes.map((c) => c.status),
      confirm.profileIds, confirm.audienceIds,
      confirm.unconfirmed.map((u) => u.profileId), confirm.unconfirmed.map((u) => u.audienceId),
      now,
      schedule.map((s) => s.profileId), schedule.map((s) => s.dueAt),
    ],
  });
  const seqs = rows.map((r) => r.seq).sort((a, b) => a - b);
  return changes.map((c, i): MembershipEventRow => ({ seq: seqs[i]!, sandboxId, audienceId: c.audienceId, profileId: c.profileId, status: c.status, at: now }));
}
