/**
 * The change feed: every profile change is written to the store's change log inside the
 * ingestion transaction, then published here on the bus (`changes.<sandbox>`, keyed by profile
 * id) in log order, exactly once per cursor position. A crash between commit and publish loses
 * nothing: the cursor is durable and publishing resumes from it.
 */
import type { ProfileChange } from '@audient/core';
import type { Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Bus } from '../bus/port.js';
import type { Metrics } from '../metrics.js';

const CURSOR = 'change-feed';
const PAGE = 1000;

/** Published payload of a change. */
export interface ChangeMessage extends ProfileChange {
  seq: number;
  sandboxId: string;
  at: number;
}

/** Subject of a sandbox's changes. */
export const changeSubject = (sandboxId: string): string => `changes.${sandboxId}`;

/** Drains the change log onto the bus. */
export class ChangeFeed {
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly deps: { store: Store; bus: Bus; log: Logger; metrics: Metrics }) {}

  /** Publishes whatever was written since the last drain (call after each commit). */
  poke(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drainLoop().finally(() => {
      this.draining = undefined;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  /** Resolves when everything written so far has been published. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
  }

  private async drainLoop(): Promise<void> {
    const { store, bus, log, metrics } = this.deps;
    try {
      let cursor = await store.getCursor(CURSOR);
      for (;;) {
        const rows = await store.readChanges(cursor, PAGE);
        if (rows.length === 0) break;
        for (const row of rows) {
          const msg: ChangeMessage = { ...row.change, seq: row.seq, sandboxId: row.sandboxId, at: row.at };
          await bus.publish(changeSubject(row.sandboxId), row.change.profileId, msg);
          cursor = row.seq;
        }
        await store.setCursor(CURSOR, cursor);
        metrics.changesPublished.inc(rows.length);
        if (rows.length < PAGE) break;
      }
      metrics.changeFeedLag.set(0);
    } catch (err) {
      log.error({ err }, 'change feed publish failed; will resume from the durable cursor');
    }
  }
}
