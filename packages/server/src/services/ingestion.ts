/**
 * Ingestion: validates each record against its dataset's schema, stores the good ones in one
 * transaction (identity resolution, fragments, events, change log) and keeps every bad one, with
 * its reason, in the failed-records store. One bad record never costs its neighbours.
 */
import {
  planIngest,
  prepareRecord,
  type BatchRecord,
  type ErrorCode,
  type ErrorDetail,
  type IngestLimits,
} from '@audient/core';
import type { Store } from '@audient/storage';
import { newUuid, sortableId } from '../ids.js';
import type { Catalog } from './catalog.js';
import type { ChangeFeed } from './change-feed.js';
import type { Metrics } from '../metrics.js';

/** The outcome of one record, in input order. */
export type RecordResult =
  | { index: number; status: 'accepted'; profileId?: string; duplicate?: boolean }
  | { index: number; status: 'rejected'; code: ErrorCode | 'MALFORMED_JSON' | 'MALFORMED_CSV'; message: string; details: ErrorDetail[]; failedRecordId: string };

/** A record to ingest, or a row that could not even be parsed. */
export type IncomingRecord =
  | { position: number; record: unknown }
  | { position: number; error: { code: 'MALFORMED_JSON' | 'MALFORMED_CSV'; message: string; details: ErrorDetail[] }; raw: string };

/** Ingestion for every sandbox. */
export class IngestionService {
  constructor(
    private readonly deps: {
      store: Store;
      catalog: Catalog;
      feed: ChangeFeed;
      limits: IngestLimits;
      metrics: Metrics;
      now?: () => number;
    },
  ) {}

  /** Ingests plain records (a streaming request): position = index in the request. */
  ingest(sandboxId: string, datasetId: string, records: readonly unknown[], source = 'stream'): Promise<RecordResult[]> {
    return this.ingestRows(sandboxId, datasetId, records.map((record, position) => ({ position, record })), source);
  }

  /** Ingests rows that may include parse failures (files, replays). */
  async ingestRows(
    sandboxId: string,
    datasetId: string,
    rows: readonly IncomingRecord[],
    source: string,
    opts: { keepFailures?: boolean } = {},
  ): Promise<RecordResult[]> {
    const { store, catalog, limits } = this.deps;
    const dataset = await catalog.getDataset(sandboxId, datasetId);
    const schema = await catalog.resolvedSchema(sandboxId, dataset.schemaId);
    const registry = await catalog.namespaces(sandboxId);
    const now = this.deps.now?.() ?? Date.now();

    const results: RecordResult[] = new Array(rows.length);
    const failed: Parameters<Store['addFailedRecords']>[0][number][] = [];
    const good: Array<{ i: number; rec: BatchRecord }> = [];
    const lake: Array<{ i: number; body: Record<string, unknown> }> = [];
    const reject = (i: number, row: IncomingRecord, code: Extract<RecordResult, { status: 'rejected' }>['code'], message: string, details: ErrorDetail[]): void => {
      const id = sortableId('fr');
      const payload = 'raw' in row ? row.raw : (JSON.stringify(row.record) ?? 'undefined');
      failed.push({ id, sandboxId, datasetId, source, position: row.position, code, message, details, payload });
      results[i] = { index: row.position, status: 'rejected', code, message, details, failedRecordId: id };
    };

    rows.forEach((row, i) => {
      if ('error' in row) return reject(i, row, row.error.code, row.error.message, row.error.details);
      const p = prepareRecord(row.record, schema, registry, limits);
      if (!p.ok) {
        // Records of non-profile datasets need no identity: they are kept in the lake as they are.
        if (!dataset.profileEnabled && p.code === 'MISSING_IDENTITY') {
          lake.push({ i, body: row.record as Record<string, unknown> });
          return;
        }
        return reject(i, row, p.code, p.message, p.details);
      }
      if (dataset.profileEnabled) good.push({ i, rec: { datasetId, prepared: p } });
      else lake.push({ i, body: p.kind === 'event' ? p.body : p.attributes });
    });

    if (good.length > 0 || lake.length > 0) {
      const plan = await store.ingest(sandboxId, async (tx) => {
        if (lake.length) await tx.appendLake(lake.map((l) => ({ datasetId, body: l.body })), now);
        if (!good.length) return undefined;
        const records = good.map((g) => g.rec);
        const identities = records.flatMap((r) => r.prepared.identities);
        const fragKeys = records.filter((r) => r.prepared.kind === 'profile').map((r) => ({ datasetId, identity: r.prepared.primary }));
        const eventKeys = records.flatMap((r) => (r.prepared.kind === 'event' ? [{ datasetId, eventId: r.prepared.eventId }] : []));
        const [members, fragments, existingEvents] = [
          await tx.graphMembersOf(identities),
          fragKeys.length ? await tx.fragments(fragKeys) : new Map(),
          eventKeys.length ? await tx.existingEvents(eventKeys) : new Set<string>(),
        ];
        const p = planIngest(records, { members, fragments, existingEvents }, {
          now,
          maxGraphSize: limits.maxGraphSize,
          namespaceType: (ns) => registry.get(ns)?.type ?? 'person',
          newId: newUuid,
        });
        await tx.apply(p, now);
        return p;
      });
      good.forEach((g, k) => {
        const r = plan?.results[k];
        results[g.i] = { index: rows[g.i]!.position, status: 'accepted', ...(r ? { profileId: r.profileId } : {}), ...(r?.duplicate ? { duplicate: true } : {}) };
      });
      for (const l of lake) results[l.i] = { index: rows[l.i]!.position, status: 'accepted' };
      this.deps.feed.poke();
    }
    if (failed.length && opts.keepFailures !== false) await store.addFailedRecords(failed);
    this.deps.metrics.recordsIngested.inc({ status: 'accepted' }, good.length + lake.length);
    this.deps.metrics.recordsIngested.inc({ status: 'rejected' }, failed.length);
    return results;
  }
}

