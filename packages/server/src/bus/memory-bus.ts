/** The in-process bus adapter: each group handles its messages one at a time, in publish order. */
import type { Logger } from 'pino';
import { subjectMatches, type Bus, type BusHandler, type BusMessage } from './port.js';

interface Group {
  pattern: string;
  /** Messages handed over per call (1 for plain subscriptions). */
  max: number;
  handler: (msgs: BusMessage[]) => Promise<void>;
  queue: BusMessage[];
  running: Promise<void> | undefined;
}

const MAX_ATTEMPTS = 5;

/** In-process bus. */
export class MemoryBus implements Bus {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly log: Logger) {}

  async publish(subject: string, key: string, payload: unknown): Promise<void> {
    for (const g of this.groups.values()) {
      if (!subjectMatches(g.pattern, subject)) continue;
      g.queue.push({ subject, key, payload });
      g.running ??= this.pump(g);
    }
  }

  subscribe<T>(pattern: string, group: string, handler: BusHandler<T>): () => void {
    const name = `${group}\u0000${pattern}`;
    const one = handler as BusHandler;
    this.groups.set(name, { pattern, max: 1, handler: async (msgs) => one(msgs[0]!), queue: [], running: undefined });
    return () => this.groups.delete(name);
  }

  subscribeBatch<T>(pattern: string, group: string, max: number, handler: (msgs: BusMessage<T>[]) => Promise<void>): () => void {
    const name = `${group}\u0000${pattern}`;
    this.groups.set(name, { pattern, max: Math.max(1, max), handler: handler as (msgs: BusMessage[]) => Promise<void>, queue: [], running: undefined });
    return () => this.groups.delete(name);
  }

  private async pump(g: Group): Promise<void> {
    while (g.queue.length > 0) {
      const msgs = g.queue.splice(0, g.max);
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
  }
}
