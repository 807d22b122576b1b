/** The in-process bus adapter: each group handles its messages one at a time, in publish order. */
import type { Logger } from 'pino';
import { subjectMatches, type Bus, type BusHandler, type BusMessage } from './port.js';

interface Group {
  pattern: string;
  /** Messages handed over per call (1 for plain subscriptions). */
  max: number;
  handler: (msgs: BusMessage[]) => Promise<void>;
  /** A plain subscription's handler, called with each message as it is (no array, no wrapper). */
  one?: BusHandler;
  queue: BusMessage[];
  /** Index of the first unhandled message in `queue` (taken messages are dropped in bulk, not one by one). */
  head: number;
  running: Promise<void> | undefined;
}

const MAX_ATTEMPTS = 5;
const RESOLVED: Promise<void> = Promise.resolve();
/** Subjects whose matching groups are remembered; past this the memo starts over. */
const MAX_MEMO_SUBJECTS = 10_000;

/** In-process bus. */
export class MemoryBus implements Bus {
  private readonly groups = new Map<string, Group>();
  /** The groups whose pattern matches a subject, per subject seen (cleared when the groups change). */
  private readonly matching = new Map<string, Group[]>();

  constructor(private readonly log: Logger) {}

  publish(subject: string, key: string, payload: unknown): Promise<void> {
    try {
      const groups = this.groupsFor(subject);
      if (!groups.length) return RESOLVED;
      // One message object for every group (handlers only read it).
      const msg: BusMessage = { subject, key, payload };
      for (const g of groups) {
        g.queue.push(msg);
        g.running ??= this.pump(g);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    // Queued, nothing to wait for: one shared settled promise rather than one per message
    // (publishers hand over whole pages and commits, a promise each was garbage to collect).
    return RESOLVED;
  }

  private groupsFor(subject: string): Group[] {
    let list = this.matching.get(subject);
    if (!list) {
      list = [...this.groups.values()].filter((g) => subjectMatches(g.pattern, subject));
      if (this.matching.size >= MAX_MEMO_SUBJECTS) this.matching.clear();
      this.matching.set(subject, list);
    }
    return list;
  }

  private setGroup(name: string, g: Group): () => void {
    this.groups.set(name, g);
    this.matching.clear();
    return () => {
      this.groups.delete(name);
      this.matching.clear();
    };
  }

  subscribe<T>(pattern: string, group: string, handler: BusHandler<T>): () => void {
    const one = handler as BusHandler;
    return this.setGroup(`${group}\u0000${pattern}`, { pattern, max: 1, handler: async (msgs) => one(msgs[0]!), one, queue: [], head: 0, running: undefined });
  }

  subscribeBatch<T>(pattern: string, group: string, max: number, handler: (msgs: BusMessage<T>[]) => Promise<void>): () => void {
    return this.setGroup(`${group}\u0000${pattern}`, {
      pattern, max: Math.max(1, max), handler: handler as (msgs: BusMessage[]) => Promise<void>, queue: [], head: 0, running: undefined,
    });
  }

  private async pump(g: Group): Promise<void> {
    // Started by the first publish of a burst: one microtask first, so that the messages a
    // publisher hands over in the same synchronous run (a page of changes, a commit's membership
    // events) reach a batch subscriber together rather than the first one alone, then the rest.
    await undefined;
    while (g.head < g.queue.length) {
      const end = Math.min(g.queue.length, g.head + g.max);
      const first = g.queue[g.head]!;
      let msgs: BusMessage[] | undefined;
      if (g.one) g.head = end;
      else if (g.head === 0 && end === g.queue.length) {
        // The whole queue (the common case): handed over as it is, a new queue takes its place.
        msgs = g.queue;
        g.queue = [];
      } else {
        msgs = g.queue.slice(g.head, end);
        g.head = end;
      }
      // Shifting the queue per message made a long queue quadratic; drop taken messages in bulk.
      if (g.head >= 1024 && g.head * 2 >= g.queue.length) {
        g.queue.splice(0, g.head);
        g.head = 0;
      }
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        try {
          await (msgs ? g.handler(msgs) : g.one!(first));
          break;
        } catch (err) {
          this.log.error({ err, subject: first.subject, key: first.key, count: msgs?.length ?? 1, attempt }, 'bus handler failed');
          if (attempt < MAX_ATTEMPTS) await new Promise((r) => setTimeout(r, 10 * 2 ** attempt));
        }
      }
    }
    g.queue.length = 0;
    g.head = 0;
    g.running = undefined;
  }

  async drain(): Promise<void> {
    for (;;) {
      const running = [...this.groups.values()].map((g) => g.running).filter((r): r is Promise<void> => !!r);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  async close(): Promise<void> {
    await this.drain();
    this.groups.clear();
    this.matching.clear();
  }
}
