/**
 * The failed-records store as users see it: list and download what was refused and why, then
 * replay it once the schema or the data is fixed. A replayed record that passes is marked
 * `replayed`; one that fails again stays `failed` and the answer says why.
 */
import { AudientError, type ErrorDetail } from '@audient/core';
import type { FailedRecordRow, Store } from '@audient/storage';
import type { IngestionService, RecordResult } from './ingestion.js';
import { pushTo } from '../collections.js';

/** The outcome of replaying one failed record. */
export interface ReplayResult {
  id: string;
  status: 'replayed' | 'failed' | 'not-found';
  profileId?: string;
  code?: string;
  message?: string;
  details?: ErrorDetail[];
}

/** Listing and replay of failed records. */
export class FailedRecords {
  constructor(private readonly deps: { store: Store; ingestion: IngestionService }) {}

  list(
    sandboxId: string,
    filter: { datasetId?: string | undefined; source?: string | undefined; status?: FailedRecordRow['status'] | undefined },
    page: { limit: number; cursor?: string | undefined },
  ): Promise<FailedRecordRow[]> {
    return this.deps.store.listFailedRecords(sandboxId, filter, page);
  }

  /** Every failed record matching `filter`, oldest pages last, streamed page by page. */
  async *all(
    sandboxId: string,
    filter: { datasetId?: string | undefined; source?: string | undefined; status?: FailedRecordRow['status'] | undefined },
  ): AsyncGenerator<FailedRecordRow> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.deps.store.listFailedRecords(sandboxId, filter, { limit: 500, cursor });
      yield* page;
      if (page.length < 500) return;
      cursor = page.at(-1)!.id;
    }
  }

  /**
   * Replays failed records by id. `fixes` may give a corrected record for an id; otherwise the
   * stored payload is ingested again (useful after the schema was fixed).
   */
  async replay(sandboxId: string, ids: readonly string[], fixes: Record<string, unknown> = {}): Promise<ReplayResult[]> {
    if (ids.length === 0) throw new AudientError('BAD_REQUEST', 'give at least one failed record id to replay');
    if (ids.length > 1000) throw new AudientError('BAD_REQUEST', 'replay at most 1000 records per request');
    const rows = await this.deps.store.getFailedRecords(sandboxId, ids);
    const found = new Map(rows.map((r) => [r.id, r]));
    const out: ReplayResult[] = [];
    const byDataset = new Map<string, FailedRecordRow[]>();
    for (const id of ids) {
      const row = found.get(id);
      if (!row) out.push({ id, status: 'not-found', message: 'no failed record with this id in this sandbox' });
      else if (row.status !== 'failed') out.push({ id, status: 'replayed', message: `already ${row.status}` });
      else pushTo(byDataset, row.datasetId, row);
    }
    const at = new Date().toISOString();
    for (const [datasetId, list] of byDataset) {
      const incoming = list.map((row, position) => {
        if (Object.prototype.hasOwnProperty.call(fixes, row.id)) return { position, record: fixes[row.id] };
        try {
          return { position, record: JSON.parse(row.payload) as unknown };
        } catch {
          return {
            position,
            raw: row.payload,
            error: { code: 'MALFORMED_JSON' as const, message: 'the stored payload is not JSON; replay it with a corrected record', details: [] },
          };
        }
      });
      const results: RecordResult[] = await this.deps.ingestion.ingestRows(sandboxId, datasetId, incoming, 'replay', { keepFailures: false });
      const ok: string[] = [];
      results.forEach((r, i) => {
        const row = list[i]!;
        if (r.status === 'accepted') {
          ok.push(row.id);
          out.push({ id: row.id, status: 'replayed', ...(r.profileId ? { profileId: r.profileId } : {}) });
        } else {
          out.push({ id: row.id, status: 'failed', code: r.code, message: r.message, details: r.details });
        }
      });
      if (ok.length) await this.deps.store.setFailedStatus(sandboxId, ok, 'replayed', at);
    }
    const order = new Map(ids.map((id, i) => [id, i]));
    return out.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  }
}
