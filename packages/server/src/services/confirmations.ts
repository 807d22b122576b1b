/**
 * Membership confirmations (realized → existing), written off the evaluation's path.
 *
 * A confirmation changes nothing an evaluation or an edge answer reads (a member is a member
 * either way), only the status that exports and the API report. Written with the evaluation, a
 * returning visitor's request paid for one row write per audience it had entered on its last
 * visit: when many visitors come back together, that doubled the edge's CPU per request. Here
 * they are queued (the last per membership kept) and written a moment later in batches, one
 * store call per chunk with a turn of the event loop between chunks, and the store applies each
 * only to the entry it names (see Store.confirmMemberships), so one written late never undoes a
 * later exit or re-entry.
 *
 * What may be lost: a confirmation queued when the process stops without `flush` (or that still
 * fails after MAX_ATTEMPTS). The membership then stays `realized` until its next evaluation
 * from the store confirms it again; no entry or exit is lost, as those are written with their
 * evaluation.
 */
import type { MembershipConfirmation, Store } from '@audient/storage';
import type { Counter } from 'prom-client';
import type { Logger } from 'pino';

/** How long a confirmation waits for company before it is written. */
export const CONFIRM_DELAY_MS = 50;
/**
 * Confirmations per store call (one transaction or statement). Each touches a page of its own
 * (random profiles), about 12 µs in place on SQLite, so a call blocks the event loop for about
 * 1 ms: at 3,000 edge requests/s, chunks of 500 gave a p99 of 9.0 / 12.4 ms and chunks of 100
 * 7.9 / 9.0 ms (writing them with the evaluation: 13.9 / 14.6 ms).
 */
export const CONFIRM_CHUNK = 100;
/** Confirmations queued beyond which evaluations wait for them to be written (see `full`). */
export const MAX_QUEUED = 50_000;
/** Tries of a chunk before its confirmations are given up (logged and counted). */
export const MAX_ATTEMPTS = 3;

const keyOf = (c: MembershipConfirmation): string => `${c.profileId}\u0000${c.audienceId}`;

interface Queued extends MembershipConfirmation {
  attempts: number;
}

export class Confirmations {
  /** Per sandbox, per `profileId\0audienceId`: the confirmation to write. */
  private readonly queued = new Map<string, Map<string, Queued>>();
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      store: Pick<Store, 'confirmMemberships'>;
      log: Logger;
      /** Confirmations by outcome: written, stale (the row had changed), dropped (given up). */
      outcomes: Counter<'outcome'>;
      delayMs?: number;
      chunk?: number;
      maxQueued?: number;
    },
  ) {}

  /** Confirmations waiting to be written. */
  get pending(): number {
    return this.size;
  }

  /** Whether the queue is past MAX_QUEUED: the caller should wait for `flush` (a store slower than the evaluations). */
  get full(): boolean {
    return this.size > (this.deps.maxQueued ?? MAX_QUEUED);
  }

  /** Queues confirmations of one sandbox; written within about CONFIRM_DELAY_MS. */
  add(sandboxId: string, list: readonly MembershipConfirmation[]): void {
    if (!list.length) return;
    let q = this.queued.get(sandboxId);
    if (!q) this.queued.set(sandboxId, (q = new Map()));
    for (const c of list) {
      const key = keyOf(c);
      if (!q.has(key)) this.size++;
      q.set(key, { profileId: c.profileId, audienceId: c.audienceId, lastQualificationTime: c.lastQualificationTime, attempts: 0 });
    }
    this.schedule(this.deps.delayMs ?? CONFIRM_DELAY_MS);
  }

  /** Writes everything queued now (each confirmation tried up to MAX_ATTEMPTS times). */
  async flush(): Promise<void> {
    for (;;) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      if (this.writing) await this.writing;
      else if (this.size > 0) this.writing = this.writeQueued();
      else return;
    }
  }

  private schedule(delayMs: number): void {
    if (this.timer || this.writing) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.writing ??= this.writeQueued();
    }, delayMs);
    this.timer.unref();
  }

  /** Chunk by chunk until the queue is empty or a chunk fails (then retried after a back-off). */
  private async writeQueued(): Promise<void> {
    let backoff = 0;
    try {
      while (this.size > 0) {
        const [sandboxId, chunk] = this.take();
        try {
          const changed = await this.deps.store.confirmMemberships(sandboxId, chunk);
          this.deps.outcomes.inc({ outcome: 'written' }, changed);
          if (chunk.length > changed) this.deps.outcomes.inc({ outcome: 'stale' }, chunk.length - changed);
        } catch (err) {
          backoff = this.failed(sandboxId, chunk, err);
          break;
        }
        // Requests waiting meanwhile go first.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.writing = undefined;
    }
    if (this.size > 0) this.schedule(backoff || (this.deps.delayMs ?? CONFIRM_DELAY_MS));
  }

  /** Up to a chunk of one sandbox's confirmations, removed from the queue. */
  private take(): [string, Queued[]] {
    const limit = this.deps.chunk ?? CONFIRM_CHUNK;
    const [sandboxId, q] = this.queued.entries().next().value as [string, Map<string, Queued>];
    const chunk: Queued[] = [];
    for (const [key, c] of q) {
      if (chunk.length === limit) break;
      chunk.push(c);
      q.delete(key);
    }
    if (q.size === 0) this.queued.delete(sandboxId);
    this.size -= chunk.length;
    return [sandboxId, chunk];
  }

  /** Puts a failed chunk back (unless a newer confirmation of the key came) or gives it up; returns the back-off. */
  private failed(sandboxId: string, chunk: readonly Queued[], err: unknown): number {
    let q = this.queued.get(sandboxId);
    if (!q) this.queued.set(sandboxId, (q = new Map()));
    let dropped = 0;
    let most = 0;
    for (const c of chunk) {
      const attempts = c.attempts + 1;
      if (attempts >= MAX_ATTEMPTS) {
        dropped++;
        continue;
      }
      most = Math.max(most, attempts);
      const key = keyOf(c);
      if (q.has(key)) continue;
      q.set(key, { ...c, attempts });
      this.size++;
    }
    if (q.size === 0) this.queued.delete(sandboxId);
    if (dropped) {
      this.deps.outcomes.inc({ outcome: 'dropped' }, dropped);
      this.deps.log.error({ err, sandboxId, confirmations: dropped }, `membership confirmations given up after ${MAX_ATTEMPTS} tries: they stay realized until confirmed again`);
    }
    if (dropped < chunk.length) this.deps.log.warn({ err, sandboxId, confirmations: chunk.length - dropped }, 'membership confirmations failed; retrying');
    return (this.deps.delayMs ?? CONFIRM_DELAY_MS) * 2 ** most;
  }
}
