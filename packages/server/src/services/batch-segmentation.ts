/**
 * Batch segmentation: a job that evaluates the batch audiences (or all of them) for every
 * profile of a sandbox, then records each audience's size. Runs on demand and daily at the
 * configured UTC time.
 *
 * Data path: the profile snapshots are first brought up to date from the change log (see
 * batch-snapshots.ts), then read in profile id order, pages of PAGE profiles with their current
 * memberships, as a few large JSON texts per page (decoded where they are evaluated); every
 * selected audience is evaluated per profile (one context per merge policy; batch-evaluate.ts),
 * and a page's writes go to the store in one transaction of set-based statements (entered and
 * left memberships with their events, realized → existing confirmations as one UPDATE over the
 * page's profiles, re-evaluations); the events are published on the bus, as the streaming
 * engine does. Large runs decode and evaluate pages on worker threads (one per core besides
 * this thread's, up to 2; batch-worker.ts) while this thread reads the next pages and writes
 * the results, in page order. Sizes are counted in the pass.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BatchMembershipPage, JobRow, Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Bus } from '../bus/port.js';
import type { SegmentationConfig } from '../config.js';
import type { AudienceService } from './audiences.js';
import { batchTargets, evaluatePage, REALIZED, type PageInput, type PageResult } from './batch-evaluate.js';
import { refreshSnapshots, type SnapshotRefresh } from './batch-snapshots.js';
import type { BatchWorkerInit, BatchWorkerRequest, BatchWorkerResponse } from './batch-worker.js';
import type { Jobs } from './jobs.js';
import { membershipSubject, type EvaluationReport, type SegmentationEngine } from './segmentation.js';

const PAGE = 2_000;
/** Profiles per text of a page: large enough that V8 keeps the texts out of its young generation. */
const CHUNK = 100;
const MAX_REPORTED_ERRORS = 100;
/** Below this many profiles a run evaluates on the job's thread (starting workers costs more). */
const WORKER_MIN_PROFILES = 20_000;

/**
 * Starts a worker on batch-worker.js; from TypeScript sources (development, tests) the worker
 * registers tsx first, since loader hooks of the parent thread do not reach worker threads.
 */
function startWorker(init: BatchWorkerInit): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./batch-worker.js', import.meta.url), { workerData: init });
  const entry = new URL('./batch-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: init });
}

/** Evaluates pages on worker threads, several pages in flight, answers in request order. */
class WorkerPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, { resolve: (r: PageResult) => void; reject: (e: Error) => void }>();
  private seq = 0;
  /** Set once a worker failed: later pages are refused rather than left waiting on it. */
  private failed: Error | undefined;

  constructor(count: number, init: BatchWorkerInit) {
    this.workers = Array.from({ length: count }, () => {
      const w = startWorker(init);
      w.on('message', (m: BatchWorkerResponse) => {
        const p = this.pending.get(m.seq);
        if (!p) return;
        this.pending.delete(m.seq);
        if ('error' in m) p.reject(new Error(`batch worker failed: ${m.error}`));
        else p.resolve(m.result);
      });
      w.on('error', (err) => this.failAll(err));
      w.on('exit', (code) => {
        if (code !== 0) this.failAll(new Error(`batch worker exited with code ${code}`));
      });
      return w;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  evaluate(page: PageInput): Promise<PageResult> {
    if (this.failed) return Promise.reject(this.failed);
    const seq = ++this.seq;
    const req: BatchWorkerRequest = { seq, ids: page.ids, snapshots: page.snapshots, memberships: page.memberships };
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.workers[seq % this.workers.length]!.postMessage(req);
    });
  }

  private failAll(err: Error): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.failed ??= new Error('batch workers closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Runs and schedules batch segmentation jobs. */
export class BatchSegmentation {
  private timer: NodeJS.Timeout | undefined;
  private lastDailyRun = '';

  constructor(
    private readonly deps: {
      store: Store;
      bus: Bus;
      jobs: Jobs;
      engine: SegmentationEngine;
      audiences: AudienceService;
      config: SegmentationConfig;
      log: Logger;
      now?: () => number;
      /** Worker threads evaluating pages (default: one per core besides the job's, at least 1, up to 2, for runs of 20,000+ profiles; 0: none). */
      workers?: number;
      /** Smallest run that uses the workers (default 20,000 profiles). */
      workerMinProfiles?: number;
    },
  ) {}

  /** Starts a batch job; `all` evaluates every audience, otherwise the batch ones only. */
  async run(sandboxId: string, opts: { all?: boolean; audienceIds?: string[] | undefined } = {}): Promise<JobRow> {
    const { store, jobs, audiences, config, log } = this.deps;
    const total = await store.countProfiles(sandboxId);
    return jobs.start(sandboxId, 'segmentation-batch', { total, processed: 0, realized: 0, exited: 0, errors: [] }, async (update) => {
      const compiled = await audiences.compiledAll(sandboxId);
      // Batch audiences (or the named ones), plus every audience that depends on them through
      // inSegment, so dependants see the new memberships in the same pass.
      const chosen = new Set(
        opts.all ? compiled.map((c) => c.row.id) : opts.audienceIds ?? compiled.filter((c) => c.row.method === 'batch').map((c) => c.row.id),
      );
      for (const c of compiled) if (c.row.dependsOn.some((d) => chosen.has(d))) chosen.add(c.row.id); // compiled is in dependency order
      const selected = compiled.filter((c) => chosen.has(c.row.id));
      const totals: EvaluationReport = { profiles: 0, evaluations: 0, realized: 0, exited: 0, errors: [] };
      const now = this.now();
      const since = now - config.eventRetentionMs;
      const enabled = new Set((await store.listDatasets(sandboxId)).filter((d) => d.profileEnabled).map((d) => d.id));
      // This thread is busy too (reading, writing, publishing): on 2 cores a second worker only
      // oversubscribes them (measured: more CPU per run, longer runs).
      const workers = this.deps.workers ?? Math.min(2, Math.max(1, availableParallelism() - 1));
      // Started before the snapshot refresh: their start (loading modules, compiling the
      // audiences) overlaps it.
      const pool = selected.length && workers > 0 && total >= (this.deps.workerMinProfiles ?? WORKER_MIN_PROFILES)
        ? new WorkerPool(workers, {
            audiences: selected.map((c) => ({ id: c.row.id, query: c.row.query, mergePolicy: c.row.mergePolicy })),
            schemas: await audiences.schemas(sandboxId), enabled: [...enabled], now, eventsSince: since, maxErrors: MAX_REPORTED_ERRORS,
          })
        : undefined;
      let snapshot: SnapshotRefresh | undefined;
      const sizeOf = new Map<string, number>(selected.map((c) => [c.row.id, 0]));
      const audienceIds = selected.map((c) => c.row.id);
      const apply = async (page: PageInput, r: PageResult): Promise<void> => {
        totals.profiles += page.ids.length;
        totals.evaluations += r.evaluations;
        totals.realized += r.realized;
        totals.exited += r.exited;
        for (const e of r.errors) {
          if (totals.errors.length < MAX_REPORTED_ERRORS) totals.errors.push(e);
          log.warn({ sandboxId, profileId: e.profileId, audienceId: e.audienceId, message: e.message }, 'audience evaluation failed for a profile');
        }
        selected.forEach((c, i) => sizeOf.set(c.row.id, sizeOf.get(c.row.id)! + r.sizes[i]!));
        await this.writePage(sandboxId, page, audienceIds, r, now);
        await update({ processed: totals.profiles, realized: totals.realized, exited: totals.exited, errors: totals.errors, snapshot });
      };
      let after: string | undefined;
      let last = false;
      const read = async (): Promise<PageInput | undefined> => {
        if (last) return undefined;
        const chunks = await store.scanBatchProfiles(sandboxId, after, PAGE, CHUNK);
        const page: PageInput = { ids: chunks.flatMap((c) => c.profileIds), snapshots: chunks.map((c) => c.snapshots), memberships: chunks.map((c) => c.memberships) };
        last = page.ids.length < PAGE;
        if (!page.ids.length) return undefined;
        after = chunks.at(-1)!.last;
        return page;
      };
      try {
        snapshot = await refreshSnapshots(store, sandboxId, since);
        if (pool) {
          // Pages in flight, two per worker plus one being read, so a worker has its next page
          // queued while this thread is busy writing; results applied in page order.
          const inFlight: Array<{ page: PageInput; result: Promise<PageResult> }> = [];
          for (;;) {
            while (inFlight.length <= 2 * pool.size) {
              const page = await read();
              if (!page) break;
              const result = pool.evaluate(page);
              result.catch(() => undefined); // awaited below, in order
              inFlight.push({ page, result });
            }
            const head = inFlight.shift();
            if (!head) break;
            await apply(head.page, await head.result);
          }
        } else if (selected.length) {
          const targets = batchTargets(selected.map((c) => ({ id: c.row.id, compiled: c.compiled, mergePolicy: c.row.mergePolicy })));
          for (let page = await read(); page; page = await read()) {
            await apply(page, evaluatePage(page, targets, enabled, now, since, MAX_REPORTED_ERRORS));
          }
        }
      } finally {
        await pool?.close();
      }
      // Sizes as counted in the pass: members (realized or existing) among the sandbox's profiles.
      const at = this.now();
      const sizes: Record<string, number> = {};
      for (const c of selected) {
        sizes[c.row.id] = sizeOf.get(c.row.id)!;
        await store.addAudienceSize(sandboxId, c.row.id, { at, size: sizes[c.row.id]!, source: 'batch' });
      }
      return { processed: totals.profiles, evaluations: totals.evaluations, realized: totals.realized, exited: totals.exited, errors: totals.errors, sizes, snapshot };
    });
  }

  /**
   * Writes a page (changes with their events, confirmations of the profiles evaluated except the
   * failed pairs, re-evaluations) in one store call, then publishes its events in order.
   */
  private async writePage(sandboxId: string, page: PageInput, audienceIds: readonly string[], r: PageResult, now: number): Promise<void> {
    const { store, bus } = this.deps;
    const { ids } = page;
    const changes: Array<BatchMembershipPage['changes'][number]> = new Array(r.changes.length / 3);
    for (let j = 0, c = r.changes; j < changes.length; j++) {
      changes[j] = { profileId: ids[c[3 * j]!]!, audienceId: audienceIds[c[3 * j + 1]!]!, status: c[3 * j + 2] === REALIZED ? 'realized' : 'exited' };
    }
    const profileIds: string[] = [];
    for (let i = 0; i < ids.length; i++) if (r.evaluated[i]) profileIds.push(ids[i]!);
    const unconfirmed: Array<{ profileId: string; audienceId: string }> = [];
    for (let j = 0; j < r.failed.length; j += 2) unconfirmed.push({ profileId: ids[r.failed[j]!]!, audienceId: audienceIds[r.failed[j + 1]!]! });
    const schedule: Array<{ profileId: string; dueAt: number }> = [];
    for (let j = 0; j < r.schedule.length; j += 2) schedule.push({ profileId: ids[r.schedule[j]!]!, dueAt: r.schedule[j + 1]! });
    const events = await store.writeBatchMemberships(sandboxId, { changes, confirm: { profileIds, audienceIds, unconfirmed }, schedule }, now);
    // Published together: the in-process bus queues them in call order.
    const subject = membershipSubject(sandboxId);
    await Promise.all(events.map((e) => bus.publish(subject, e.profileId, e)));
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Starts the daily schedule (checked every minute). */
  startSchedule(): void {
    if (!this.deps.config.batchTime) return;
    this.timer = setInterval(() => void this.maybeRunDaily(), 60_000);
    this.timer.unref();
  }

  stopSchedule(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Runs the daily batch for every sandbox once the configured time has passed today. */
  async maybeRunDaily(): Promise<void> {
    const now = new Date(this.deps.now?.() ?? Date.now());
    const today = now.toISOString().slice(0, 10);
    const hhmm = now.toISOString().slice(11, 16);
    if (this.lastDailyRun === today || hhmm < this.deps.config.batchTime) return;
    this.lastDailyRun = today;
    try {
      for (const s of await this.deps.store.listSandboxes()) {
        if ((await this.deps.store.listAudiences(s.id)).some((a) => a.method === 'batch')) await this.run(s.id);
      }
    } catch (err) {
      this.deps.log.error({ err }, 'daily batch segmentation could not start');
    }
  }
}
