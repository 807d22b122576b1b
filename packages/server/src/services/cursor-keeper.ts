/**
 * A durable cursor written behind its reader. A consumer of a log (the change feed, activation)
 * moves its cursor in memory as it goes and hands each position here; the position is written
 * to the store in the background, at most once per `everyMs`, the latest position winning. The
 * consumer never waits for a commit per page, and the store is not asked for one per page (at
 * 2,000 edge requests a second, cursor-only commits were a fifth of the embedded store's
 * commits). A crash costs what it cost before, for longer: the pages since the last written
 * position (at most `everyMs` of them) are read again from the log; consumers take them at least
 * once, idempotent by seq.
 */
import type { Store } from '@audient/storage';
import type { Logger } from 'pino';

/** How often a cursor is written at most, ms: what a crash may publish or decide again. */
export const CURSOR_WRITE_EVERY_MS = 250;

export class CursorKeeper {
  /** The latest position handed over, and the latest written. */
  private latest: number | undefined;
  private written: number | undefined;
  private writing: Promise<void> | undefined;
  /** Ends the pause between two writes at once, and skips the next (settled()). */
  private wake: (() => void) | undefined;
  private hurry = 0;

  constructor(
    private readonly store: Store,
    private readonly name: string,
    private readonly log: Logger,
    private readonly everyMs = CURSOR_WRITE_EVERY_MS,
  ) {}

  /** Moves the durable cursor to `seq` (in the background). */
  set(seq: number): void {
    this.latest = seq;
    if (!this.writing && seq !== this.written) this.writing = this.write();
  }

  /** Resolves once the latest position is written (or its write failed, which is logged), without waiting out a pause. */
  async settled(): Promise<void> {
    this.hurry++;
    try {
      while (this.writing) {
        this.wake?.();
        await this.writing;
      }
    } finally {
      this.hurry--;
    }
  }

  private async write(): Promise<void> {
    for (;;) {
      const seq = this.latest;
      // Checked and cleared in one step: a position handed over after this starts a new write.
      if (seq === undefined || seq === this.written) {
        this.writing = undefined;
        return;
      }
      try {
        await this.store.setCursor(this.name, seq);
        this.written = seq;
      } catch (err) {
        // The next position handed over writes again; until then a restart reads from here.
        this.log.warn({ err, cursor: this.name, seq }, 'cursor not written; it is written with the next position');
        this.writing = undefined;
        return;
      }
      // Positions handed over during the pause are written together after it. The timer does
      // not hold the process: positions not yet written are read again after a restart.
      if (this.hurry) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.everyMs);
        timer.unref();
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
