/**
 * The PostgreSQL store's ID-sync table: per partner (connection), the partner's user id of an
 * ECID. One statement per call whatever the number of rows (`unnest` writes, `= ANY` lookups).
 */
import type pg from 'pg';
import type { IdSyncRow } from '../port.js';

/** What these functions need of the pool. */
type Db = Pick<pg.Pool, 'query'>;

interface IdSyncDbRow {
  sandbox_id: string; partner_id: string; ecid: string; partner_uid: string; synced_at: number;
}

const toRow = (r: IdSyncDbRow): IdSyncRow => ({
  sandboxId: r.sandbox_id, partnerId: r.partner_id, ecid: r.ecid, partnerUid: r.partner_uid, syncedAt: Number(r.synced_at),
});

/** The last row given for each (sandbox, partner, ECID): one statement may not update a row twice. */
export function lastPerKey(rows: readonly IdSyncRow[]): IdSyncRow[] {
  const byKey = new Map<string, IdSyncRow>();
  for (const r of rows) byKey.set(`${r.sandboxId}\u0000${r.partnerId}\u0000${r.ecid}`, r);
  return [...byKey.values()];
}

/** Inserts syncs, or replaces the partner id and time of an ECID already synced to that partner. */
export async function putIdSyncs(db: Db, rows: readonly IdSyncRow[]): Promise<void> {
  const list = lastPerKey(rows);
  if (list.length === 0) return;
  await db.query(
    `INSERT INTO id_syncs (sandbox_id, partner_id, ecid, partner_uid, synced_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])
     ON CONFLICT (sandbox_id, partner_id, ecid) DO UPDATE SET partner_uid = excluded.partner_uid, synced_at = excluded.synced_at`,
    [list.map((r) => r.sandboxId), list.map((r) => r.partnerId), list.map((r) => r.ecid), list.map((r) => r.partnerUid), list.map((r) => r.syncedAt)],
  );
}

/** A partner's syncs of these ECIDs, in the order of `ecids`. */
export async function idSyncsOf(db: Db, sandboxId: string, partnerId: string, ecids: readonly string[]): Promise<IdSyncRow[]> {
  if (ecids.length === 0) return [];
  const { rows } = await db.query<IdSyncDbRow>(
    'SELECT sandbox_id, partner_id, ecid, partner_uid, synced_at FROM id_syncs WHERE sandbox_id = $1 AND partner_id = $2 AND ecid = ANY($3::text[])',
    [sandboxId, partnerId, [...ecids]],
  );
  const byEcid = new Map(rows.map((r) => [r.ecid, toRow(r)]));
  return [...new Set(ecids)].flatMap((e) => byEcid.get(e) ?? []);
}

/** Removes a partner's syncs (all, or of the given ECIDs); returns how many. */
export async function deleteIdSyncs(db: Db, sandboxId: string, partnerId: string, ecids?: readonly string[]): Promise<number> {
  const res = ecids
    ? await db.query('DELETE FROM id_syncs WHERE sandbox_id = $1 AND partner_id = $2 AND ecid = ANY($3::text[])', [sandboxId, partnerId, [...ecids]])
    : await db.query('DELETE FROM id_syncs WHERE sandbox_id = $1 AND partner_id = $2', [sandboxId, partnerId]);
  return res.rowCount ?? 0;
}
