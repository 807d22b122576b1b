/**
 * Jobs: long work (file ingestion, privacy deletes) runs in the background with a durable row
 * whose status and state (counts, progress, error) can be read at any time.
 */
import { AudientError } from '@audient/core';
import type { JobRow, Store } from '@audient/storage';
import type { Logger } from 'pino';
import { sortableId } from '../ids.js';
import type { Metrics } from '../metrics.js';

/** Lets a running job publish its progress. */
export type JobUpdate = (state: Record<string, unknown>) => Promise<void>;

/** Starts jobs and reads them back. */
export class Jobs {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly deps: { store: Store; log: Logger; metrics: Metrics }) {}

  /** Creates a job and runs `work` in the background; returns the queued row at once. */
  async start(
    sandboxId: string,
    kind: string,
    initial: Record<string, unknown>,
    work: (update: JobUpdate, jobId: string) => Promise<Record<string, unknown>>,
  ): Promise<JobRow> {
    const at = new Date().toISOString();
    const job: JobRow = { id: sortableId('job'), sandboxId, kind, status: 'queued', state: initial, createdAt: at, updatedAt: at };
    await this.deps.store.putJob(job);
    let state = initial;
    const save = async (status: JobRow['status'], patch: Record<string, unknown>): Promise<void> => {
      state = { ...state, ...patch };
      await this.deps.store.putJob({ ...job, status, state, updatedAt: new Date().toISOString() });
    };
    const run = (async () => {
      await save('running', {});
      try {
        const final = await work((patch) => save('running', patch), job.id);
        await save('succeeded', final);
        this.deps.metrics.jobsFinished.inc({ kind, status: 'succeeded' });
      } catch (err) {
        this.deps.log.error({ err, jobId: job.id, sandboxId, kind }, 'job failed');
        const message = err instanceof Error ? err.message : String(err);
        await save('failed', { error: err instanceof AudientError ? err.toJSON().error : { code: 'INTERNAL', message } }).catch(
          (e: unknown) => this.deps.log.error({ err: e }, 'could not record job failure'),
        );
        this.deps.metrics.jobsFinished.inc({ kind, status: 'failed' });
      }
    })();
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
    return job;
  }

  async get(sandboxId: string, id: string): Promise<JobRow> {
    const job = await this.deps.store.getJob(sandboxId, id);
    if (!job) throw new AudientError('NOT_FOUND', `no job ${id} in this sandbox`);
    return job;
  }

  /** Waits for every job started so far (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }
}
