/**
 * ID syncs (seed 002): per partner — a connection whose destination addresses users by the
 * partner's own ids (`idSync`, e.g. partner push) — the partner's user id for each of our ECIDs.
 * Filled by the sync pixel (the partner redirects the browser to us with its uid and our ECID)
 * and by the sync API; read by activation, which excludes profiles with no synced id; removed
 * with the connection and by a privacy delete of the profile holding the ECID.
 */
import { AudientError, type ErrorDetail } from '@audient/core';
import type { IdSyncRow, Store } from '@audient/storage';
import type { Connections } from './connections.js';

const ECID_RE = /^\d{38}$/;
/** Partner user ids: 1–256 visible ASCII characters (they travel in URLs and JSON). */
const PARTNER_UID_RE = /^[\x21-\x7e]{1,256}$/;

/** One sync as callers give it. */
export interface IdSyncInput {
  ecid: string;
  partnerUid: string;
}

/** ID-sync management. */
export class IdSyncs {
  constructor(private readonly deps: { store: Store; connections: Connections; now: () => number }) {}

  /** The connection, refused unless its destination addresses users by synced ids. */
  private async partner(sandboxId: string, connectionId: string): Promise<void> {
    const conn = await this.deps.connections.open(sandboxId, connectionId);
    if (!conn.definition.idSync) {
      throw new AudientError('BAD_REQUEST', `${conn.definition.name} does not address users by synced partner ids: nothing to sync for connection ${connectionId}`);
    }
  }

  /** Records syncs for a partner (all or none: any invalid entry refuses the call). */
  async sync(sandboxId: string, connectionId: string, entries: readonly IdSyncInput[]): Promise<{ synced: number }> {
    await this.partner(sandboxId, connectionId);
    const errors: ErrorDetail[] = [];
    entries.forEach((e, i) => {
      if (!ECID_RE.test(e.ecid)) errors.push({ path: `syncs.${i}.ecid`, reason: 'format', message: 'an ECID is exactly 38 digits' });
      if (!PARTNER_UID_RE.test(e.partnerUid)) {
        errors.push({ path: `syncs.${i}.partnerUid`, reason: 'format', message: 'a partner user id is 1 to 256 visible ASCII characters' });
      }
    });
    if (errors.length) throw new AudientError('VALIDATION_FAILED', 'some ID syncs are not valid', errors);
    const at = this.deps.now();
    await this.deps.store.putIdSyncs(entries.map((e) => ({ sandboxId, partnerId: connectionId, ecid: e.ecid, partnerUid: e.partnerUid, syncedAt: at })));
    return { synced: entries.length };
  }

  /** A partner's syncs of these ECIDs. */
  async lookup(sandboxId: string, connectionId: string, ecids: readonly string[]): Promise<IdSyncRow[]> {
    await this.partner(sandboxId, connectionId);
    return this.deps.store.idSyncsOf(sandboxId, connectionId, ecids);
  }

  /** Forgets a partner's syncs of these ECIDs (the partner's opt-out); returns how many. */
  async forget(sandboxId: string, connectionId: string, ecids: readonly string[]): Promise<number> {
    await this.partner(sandboxId, connectionId);
    return this.deps.store.deleteIdSyncs(sandboxId, connectionId, ecids);
  }
}
