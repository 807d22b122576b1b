/**
 * The PostgreSQL store's segmentation methods: memberships and their events, profile paging and
 * bulk loading for evaluators, re-evaluation scheduling and audience size history.
 *
 * The evaluators call these per profile change (streaming) and per page of ~1000 profiles
 * (batch), so every method is one statement, whatever the number of ids: lookups take
 * `= ANY($n::text[])`, writes are `unnest`-based, and multi-table writes are data-modifying CTEs
 * (one statement is one transaction, and one round trip).
 */
import type { Membership, StoredFragment } from '@audient/core';
import type pg from 'pg';
import { REEVALUATION_LEASE_MS, type AudienceSizePoint, type EventRow, type MembershipConfirmation, type MembershipEventRow, type MembershipWrite, type ProfileSnapshot } from '../port.js';
import { decodeSnapshot } from '../snapshot.js';
import { toFragment } from './ingest-tx.js';
import { logLockKey } from './log-lock.js';

/** What these functions need of the pool. */
type Db = Pick<pg.Pool, 'query'>;

/**
 * A named statement: node-postgres prepares it once per pooled connection, so the per-change
 * calls of the streaming evaluator skip parsing and planning (about 1 ms of 1.6 per call for
 * `loadProfiles` of one id, measured). The plans are fine generic: every one probes indexes.
 */
const prepared = (name: string, text: string): { name: string; text: string } => ({ name: `audient_${name}`, text });

/** Fragments and events of one profile, as the evaluators load them. */
type LoadedProfile = { fragments: StoredFragment[]; events: EventRow[] };

interface MembershipDbRow { profile_id: string; audience_id: string; status: Membership['status']; last_qualification_time: number }
interface MembershipEventDbRow { seq: number; sandbox_id: string; audience_id: string; profile_id: string; status: MembershipEventRow['status']; at: number }

const toMembership = (r: MembershipDbRow): Membership => ({
  audienceId: r.audience_id, status: r.status, lastQualificationTime: r.last_qualification_time,
});
const toMembershipEvent = (r: MembershipEventDbRow): MembershipEventRow => ({
  seq: r.seq, sandboxId: r.sandbox_id, audienceId: r.audience_id, profileId: r.profile_id, status: r.status, at: r.at,
});

/** Deletes an audience with its memberships and size history; true when it existed. */
export async function deleteAudience(db: Db, sandboxId: string, id: string): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    `WITH m AS (DELETE FROM memberships WHERE sandbox_id = $1 AND audience_id = $2),
     s AS (DELETE FROM audience_sizes WHERE sandbox_id = $1 AND audience_id = $2),
     a AS (DELETE FROM audiences WHERE sandbox_id = $1 AND id = $2 RETURNING 1)
     SELECT count(*) AS n FROM a`,
    [sandboxId, id],
  );
  return (rows[0]?.n ?? 0) > 0;
}

/** Current memberships of many profiles, by audience id; every asked id is a key. */
export async function memberships(db: Db, sandboxId: string, profileIds: readonly string[]): Promise<Map<string, Membership[]>> {
  const out = new Map<string, Membership[]>(profileIds.map((p) => [p, []]));
  if (out.size === 0) return out;
  const { rows } = await db.query<MembershipDbRow>({ ...MEMBERSHIPS, values: [sandboxId, [...out.keys()]] });
  for (const r of rows) out.get(r.profile_id)?.push(toMembership(r));
  return out;
}

/** Per-id primary-key probes, each in audience order, so nothing is sorted; ids must be distinct. */
const MEMBERSHIPS = prepared('memberships', `
  SELECT m.* FROM unnest($2::text[]) AS g(id) CROSS JOIN LATERAL (
    SELECT profile_id, audience_id, status, last_qualification_time FROM memberships
    WHERE sandbox_id = $1 AND profile_id = g.id ORDER BY audience_id) m`);

type MembershipKey = { profileId: string; audienceId: string };

const byKey = (x: MembershipKey, y: MembershipKey): number =>
  x.profileId < y.profileId ? -1 : x.profileId > y.profileId ? 1 : x.audienceId < y.audienceId ? -1 : x.audienceId > y.audienceId ? 1 : 0;

/** The last item of each membership, in key order: the order every statement here locks rows in. */
function lastPerKey<T extends MembershipKey>(items: readonly T[]): T[] {
  const last = new Map<string, T>();
  for (const x of items) last.set(`${x.profileId}\u0000${x.audienceId}`, x);
  return [...last.values()].sort(byKey);
}

/**
 * Upserts ($2–$5), deletes ($6–$7) and events ($8–$11, in input order, each with its time) as
 * one statement, committed on its own; the upserts and events of privacy-deleted (tombstoned)
 * profiles are left out. Its guard (migration 4) takes the membership log's lock first and reads
 * the tombstones after it: every write is gated on it, so none is made, and no seq taken, before
 * the lock is held, and a privacy delete committed meanwhile is seen (see deleteProfile).
 */
const WRITE_MEMBERSHIPS = prepared('write_memberships_guarded', `WITH gone AS MATERIALIZED (
       SELECT unnest(audient_membership_guard(${logLockKey('membership_events')}, $1, $2::text[] || $9::text[])) AS profile_id),
     up AS (
       INSERT INTO memberships (sandbox_id, profile_id, audience_id, status, last_qualification_time)
       SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[]) AS u(p, a, s, t)
       WHERE (SELECT count(*) FROM gone) >= 0 AND u.p NOT IN (SELECT profile_id FROM gone)
       ON CONFLICT (sandbox_id, profile_id, audience_id)
       DO UPDATE SET status = excluded.status, last_qualification_time = excluded.last_qualification_time),
     del AS (
       DELETE FROM memberships m USING unnest($6::text[], $7::text[]) AS d(profile_id, audience_id)
       WHERE (SELECT count(*) FROM gone) >= 0 AND m.sandbox_id = $1 AND m.profile_id = d.profile_id AND m.audience_id = d.audience_id)
     INSERT INTO membership_events (sandbox_id, audience_id, profile_id, status, at)
     SELECT $1::text, a, p, s, at FROM unnest($8::text[], $9::text[], $10::text[], $11::int8[]) WITH ORDINALITY AS e(a, p, s, at, n)
     WHERE (SELECT count(*) FROM gone) >= 0 AND e.p NOT IN (SELECT profile_id FROM gone) ORDER BY n
     RETURNING seq, audience_id, profile_id, status`);

/**
 * Writes memberships and logs their events in one statement. Writes apply as if one by one:
 * the last write of a key decides its row (an upsert may touch a row only once), and rows are
 * locked in key order so concurrent writers cannot deadlock. Events keep the input order.
 */
export async function writeMemberships(db: Db, sandboxId: string, writes: readonly MembershipWrite[], now: number): Promise<MembershipEventRow[]> {
  return (await writeMembershipGroup(db, sandboxId, [{ writes, now }]))[0]!;
}

/**
 * Several calls' writes as one statement, as if the calls were made one after another (their
 * writes in call order, as writeMemberships applies one call's); returns each call's events.
 */
export async function writeMembershipGroup(
  db: Db,
  sandboxId: string,
  calls: ReadonlyArray<{ writes: readonly MembershipWrite[]; now: number }>,
): Promise<MembershipEventRow[][]> {
  const all = calls.length === 1 ? calls[0]!.writes : calls.flatMap((c) => c.writes);
  if (all.length === 0) return calls.map(() => []);
  const finals = lastPerKey(all);
  const puts = finals.flatMap((w) => (w.membership ? [{ ...w, membership: w.membership }] : []));
  const dels = finals.filter((w) => w.membership === null);
  const logged = calls.flatMap((c) => c.writes.flatMap((w) => (w.event ? [{ ...w, event: w.event, at: c.now }] : [])));
  const { rows } = await db.query<{ seq: number; audience_id: string; profile_id: string; status: 'realized' | 'exited' }>({
    ...WRITE_MEMBERSHIPS,
    values: [
      sandboxId,
      puts.map((w) => w.profileId), puts.map((w) => w.audienceId), puts.map((w) => w.membership.status),
      puts.map((w) => w.membership.lastQualificationTime),
      dels.map((w) => w.profileId), dels.map((w) => w.audienceId),
      logged.map((w) => w.audienceId), logged.map((w) => w.profileId), logged.map((w) => w.event), logged.map((w) => w.at),
    ],
  });
  // The serial default is drawn row by row as the ordered SELECT feeds the insert, so seqs
  // follow the input order; RETURNING's row order is not promised, hence the sort. Events of a
  // tombstoned profile are not among them (and no row names that profile): each call's events
  // are the next rows that match them.
  rows.sort((a, b) => a.seq - b.seq);
  let k = 0;
  return calls.map((c) => {
    const out: MembershipEventRow[] = [];
    for (const w of c.writes) {
      const r = rows[k];
      if (!w.event || !r || r.profile_id !== w.profileId || r.audience_id !== w.audienceId || r.status !== w.event) continue;
      out.push({ seq: r.seq, sandboxId, audienceId: r.audience_id, profileId: r.profile_id, status: r.status, at: c.now });
      k++;
    }
    return out;
  });
}

/**
 * Rows are locked in the input's order (ORDER BY its ordinality under FOR UPDATE), which is
 * writeMemberships' key order, so the two cannot deadlock; a row changed meanwhile by another
 * transaction is checked again once that commits (exited or entered again: left alone).
 */
const CONFIRM_MEMBERSHIPS = prepared('confirm_memberships', `
  WITH locked AS (
    SELECT m.profile_id, m.audience_id
    FROM unnest($2::text[], $3::text[], $4::int8[]) WITH ORDINALITY AS c(p, a, t, n)
    JOIN memberships m ON m.sandbox_id = $1 AND m.profile_id = c.p AND m.audience_id = c.a
    WHERE m.status = 'realized' AND m.last_qualification_time = c.t
    ORDER BY c.n
    FOR UPDATE OF m)
  UPDATE memberships m SET status = 'existing' FROM locked l
  WHERE m.sandbox_id = $1 AND m.profile_id = l.profile_id AND m.audience_id = l.audience_id AND m.status = 'realized'`);

/** Confirmations as one statement, in key order; a key named twice is confirmed once. */
export async function confirmMemberships(db: Db, sandboxId: string, confirmations: readonly MembershipConfirmation[]): Promise<number> {
  if (!confirmations.length) return 0;
  const list = lastPerKey(confirmations);
  const res = await db.query({
    ...CONFIRM_MEMBERSHIPS,
    values: [sandboxId, list.map((c) => c.profileId), list.map((c) => c.audienceId), list.map((c) => c.lastQualificationTime)],
  });
  return res.rowCount ?? 0;
}

/** Members of an audience with one of `statuses`, in profile id order after `after`. */
export async function listMembers(
  db: Db,
  sandboxId: string,
  audienceId: string,
  opts: { statuses: ReadonlyArray<Membership['status']>; limit: number; after?: string | undefined },
): Promise<Array<{ profileId: string; membership: Membership }>> {
  const { rows } = await db.query<MembershipDbRow>(
    `SELECT profile_id, audience_id, status, last_qualification_time FROM memberships
     WHERE sandbox_id = $1 AND audience_id = $2 AND profile_id > $3 AND status = ANY($4::text[])
     ORDER BY profile_id LIMIT $5`,
    [sandboxId, audienceId, opts.after ?? '', opts.statuses, opts.limit],
  );
  return rows.map((r) => ({ profileId: r.profile_id, membership: toMembership(r) }));
}

/** Memberships of an audience per status. */
export async function countMembers(db: Db, sandboxId: string, audienceId: string): Promise<Record<Membership['status'], number>> {
  const counts: Record<Membership['status'], number> = { realized: 0, existing: 0, exited: 0 };
  const { rows } = await db.query<{ status: Membership['status']; n: number }>(
    'SELECT status, count(*) AS n FROM memberships WHERE sandbox_id = $1 AND audience_id = $2 GROUP BY status',
    [sandboxId, audienceId],
  );
  for (const r of rows) counts[r.status] = r.n;
  return counts;
}

/** Membership events after `afterSeq`, oldest first, of one sandbox or of all. */
export async function readMembershipEvents(db: Db, sandboxId: string | undefined, afterSeq: number, limit: number): Promise<MembershipEventRow[]> {
  const { rows } = sandboxId !== undefined
    ? await db.query<MembershipEventDbRow>(
        'SELECT * FROM membership_events WHERE sandbox_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
        [sandboxId, afterSeq, limit],
      )
    : await db.query<MembershipEventDbRow>('SELECT * FROM membership_events WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, limit]);
  return rows.map(toMembershipEvent);
}

/** The seq of a sandbox's latest membership event, 0 when none (a backward scan of its index). */
export async function membershipEventHead(db: Db, sandboxId: string): Promise<number> {
  const { rows } = await db.query<{ s: number | null }>('SELECT max(seq) AS s FROM membership_events WHERE sandbox_id = $1', [sandboxId]);
  return rows[0]?.s ?? 0;
}

/** Deletes exited memberships whose last change is older than `before`. */
export async function purgeExitedMemberships(db: Db, before: number): Promise<number> {
  await db.query('DELETE FROM deleted_profiles WHERE at < $1', [before]);
  return (await db.query("DELETE FROM memberships WHERE status = 'exited' AND last_qualification_time < $1", [before])).rowCount ?? 0;
}

/** Distinct graphs of a sandbox; `DISTINCT` in a subquery lets it read the graph index in order. */
export async function countProfiles(db: Db, sandboxId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*) AS n FROM (SELECT DISTINCT graph_id FROM identities WHERE sandbox_id = $1) g',
    [sandboxId],
  );
  return rows[0]?.n ?? 0;
}

/** A page of profile ids in id order: a `Unique` over the (sandbox_id, graph_id) index, stopping at `limit`. */
export async function listProfileIds(db: Db, sandboxId: string, after: string | undefined, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ graph_id: string }>(
    'SELECT DISTINCT graph_id FROM identities WHERE sandbox_id = $1 AND graph_id > $2 ORDER BY graph_id LIMIT $3',
    [sandboxId, after ?? '', limit],
  );
  return rows.map((r) => r.graph_id);
}

/**
 * Per-id index probes (`unnest` × `LATERAL`) rather than `graph_id = ANY(…)` with an outer
 * `ORDER BY`: each probe reads events in (ts, event_id) index order, so nothing is sorted, and
 * the plan stays a serial nested loop (the `ANY` form drew a parallel plan twice as slow at 1000
 * ids). Rows of one profile arrive in its probe's order; ids must be distinct.
 */
const LOAD_PROFILES = prepared('load_profiles', `
  SELECT 0 AS k, f.graph_id, f.dataset_id, f.ns, f.id, NULL::text AS event_id, f.attributes AS body, f.ts
  FROM unnest($2::text[]) AS g(id) CROSS JOIN LATERAL (
    SELECT * FROM fragments WHERE sandbox_id = $1 AND graph_id = g.id ORDER BY dataset_id, ns, id) f
  UNION ALL
  SELECT 1, e.graph_id, e.dataset_id, NULL, NULL, e.event_id, e.body, e.ts
  FROM unnest($2::text[]) AS g(id) CROSS JOIN LATERAL (
    SELECT * FROM events WHERE sandbox_id = $1 AND graph_id = g.id AND ts >= $3 ORDER BY ts, event_id) e`);

interface LoadDbRow {
  k: 0 | 1; graph_id: string; dataset_id: string; ns: string | null; id: string | null; event_id: string | null;
  body: Record<string, unknown>; ts: number;
}

/**
 * Fragments and events (at or after `eventsSince`, oldest first) of many profiles, in one
 * query so that both come from one snapshot; every asked id is a key.
 */
export async function loadProfiles(db: Db, sandboxId: string, profileIds: readonly string[], eventsSince: number): Promise<Map<string, LoadedProfile>> {
  const out = new Map<string, LoadedProfile>(profileIds.map((p) => [p, { fragments: [], events: [] }]));
  if (out.size === 0) return out;
  const { rows } = await db.query<LoadDbRow>({ ...LOAD_PROFILES, values: [sandboxId, [...out.keys()], eventsSince] });
  for (const r of rows) {
    const p = out.get(r.graph_id);
    if (!p) continue;
    if (r.k === 0) {
      p.fragments.push(toFragment({ dataset_id: r.dataset_id, ns: r.ns ?? '', id: r.id ?? '', graph_id: r.graph_id, attributes: r.body, ts: r.ts }));
    } else {
      p.events.push({ datasetId: r.dataset_id, eventId: r.event_id ?? '', timestamp: r.ts, body: r.body });
    }
  }
  return out;
}

const LOAD_EVENTS = prepared('load_events', `
  SELECT e.graph_id, e.dataset_id, e.event_id, e.body, e.ts
  FROM unnest($2::text[]) AS g(id) CROSS JOIN LATERAL (
    SELECT * FROM events WHERE sandbox_id = $1 AND graph_id = g.id AND ts >= $3 ORDER BY ts, event_id) e`);

/** Events (at or after `eventsSince`, oldest first) of many profiles, as loadProfiles reads them; every asked id is a key. */
export async function loadEvents(db: Db, sandboxId: string, profileIds: readonly string[], eventsSince: number): Promise<Map<string, EventRow[]>> {
  const out = new Map<string, EventRow[]>(profileIds.map((p) => [p, []]));
  if (out.size === 0) return out;
  const { rows } = await db.query<{ graph_id: string; dataset_id: string; event_id: string; body: Record<string, unknown>; ts: number }>({
    ...LOAD_EVENTS, values: [sandboxId, [...out.keys()], eventsSince],
  });
  for (const r of rows) out.get(r.graph_id)?.push({ datasetId: r.dataset_id, eventId: r.event_id, timestamp: r.ts, body: r.body });
  return out;
}

const SCHEDULE = prepared('schedule_reevaluations', `
  INSERT INTO reevaluations AS r (sandbox_id, profile_id, due_at)
  SELECT $1, p, MIN(d) FROM unnest($2::text[], $3::bigint[]) AS u(p, d) GROUP BY p
  ON CONFLICT (sandbox_id, profile_id) DO UPDATE SET due_at = LEAST(r.due_at, excluded.due_at)
  WHERE excluded.due_at < r.due_at`);

/**
 * `due_at` of a leased row no request was made for since its take: never due by itself (only its
 * lease is), and any request is earlier, so the plain earliest-wins upserts record requests made
 * during a lease without knowing of leases.
 */
const NOT_DUE = Number.MAX_SAFE_INTEGER;

/** Asks for re-evaluations at their `dueAt`; per profile an earlier pending request wins (and is not rewritten). */
export async function scheduleReevaluations(db: Db, sandboxId: string, items: ReadonlyArray<{ profileId: string; dueAt: number }>): Promise<void> {
  if (!items.length) return;
  await db.query({ ...SCHEDULE, values: [sandboxId, items.map((i) => i.profileId), items.map((i) => i.dueAt)] });
}

// Due requests and expired leases are read from their own indexes, each in order, and merged:
// one OR would read every due row and sort them. `SKIP LOCKED` lets several workers take
// disjoint shares at once instead of queueing; the join returns the values before the update.
const TAKE = prepared('take_reevaluations', `
  WITH d AS (
    SELECT sandbox_id, profile_id, due_at, lease FROM reevaluations WHERE due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED),
  l AS (
    SELECT sandbox_id, profile_id, due_at, lease FROM reevaluations WHERE lease <= $1 ORDER BY lease LIMIT $2 FOR UPDATE SKIP LOCKED),
  c AS (
    SELECT sandbox_id, profile_id, LEAST(due_at, lease) AS due_at FROM (SELECT * FROM d UNION SELECT * FROM l) u
    ORDER BY 3 LIMIT $2)
  UPDATE reevaluations r SET due_at = CASE WHEN r.due_at <= $1 THEN $3::bigint ELSE r.due_at END, lease = $1::bigint + $4::bigint
  FROM c WHERE r.sandbox_id = c.sandbox_id AND r.profile_id = c.profile_id
  RETURNING r.sandbox_id, r.profile_id, c.due_at`);

/**
 * Leases and returns up to `limit` due re-evaluations (requests due at `now`, expired leases),
 * earliest first. A leased row is due again at the lease's end; a request not yet due that it
 * held stays pending.
 */
export async function takeDueReevaluations(db: Db, now: number, limit: number): Promise<Array<{ sandboxId: string; profileId: string; dueAt: number }>> {
  const { rows } = await db.query<{ sandbox_id: string; profile_id: string; due_at: number }>({
    ...TAKE, values: [now, limit, NOT_DUE, REEVALUATION_LEASE_MS],
  });
  return rows
    .map((r) => ({ sandboxId: r.sandbox_id, profileId: r.profile_id, dueAt: r.due_at }))
    .sort((x, y) => x.dueAt - y.dueAt);
}

const FINISH_DONE = prepared('finish_reevaluations_done', `
  DELETE FROM reevaluations WHERE sandbox_id = $1 AND profile_id = ANY($2::text[]) AND lease = $3 AND due_at = $4`);
const FINISH_PENDING = prepared('finish_reevaluations_pending', `
  UPDATE reevaluations SET lease = NULL WHERE sandbox_id = $1 AND profile_id = ANY($2::text[]) AND lease = $3`);

/**
 * Ends the leases taken at `takenAt`: rows with no request since are removed, then the rest
 * (a request came, possibly between the two statements) keep their request, unleased. Matching
 * the lease end leaves a lease taken again by another worker alone.
 */
export async function finishReevaluations(db: Db, sandboxId: string, profileIds: readonly string[], takenAt: number): Promise<void> {
  if (!profileIds.length) return;
  const lease = takenAt + REEVALUATION_LEASE_MS;
  await db.query({ ...FINISH_DONE, values: [sandboxId, profileIds, lease, NOT_DUE] });
  await db.query({ ...FINISH_PENDING, values: [sandboxId, profileIds, lease] });
}

/** Appends a point to an audience's size history. */
export async function addAudienceSize(db: Db, sandboxId: string, audienceId: string, point: AudienceSizePoint): Promise<void> {
  await db.query(
    'INSERT INTO audience_sizes (sandbox_id, audience_id, at, size, source) VALUES ($1, $2, $3, $4, $5)',
    [sandboxId, audienceId, point.at, point.size, point.source],
  );
}

/** An audience's size history, newest first. */
export async function audienceSizes(db: Db, sandboxId: string, audienceId: string, limit: number): Promise<AudienceSizePoint[]> {
  const { rows } = await db.query<AudienceSizePoint>(
    'SELECT at, size, source FROM audience_sizes WHERE sandbox_id = $1 AND audience_id = $2 ORDER BY at DESC LIMIT $3',
    [sandboxId, audienceId, limit],
  );
  return rows.map((r) => ({ at: r.at, size: r.size, source: r.source }));
}

/** The seq of the latest change; call it holding the sandbox's write lock (see Store.changeHead). */
export async function changeHead(db: Db): Promise<number> {
  const { rows } = await db.query<{ s: number | null }>('SELECT max(seq) AS s FROM changes');
  return rows[0]?.s ?? 0;
}

/**
 * Removes the snapshots of asked ids that no longer have a graph, and (re)builds the others in
 * the server: fragments (loadProfiles order) and events (ts, event_id order) aggregated into
 * the snapshot text (see snapshot.ts), one statement per chunk.
 */
const REFRESH_SNAPSHOTS = prepared('refresh_snapshots', `
  WITH d AS (
    DELETE FROM profile_snapshots s WHERE s.sandbox_id = $1 AND s.profile_id = ANY($2::text[])
    AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.sandbox_id = $1 AND i.graph_id = s.profile_id) RETURNING 1),
  w AS (
    INSERT INTO profile_snapshots (sandbox_id, profile_id, body)
    SELECT $1, g.id, '{"f":' || coalesce((
        SELECT json_agg(json_build_array(f.dataset_id, f.ns, f.id, f.ts, f.attributes) ORDER BY f.dataset_id, f.ns, f.id)
        FROM fragments f WHERE f.sandbox_id = $1 AND f.graph_id = g.id)::text, '[]')
      || ',"e":' || coalesce((
        SELECT json_agg(json_build_array(e.dataset_id, e.event_id, e.ts, e.body) ORDER BY e.ts, e.event_id)
        FROM events e WHERE e.sandbox_id = $1 AND e.graph_id = g.id AND e.ts >= $3)::text, '[]') || '}'
    FROM (SELECT DISTINCT graph_id AS id FROM identities WHERE sandbox_id = $1 AND graph_id = ANY($2::text[])) g
    ON CONFLICT (sandbox_id, profile_id) DO UPDATE SET body = excluded.body RETURNING 1)
  SELECT (SELECT count(*) FROM d)::int AS removed, (SELECT count(*) FROM w)::int AS written`);

/** Rebuilds the snapshots of `profileIds` (every profile when undefined); see Store.refreshProfileSnapshots. */
export async function refreshProfileSnapshots(
  db: Db,
  sandboxId: string,
  profileIds: readonly string[] | undefined,
  eventsSince: number,
): Promise<{ written: number; removed: number }> {
  let written = 0;
  let removed = 0;
  const CHUNK = 1000;
  const chunk = async (ids: readonly string[]): Promise<void> => {
    const { rows } = await db.query<{ removed: number; written: number }>({ ...REFRESH_SNAPSHOTS, values: [sandboxId, [...new Set(ids)], eventsSince] });
    written += rows[0]?.written ?? 0;
    removed += rows[0]?.removed ?? 0;
  };
  if (profileIds !== undefined) {
    for (let i = 0; i < profileIds.length; i += CHUNK) await chunk(profileIds.slice(i, i + CHUNK));
    return { written, removed };
  }
  const { rowCount } = await db.query(
    `DELETE FROM profile_snapshots s WHERE s.sandbox_id = $1
     AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.sandbox_id = $1 AND i.graph_id = s.profile_id)`,
    [sandboxId],
  );
  removed += rowCount ?? 0;
  // Two chunks build at once, on two pooled connections: the build is server CPU (JSONB to
  // text, aggregation), so a second backend uses a second core.
  const running = new Set<Promise<void>>();
  let failure: unknown;
  let after: string | undefined;
  for (;;) {
    const ids = await listProfileIds(db, sandboxId, after, CHUNK);
    if (!ids.length) break;
    const p: Promise<void> = chunk(ids).catch((err: unknown) => void (failure ??= err)).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= 2) await Promise.race(running);
    if (failure !== undefined) break;
    after = ids.at(-1);
    if (ids.length < CHUNK) break;
  }
  await Promise.all(running);
  if (failure !== undefined) throw failure;
  // Statistics taken before the build would make the planner scan and sort every snapshot after
  // the cursor for each page of the batch read instead of walking the primary key.
  await db.query('ANALYZE profile_snapshots');
  return { written, removed };
}

/** Snapshot texts in profile id order after `after` (the primary key, read in order). */
async function scanProfileSnapshotTexts(db: Db, sandboxId: string, after: string | undefined, limit: number): Promise<Array<{ profileId: string; body: string }>> {
  const { rows } = await db.query<{ profile_id: string; body: string }>({
    ...prepared('scan_snapshots', 'SELECT profile_id, body FROM profile_snapshots WHERE sandbox_id = $1 AND profile_id > $2 ORDER BY profile_id LIMIT $3'),
    values: [sandboxId, after ?? '', limit],
  });
  return rows.map((r) => ({ profileId: r.profile_id, body: r.body }));
}

/** Decoded snapshots in profile id order after `after`. */
export async function scanProfileSnapshots(db: Db, sandboxId: string, after: string | undefined, limit: number, eventsSince: number): Promise<ProfileSnapshot[]> {
  return (await scanProfileSnapshotTexts(db, sandboxId, after, limit)).map((r) => decodeSnapshot(r.profileId, r.body, eventsSince));
}
