/**
 * The SQLite store's batch segmentation reads and writes (see Store.scanBatchProfiles and
 * Store.writeBatchMemberships). A batch run writes about fifteen memberships per profile, so each
 * kind of write of a page is one statement reading its rows from one JSON array (no statement
 * per row), and confirmations (realized → existing) are one UPDATE over the page's profiles
 * instead of one per membership.
 */
import type Database from 'better-sqlite3';
import { pageProfileIds, withoutDeleted } from '../deleted-profiles.js';
import type { BatchMembershipPage, BatchProfileChunk, MembershipEventRow } from '../port.js';

/** Prepared statements per connection (the store's own cache is private to it). */
const cache = new WeakMap<Database.Database, Map<string, Database.Statement>>();

function stmt(db: Database.Database, sql: string): Database.Statement {
  let m = cache.get(db);
  if (!m) cache.set(db, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = db.prepare(sql)));
  return s;
}

/**
 * One chunk: the next snapshots in primary-key order, each with its memberships (primary-key
 * prefix per profile), spliced into JSON texts in SQLite. The aggregates see the rows in one
 * pass, so the three texts list the profiles in the same order (no sort of the large texts).
 */
const SCAN = `
  SELECT json_group_array(profile_id), '[' || group_concat(body, ',') || ']', '[' || group_concat(ms, ',') || ']', max(profile_id), count(*)
  FROM (
    SELECT s.profile_id, s.body, (
        SELECT json_group_array(json_array(m.audience_id, m.status, m.last_qualification_time))
        FROM memberships m WHERE m.sandbox_id = s.sandbox_id AND m.profile_id = s.profile_id) AS ms
    FROM profile_snapshots s WHERE s.sandbox_id = @sb AND s.profile_id > @after ORDER BY s.profile_id LIMIT @limit)`;

export function scanBatchProfiles(db: Database.Database, sandboxId: string, after: string | undefined, limit: number, chunk: number): BatchProfileChunk[] {
  const out: BatchProfileChunk[] = [];
  const scan = stmt(db, SCAN).raw(true);
  let from = after ?? '';
  for (let left = limit; left > 0;) {
    const take = Math.min(chunk, left);
    const [ids, snapshots, memberships, last, n] = scan.get({ sb: sandboxId, after: from, limit: take }) as [string, string, string, string, number];
    if (n === 0) break;
    out.push({ profileIds: JSON.parse(ids) as string[], snapshots, memberships, last });
    from = last;
    left -= n;
    if (n < take) break;
  }
  return out;
}

// Confirmations run first, so the page's own changes (written next) are never confirmed; a
// change of a row confirmed here (an exit) overwrites it. Rows are found by primary-key prefix
// per profile; the unary + keeps the audience list a filter (as a key term it made one probe
// per profile and audience, 200,000 per page of 2,000 profiles and 100 audiences).
const CONFIRM = `
  UPDATE memberships SET status = 'existing'
  WHERE sandbox_id = @sb AND profile_id IN (SELECT value FROM json_each(@profiles)) AND status = 'realized'
    AND +audience_id IN (SELECT value FROM json_each(@audiences))`;
const CONFIRM_EXCEPT = `${CONFIRM}
    AND (profile_id, audience_id) NOT IN (SELECT value ->> 0, value ->> 1 FROM json_each(@unconfirmed))`;
const CHANGE = `
  INSERT INTO memberships (sandbox_id, profile_id, audience_id, status, last_qualification_time)
  SELECT @sb, value ->> 0, value ->> 1, value ->> 2, @now FROM json_each(@changes) WHERE true
  ON CONFLICT (sandbox_id, profile_id, audience_id) DO UPDATE SET status = excluded.status, last_qualification_time = excluded.last_qualification_time`;
const LOG = `
  INSERT INTO membership_events (sandbox_id, audience_id, profile_id, status, at)
  SELECT @sb, value ->> 1, value ->> 0, value ->> 2, @now FROM json_each(@changes) ORDER BY key`;
const SCHEDULE = `
  INSERT INTO reevaluations (sandbox_id, profile_id, due_at)
  SELECT @sb, value ->> 0, min(value ->> 1) FROM json_each(@schedule) WHERE true GROUP BY value ->> 0
  ON CONFLICT (sandbox_id, profile_id) DO UPDATE SET due_at = excluded.due_at WHERE excluded.due_at < due_at`;

/**
 * The privacy-deleted profiles among `ids()` (a probe of the sandbox's tombstones first: they are
 * rare, and the ids are listed only when there are some).
 */
export function deletedAmong(db: Database.Database, sandboxId: string, ids: () => readonly string[]): Set<string> {
  if (!stmt(db, 'SELECT 1 FROM deleted_profiles WHERE sandbox_id = ? LIMIT 1').get(sandboxId)) return new Set();
  const rows = stmt(db, 'SELECT profile_id FROM deleted_profiles WHERE sandbox_id = ? AND profile_id IN (SELECT value FROM json_each(?))')
    .all(sandboxId, JSON.stringify(ids())) as Array<{ profile_id: string }>;
  return new Set(rows.map((r) => r.profile_id));
}

/** Writes a page in one transaction; the caller holds the store's writers' mutex. */
export function writeBatchMemberships(db: Database.Database, sandboxId: string, whole: BatchMembershipPage, now: number): MembershipEventRow[] {
  return db.transaction(() => {
    const gone = whole.changes.length || whole.schedule.length ? deletedAmong(db, sandboxId, () => pageProfileIds(whole)) : new Set<string>();
    const { changes, confirm, schedule } = withoutDeleted(whole, gone);
    if (confirm.profileIds.length && confirm.audienceIds.length) {
      const params: Record<string, unknown> = { sb: sandboxId, profiles: JSON.stringify(confirm.profileIds), audiences: JSON.stringify(confirm.audienceIds) };
      if (confirm.unconfirmed.length) params['unconfirmed'] = JSON.stringify(confirm.unconfirmed.map((u) => [u.profileId, u.audienceId]));
      stmt(db, confirm.unconfirmed.length ? CONFIRM_EXCEPT : CONFIRM).run(params);
    }
    if (schedule.length) stmt(db, SCHEDULE).run({ sb: sandboxId, schedule: JSON.stringify(schedule.map((s) => [s.profileId, s.dueAt])) });
    if (!changes.length) return [];
    const text = JSON.stringify(changes.map((c) => [c.profileId, c.audienceId, c.status]));
    stmt(db, CHANGE).run({ sb: sandboxId, now, changes: text });
    const logged = stmt(db, LOG).run({ sb: sandboxId, now, changes: text });
    // One statement inserting in array order under the write lock: AUTOINCREMENT hands out
    // consecutive seqs, the last of which is lastInsertRowid.
    if (logged.changes !== changes.length) throw new Error(`membership events: ${logged.changes} logged of ${changes.length}`);
    const first = Number(logged.lastInsertRowid) - changes.length + 1;
    return changes.map((c, i): MembershipEventRow => ({ seq: first + i, sandboxId, audienceId: c.audienceId, profileId: c.profileId, status: c.status, at: now }));
  })();
}
