/** The in-process bus adapter: each group handles its messages one at a time, in publish order. */
import type { Logger } from 'pino';
import { subjectMatches, type Bus, type BusHandler, type BusMessage } from './port.js';

interface Group {
  pattern: string;
  /** Messages handed over per call (1 for plain subscriptions). */
  max: number;
  handler: (msgs: BusMessage[]) => Promise<void>;
  queue: BusMessage[];
  /** Index of the first unhandled message in `queue` (taken messages are dropped in bulk, not one by one). */
  head: number;
  running: Promise<void> | undefined;
}

const MAX_ATTEMPTS = 5;
/** Subjects whose matching groups are remembered; past this the memo starts over. */
const MAX_MEMO_SUBJECTS = 10_000;

/** In-process bus. */
export class MemoryBus implements Bus {
  private readonly groups = new Map<string, Group>();
  /** The groups whose pattern matches a subject, per subject seen (cleared when the groups change). */
  private readonly matching = new Map<string, Group[]>();

  constructor(private readonly log: Logger) {}

  async publish(subject: string, key: string, payload: unknown): Promise<void> {
    for (const g of this.groupsFor(subject)) {
      g.queue.push({ subject, key, payload });
      g.running ??= this.pump(g);
    }
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
    return this.setGroup(`${group}\u0000${pattern}`, { pattern, max: 1, handler: async (msgs) => one(msgs[0]!), queue: [], head: 0, running: undefined });
  }

  subscribeBatch<T>(pattern: string, group: string, max: number, handler: (msgs: BusMessage<T>[]) => Promise<void>): () => void {
    return this.setGroup(`${group}\u0000${pattern}`, {
      pattern, max: Math.max(1, max), handler: handler as (msgs: BusMessage[]) => Promise<void>, queue: [], head: 0, running: undefined,
    });
  }

  private async pump(g: Group): Promise<void> {
    while (g.head < g.queue.length) {
      const end = Math.min(g.queue.length, g.head + g.max);
      const msgs = g.queue.slice(g.head, end);
      g.head = end;
      // Shifting the queue per message made a long queue quadratic; drop taken messages in bulk.
      if (g.head >= 1024 && g.head * 2 >= g.queue.length) {
        g.queue.splice(0, g.head);
        g.head = 0;
      }
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        try {
          await g.handler(msgs);
          break;
        } catch (err) {
          this.log.error({ err, subject: msgs[0]!.subject, key: msgs[0]!.key, count: msgs.length, attempt }, 'bus handler failed');
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
