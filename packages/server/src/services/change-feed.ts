/**
 * The change feed: every profile change is written to the store's change log inside the
 * ingestion transaction, then published here on the bus (`changes.<sandbox>`, keyed by profile
 * id) in log order, once per cursor position. A crash between commit and publish loses
 * nothing: the cursor is durable and publishing resumes from it (it is written behind the feed,
 * so a crash may publish the last pages again: subscribers take changes at least once).
 *
 * Writers that know what they committed hand it over (`committed`): those changes are published
 * from memory, without reading them back, as long as they continue the cursor without a gap.
 * Anything else (changes written by others, a gap, a restart) is read from the durable log.
 */
import type { ProfileChange } from '@audient/core';
import type { Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Bus } from '../bus/port.js';
import type { Metrics } from '../metrics.js';
import { CursorKeeper } from './cursor-keeper.js';

const CURSOR = 'change-feed';
const PAGE = 1000;
/** Committed changes held for publishing from memory; past this the log is read instead. */
const MAX_PENDING = 20_000;

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
  /** Committed, not yet published changes handed over by writers, in seq order. */
  private pending: ChangeMessage[] = [];
  /** The cursor: the last seq published (read from the store at start and after a failure). */
  private cursor: number | undefined;
  /** Writes the cursor behind the feed (see cursor-keeper.ts). */
  private readonly durable: CursorKeeper;

  constructor(private readonly deps: { store: Store; bus: Bus; log: Logger; metrics: Metrics }) {
    this.durable = new CursorKeeper(deps.store, CURSOR, deps.log);
  }

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

  /**
   * Publishes changes that were just committed, with the seqs the log gave them (in order).
   * Call only after the commit: they are published as they are, without reading the log. The
   * feed takes the change objects over (they become the messages), so the caller must not
   * reuse them.
   */
  committed(sandboxId: string, changes: readonly ProfileChange[], seqs: readonly number[], at: number): void {
    if (this.stopped) return;
    if (this.pending.length + changes.length > MAX_PENDING) this.pending = [];
    else {
      for (let i = 0; i < changes.length; i++) {
        const msg = changes[i] as ChangeMessage;
        msg.seq = Number(seqs[i]);
        msg.sandboxId = sandboxId;
        msg.at = at;
        this.pending.push(msg);
      }
    }
    this.poke();
  }

  /** Resolves when everything written so far has been published. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
    await this.cursorWritten();
  }

  /** Resolves once the cursor's latest position is durable (it is written behind the feed). */
  async cursorWritten(): Promise<void> {
    await this.durable.settled();
  }

  private async drainLoop(): Promise<void> {
    const { store, bus, log, metrics } = this.deps;
    try {
      let cursor = this.cursor ?? (this.cursor = await store.getCursor(CURSOR));
      for (;;) {
        // Handed-over changes that continue the cursor go out from memory; on a gap, the log.
        let from = 0;
        while (from < this.pending.length && this.pending[from]!.seq <= cursor) from++;
        let msgs: ChangeMessage[];
        let more: boolean;
        if (from < this.pending.length && this.pending[from]!.seq === cursor + 1) {
          let to = from + 1;
          while (to < this.pending.length && to - from < PAGE && this.pending[to]!.seq === this.pending[to - 1]!.seq + 1) to++;
          msgs = this.pending.slice(from, to);
          this.pending = this.pending.slice(to);
          more = this.pending.length > 0;
        } else {
          this.pending = this.pending.slice(from);
          const rows = await store.readChanges(cursor, PAGE);
          msgs = rows.map((row) => Object.assign(row.change, { seq: row.seq, sandboxId: row.sandboxId, at: row.at }));
          more = rows.length === PAGE || this.pending.length > 0;
        }
        if (msgs.length === 0) break;
        // Published in order, one page at a time, without waiting for each message in turn (a
        // wait per message let ingestion outrun the feed until its backlog spilled to the log).
        // The cursor moves only when the whole page is out, so a failure republishes the page;
        // its durable copy is written behind (a crash republishes from there).
        await Promise.all(msgs.map((msg) => bus.publish(changeSubject(msg.sandboxId), msg.profileId, msg)));
        cursor = msgs[msgs.length - 1]!.seq;
        this.durable.set(cursor);
        this.cursor = cursor;
        metrics.changesPublished.inc(msgs.length);
        if (!more) break;
      }
      metrics.changeFeedLag.set(0);
    } catch (err) {
      // Re-read the durable cursor next time (once written): the log is the truth after a failure.
      await this.durable.settled();
      this.cursor = undefined;
      log.error({ err }, 'change feed publish failed; will resume from the durable cursor');
    }
  }
}
