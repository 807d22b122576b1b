/**
 * The bus port: subjects, keyed messages, consumer groups. In-process now; shaped for NATS
 * JetStream (subjects with `*`/`>` wildcards, one durable consumer per group, order per key).
 */

/** A delivered message. */
export interface BusMessage<T = unknown> {
  subject: string;
  /** Ordering key (a profile id): messages of one key are handled in publish order. */
  key: string;
  payload: T;
}

/** A message handler; a rejection is logged and the message is retried by the adapter. */
export type BusHandler<T = unknown> = (msg: BusMessage<T>) => Promise<void>;

/** Publish and subscribe. */
export interface Bus {
  publish(subject: string, key: string, payload: unknown): Promise<void>;
  /** Each group receives every matching message once; `pattern` uses NATS wildcards. */
  subscribe<T>(pattern: string, group: string, handler: BusHandler<T>): () => void;
  /**
   * Like subscribe, but the handler receives every message queued for the group at once (up to
   * `max`), in publish order — for consumers that do better work in batches.
   */
  subscribeBatch<T>(pattern: string, group: string, max: number, handler: (msgs: BusMessage<T>[]) => Promise<void>): () => void;
  /** Resolves when every message published so far has been handled. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** NATS-style subject matching: `*` one token, `>` the rest. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
