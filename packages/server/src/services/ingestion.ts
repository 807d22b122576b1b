/**
 * Ingestion: validates each record against its dataset's schema, stores the good ones in one
 * transaction (identity resolution, fragments, events, change log) and keeps every bad one, with
 * its reason, in the failed-records store. One bad record never costs its neighbours.
 */
import {
  identityKey,
  jsonTextOf,
  planIngest,
  prepareRecord,
  type BatchRecord,
  type ErrorCode,
  type ErrorDetail,
  type IdentityRef,
  type IngestLimits,
  type NamespaceRegistry,
  type StoredFragment,
  type WritePlan,
} from '@audient/core';
import type { Store } from '@audient/storage';
import { sortableId, timeOrderedUuid } from '../ids.js';
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

/** Most records one group transaction takes (a single larger request still goes alone). */
const GROUP_RECORDS = 2000;
/** Requests waiting in a group that end its wait for company at once (see commit). */
const GROUP_FULL_REQUESTS = 8;
/** A failed record's payload when the record cannot be written out (see jsonTextOf): kept as a JSON string saying so. */
const TOO_DEEP_PAYLOAD = JSON.stringify('(not kept: the record nests too deeply to be written out)');
/**
 * Identities' last-seen times are kept to the minute: an identity carried again within a minute
 * of its stored time is not rewritten (see `PlanOptions.lastSeenResolutionMs`).
 */
const LAST_SEEN_RESOLUTION_MS = 60_000;

/** Records of one request waiting for its sandbox's next group transaction. */
interface PendingWrite {
  records: readonly BatchRecord[];
  lake: ReadonlyArray<{ datasetId: string; body: Record<string, unknown> }>;
  registry: NamespaceRegistry;
  resolve: (results: WritePlan['results']) => void;
  reject: (err: unknown) => void;
}

interface SandboxQueue {
  jobs: PendingWrite[];
  running: boolean;
  /** The group's wait for company, while it lasts (see commit). */
  waiting?: NodeJS.Timeout | undefined;
}

const weight = (j: PendingWrite): number => j.records.length + j.lake.length;

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
      /** How long a group waits for company when writes arrive close together, ms (0: never; see commit). */
      groupWaitMs?: number;
      /** Writes are close together when a group began less than this long ago, ms (default: twice groupWaitMs). */
      busyGapMs?: number;
    },
  ) {
    this.groupWaitMs = deps.groupWaitMs ?? 0;
    this.busyGapMs = deps.busyGapMs ?? 2 * this.groupWaitMs;
  }

  private readonly groupWaitMs: number;
  private readonly busyGapMs: number;
  /**
   * Per sandbox: when its latest group transaction began (performance.now()) and how many
   * requests it took. Per sandbox, so one busy sandbox does not make another's lone request wait.
   */
  private readonly pace = new Map<string, { at: number; size: number }>();
  private readonly queues = new Map<string, SandboxQueue>();
  private readonly storedListeners: Array<(sandboxId: string, events: WritePlan['events'], created: ReadonlyMap<string, readonly IdentityRef[]>) => void> = [];

  /**
   * Calls `fn` with the events of each commit, synchronously after the commit and before its
   * changes go to the change feed: whoever keeps profiles' events in memory (the segmentation
   * engine's views) has them before any subscriber hears of them. `created`: the profiles the
   * commit created whole from events alone (see WritePlan.createdGraphs; no fragment was written
   * to them), with their identities: all they hold is these and their events.
   */
  onEventsStored(fn: (sandboxId: string, events: WritePlan['events'], created: ReadonlyMap<string, readonly IdentityRef[]>) => void): void {
    this.storedListeners.push(fn);
  }

  /** Ingests plain records (a streaming request): position = index in the request. */
  ingest(
    sandboxId: string,
    datasetId: string,
    records: readonly unknown[],
    source = 'stream',
    opts: { mintedIds?: ReadonlySet<string>; mintedIdentities?: ReadonlySet<string> } = {},
  ): Promise<RecordResult[]> {
    return this.ingestRows(sandboxId, datasetId, records.map((record, position) => ({ position, record })), source, opts);
  }

  /** Ingests rows that may include parse failures (files, replays). */
  async ingestRows(
    sandboxId: string,
    datasetId: string,
    rows: readonly IncomingRecord[],
    source: string,
    opts: {
      keepFailures?: boolean;
      /** Event ids the caller minted for these records (see BatchRecord.mintedId). */
      mintedIds?: ReadonlySet<string> | undefined;
      /** Identities (identityKey) the caller minted for these records (see BatchRecord.mintedIdentities). */
      mintedIdentities?: ReadonlySet<string> | undefined;
    } = {},
  ): Promise<RecordResult[]> {
    const { store, catalog, limits } = this.deps;
    const dataset = await catalog.getDataset(sandboxId, datasetId);
    const schema = await catalog.resolvedSchema(sandboxId, dataset.schemaId);
    const registry = await catalog.namespaces(sandboxId);

    const results: RecordResult[] = new Array(rows.length);
    const failed: Parameters<Store['addFailedRecords']>[0][number][] = [];
    const good: Array<{ i: number; rec: BatchRecord }> = [];
    const lake: Array<{ i: number; body: Record<string, unknown> }> = [];
    const reject = (i: number, row: IncomingRecord, code: Extract<RecordResult, { status: 'rejected' }>['code'], message: string, details: ErrorDetail[]): void => {
      const id = sortableId('fr');
      const text = 'raw' in row ? row.raw : jsonTextOf(row.record);
      const payload = text === null ? TOO_DEEP_PAYLOAD : (text ?? 'undefined');
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
      if (dataset.profileEnabled) {
        const rec: BatchRecord = { datasetId, prepared: p };
        if (p.kind === 'event' && opts.mintedIds?.has(p.eventId)) rec.mintedId = true;
        const minted = opts.mintedIdentities;
        if (minted && p.identities.every((id) => minted.has(identityKey(id)))) rec.mintedIdentities = true;
        good.push({ i, rec });
      }
      else lake.push({ i, body: p.kind === 'event' ? p.body : p.attributes });
    });

    if (good.length > 0 || lake.length > 0) {
      const plan = await this.commit(sandboxId, {
        records: good.map((g) => g.rec),
        lake: lake.map((l) => ({ datasetId, body: l.body })),
        registry,
      });
      good.forEach((g, k) => {
        const r = plan[k];
        const index = rows[g.i]!.position;
        results[g.i] = !r
          ? { index, status: 'accepted' }
          : r.duplicate
            ? { index, status: 'accepted', profileId: r.profileId, duplicate: true }
            : { index, status: 'accepted', profileId: r.profileId };
      });
      for (const l of lake) results[l.i] = { index: rows[l.i]!.position, status: 'accepted' };
    }
    if (failed.length && opts.keepFailures !== false) await store.addFailedRecords(failed);
    // A labelled increment costs a label lookup: skipped when there is nothing to add.
    if (good.length + lake.length) this.deps.metrics.recordsIngested.inc({ status: 'accepted' }, good.length + lake.length);
    if (failed.length) this.deps.metrics.recordsIngested.inc({ status: 'rejected' }, failed.length);
    return results;
  }

  /**
   * Group commit. A request's validated records join its sandbox's queue; the queue is written
   * in one transaction (records in arrival order, so the outcome equals committing the requests
   * one after another), and each request is answered only after that transaction committed.
   * Requests that arrive while a transaction runs form the next one. If a group's transaction
   * fails, each of its requests is retried in a transaction of its own, so a failing request
   * never costs the others.
   *
   * A group gathers the requests whose bodies arrived in the same turn of the event loop. When
   * writes arrive close together (the sandbox's previous group began less than `busyGapMs` ago)
   * but not all at once, as edge requests at a steady rate below saturation do, each turn carries one
   * request and each request would pay a transaction, a change-feed batch and an evaluation
   * batch of its own: the group then waits up to `groupWaitMs` for company, and goes at once
   * when GROUP_FULL_REQUESTS requests (or GROUP_RECORDS records) have joined. A lone request
   * after a quiet spell never waits, nor does a group after one that filled up by itself.
   */
  private commit(sandboxId: string, job: Omit<PendingWrite, 'resolve' | 'reject'>): Promise<WritePlan['results']> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(sandboxId);
      if (!q) this.queues.set(sandboxId, (q = { jobs: [], running: false }));
      // Built field by field: a spread of the job measured as costly as the rest of this call.
      q.jobs.push({ records: job.records, lake: job.lake, registry: job.registry, resolve, reject });
      if (q.waiting && (q.jobs.length >= GROUP_FULL_REQUESTS || q.jobs.reduce((n, j) => n + weight(j), 0) >= GROUP_RECORDS)) {
        clearTimeout(q.waiting);
        q.waiting = undefined;
        setImmediate(() => void this.drain(sandboxId, q));
      }
      if (!q.running) {
        q.running = true;
        // Close together, and the last group did not fill up by itself (past saturation every
        // turn carries enough requests: waiting would only add latency).
        const pace = this.pace.get(sandboxId);
        if (this.groupWaitMs > 0 && pace && pace.size < GROUP_FULL_REQUESTS && performance.now() - pace.at < this.busyGapMs) {
          q.waiting = setTimeout(() => {
            q.waiting = undefined;
            void this.drain(sandboxId, q);
          }, this.groupWaitMs);
        } else {
          // Let every request whose body arrived in this turn of the event loop join the group.
          setImmediate(() => void this.drain(sandboxId, q));
        }
      }
    });
  }

  private async drain(sandboxId: string, q: SandboxQueue): Promise<void> {
    try {
      while (q.jobs.length) {
        let n = 0;
        let size = 0;
        while (n < q.jobs.length && (n === 0 || size + weight(q.jobs[n]!) <= GROUP_RECORDS)) size += weight(q.jobs[n++]!);
        const group = q.jobs.splice(0, n);
        let pace = this.pace.get(sandboxId);
        if (!pace) this.pace.set(sandboxId, (pace = { at: 0, size: 0 }));
        pace.at = performance.now();
        pace.size = group.length;
        try {
          const plans = await this.write(sandboxId, group);
          group.forEach((j, k) => j.resolve(plans[k]!));
        } catch (err) {
          if (group.length === 1) group[0]!.reject(err);
          else {
            for (const j of group) {
              try {
                j.resolve((await this.write(sandboxId, [j]))[0]!);
              } catch (e) {
                j.reject(e);
              }
            }
          }
        }
      }
    } finally {
      q.running = false;
      if (this.queues.get(sandboxId) === q && q.jobs.length === 0) this.queues.delete(sandboxId);
    }
  }

  /** Writes the jobs in one transaction; returns each job's per-record results. */
  private async write(sandboxId: string, jobs: readonly PendingWrite[]): Promise<Array<WritePlan['results']>> {
    const { store, limits } = this.deps;
    const now = this.deps.now?.() ?? Date.now();
    const records = jobs.length === 1 ? jobs[0]!.records : jobs.flatMap((j) => j.records);
    const lake = jobs.length === 1 ? jobs[0]!.lake : jobs.flatMap((j) => j.lake);
    const registries = [...new Set(jobs.map((j) => j.registry))].reverse();
    const namespaceType = registries.length === 1
      ? (ns: string) => registries[0]!.get(ns)?.type ?? 'person'
      : (ns: string) => {
          for (const r of registries) {
            const t = r.get(ns)?.type;
            if (t) return t;
          }
          return 'person' as const;
        };
    const written = await store.ingest(sandboxId, async (tx) => {
      if (lake.length) await tx.appendLake(lake, now);
      if (!records.length) return undefined;
      const identities = records.flatMap((r) => (r.mintedIdentities ? [] : r.prepared.identities));
      const fragKeys: Array<{ datasetId: string; identity: IdentityRef }> = [];
      const eventKeys: Array<{ datasetId: string; eventId: string }> = [];
      for (const r of records) {
        if (r.prepared.kind === 'profile') fragKeys.push({ datasetId: r.datasetId, identity: r.prepared.primary });
        else if (!r.mintedId) eventKeys.push({ datasetId: r.datasetId, eventId: r.prepared.eventId });
      }
      const members = identities.length ? await tx.graphMembersOf(identities) : [];
      const fragments = fragKeys.length ? await tx.fragments(fragKeys) : new Map<string, StoredFragment>();
      const existingEvents = eventKeys.length ? await tx.existingEvents(eventKeys) : new Set<string>();
      const p = planIngest(records, { members, fragments, existingEvents }, {
        now,
        maxGraphSize: limits.maxGraphSize,
        namespaceType,
        newId: timeOrderedUuid,
        lastSeenResolutionMs: LAST_SEEN_RESOLUTION_MS,
      });
      return { plan: p, seqs: await tx.apply(p, now, { last: true }) };
    });
    if (written) {
      const { events, fragments, createdGraphs, newIdentities } = written.plan;
      if (events.length) {
        const created = new Map<string, IdentityRef[]>(createdGraphs.map((g) => [g, []]));
        for (const f of fragments) created.delete(f.graphId);
        for (const i of newIdentities) created.get(i.graphId)?.push({ ns: i.ns, id: i.id });
        for (const fn of this.storedListeners) fn(sandboxId, events, created);
      }
      this.deps.feed.committed(sandboxId, written.plan.changes, written.seqs, now);
    }
    const plan = written?.plan;
    const out: Array<WritePlan['results']> = [];
    let at = 0;
    for (const j of jobs) {
      out.push(plan ? plan.results.slice(at, at + j.records.length) : []);
      at += j.records.length;
    }
    return out;
  }
}

