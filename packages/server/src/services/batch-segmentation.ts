/**
 * Batch segmentation: a job that walks every profile of a sandbox in pages and evaluates the
 * batch audiences (or all of them), then records each audience's size. Runs on demand and
 * daily at the configured UTC time.
 */
import type { JobRow, Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { SegmentationConfig } from '../config.js';
import type { AudienceService } from './audiences.js';
import type { Jobs } from './jobs.js';
import { ALL_METHODS, type EvaluationReport, type SegmentationEngine } from './segmentation.js';

const PAGE = 500;

/** Runs and schedules batch segmentation jobs. */
export class BatchSegmentation {
  private timer: NodeJS.Timeout | undefined;
  private lastDailyRun = '';

  constructor(
    private readonly deps: {
      store: Store;
      jobs: Jobs;
      engine: SegmentationEngine;
      audiences: AudienceService;
      config: SegmentationConfig;
      log: Logger;
      now?: () => number;
    },
  ) {}

  /** Starts a batch job; `all` evaluates every audience, otherwise the batch ones only. */
  async run(sandboxId: string, opts: { all?: boolean; audienceIds?: string[] | undefined } = {}): Promise<JobRow> {
    const { store, jobs, engine, audiences } = this.deps;
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
      let after: string | undefined;
      for (;;) {
        const ids = await store.listProfileIds(sandboxId, after, PAGE);
        if (!ids.length) break;
        const r = await engine.evaluate(sandboxId, ids, { methods: ALL_METHODS, audiences: selected });
        totals.profiles += ids.length;
        totals.evaluations += r.evaluations;
        totals.realized += r.realized;
        totals.exited += r.exited;
        totals.errors.push(...r.errors.slice(0, Math.max(0, 100 - totals.errors.length)));
        after = ids.at(-1);
        await update({ processed: totals.profiles, realized: totals.realized, exited: totals.exited, errors: totals.errors });
        if (ids.length < PAGE) break;
      }
      const at = this.deps.now?.() ?? Date.now();
      const sizes: Record<string, number> = {};
      for (const c of selected) {
        const counts = await store.countMembers(sandboxId, c.row.id);
        sizes[c.row.id] = counts.realized + counts.existing;
        await store.addAudienceSize(sandboxId, c.row.id, { at, size: sizes[c.row.id]!, source: 'batch' });
      }
      return { processed: totals.profiles, evaluations: totals.evaluations, realized: totals.realized, exited: totals.exited, errors: totals.errors, sizes };
    });
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
