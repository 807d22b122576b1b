/**
 * Upkeep of the batch-evaluation snapshots (one row per profile: fragments and events within
 * retention, see the storage port). Refreshed at the start of each batch run: the first run of a
 * sandbox builds them all; later runs rebuild only the profiles named by the change log since
 * the previous refresh (profile, event, merge — absorbed profiles too — and delete changes).
 * The cursor is the change head read while no write of the sandbox is in flight, so a change is
 * never skipped; changes after it are applied again next time (a rebuild is idempotent).
 */
import type { Store } from '@audient/storage';

/** What a refresh did. */
export interface SnapshotRefresh {
  mode: 'full' | 'changes';
  /** Changes of the sandbox read from the log (mode `changes`). */
  changes: number;
  /** Distinct profiles named by them (mode `changes`). */
  profiles: number;
  written: number;
  removed: number;
  ms: number;
}

const cursorName = (sandboxId: string): string => `batch-snapshots:${sandboxId}`;
const builtName = (sandboxId: string): string => `batch-snapshots-built:${sandboxId}`;
const READ = 10_000;

/** Brings the sandbox's snapshots up to date with the change log; events kept from `eventsSince`. */
export async function refreshSnapshots(store: Store, sandboxId: string, eventsSince: number): Promise<SnapshotRefresh> {
  const t0 = performance.now();
  const head = await store.changeHead(sandboxId);
  if ((await store.getCursor(builtName(sandboxId))) === 0) {
    const r = await store.refreshProfileSnapshots(sandboxId, undefined, eventsSince);
    await store.setCursor(cursorName(sandboxId), head);
    await store.setCursor(builtName(sandboxId), 1);
    return { mode: 'full', changes: 0, profiles: r.written, ...r, ms: performance.now() - t0 };
  }
  let at = await store.getCursor(cursorName(sandboxId));
  const ids = new Set<string>();
  let changes = 0;
  while (at < head) {
    const rows = await store.readChanges(at, READ);
    if (!rows.length) break;
    for (const r of rows) {
      if (r.seq > head) break;
      if (r.sandboxId !== sandboxId) continue;
      changes++;
      ids.add(r.change.profileId);
      for (const m of r.change.mergedFrom ?? []) ids.add(m);
    }
    at = Math.min(head, rows.at(-1)!.seq);
    if (rows.length < READ) break;
  }
  const r = ids.size ? await store.refreshProfileSnapshots(sandboxId, [...ids].sort(), eventsSince) : { written: 0, removed: 0 };
  await store.setCursor(cursorName(sandboxId), head);
  return { mode: 'changes', changes, profiles: ids.size, ...r, ms: performance.now() - t0 };
}
