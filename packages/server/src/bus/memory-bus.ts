/** The in-process bus adapter: each group handles its messages one at a time, in publish order. */
import type { Logger } from 'pino';
import { subjectMatches, type Bus, type BusHandler, type BusMessage } from './port.js';

interface Group {
  pattern: string;
  handler: BusHandler;
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
    this.groups.set(name, { pattern, handler: handler as BusHandler, queue: [], running: undefined });
    return () => this.groups.delete(name);
  }

  private async pump(g: Group): Promise<void> {
    while (g.queue.length > 0) {
      const msg = g.queue.shift()!;
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        try {
          await g.handler(msg);
          break;
        } catch (err) {
          this.log.error({ err, subject: msg.subject, key: msg.key, attempt }, 'bus handler failed');
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
