/**
 * The delivery runtime shared by every destination: leases due exports from the durable outbox,
 * groups them per dataflow (per profile, or micro-batches by the destination's delivery mode),
 * asks the destination for request descriptors, authenticates, sends with a timeout and an
 * Idempotency-Key, classifies the answer per item, and then finishes, retries (exponential
 * backoff with jitter, Retry-After honoured, only 408/429/5xx and network errors) or
 * dead-letters each export. Rate limits per dataflow. Crash-safe: leases expire and rows return.
 */
import { createHash } from 'node:crypto';
import {
  AudientError,
  retryClassForStatus,
  type AuthScheme,
  type ExportRecord,
  type ItemOutcome,
  type RequestDescriptor,
} from '@audient/core';
import type { OutboxRow, Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { hourOf } from './activation.js';
import { TokenCache } from './auth.js';
import { Transport, type HttpAnswer } from './transport.js';
import type { Connections, OpenConnection } from './connections.js';
import type { Dataflow, Dataflows } from './dataflows.js';
import { pushTo } from '../collections.js';

/** Settings of the runtime. */
export interface DeliveryConfig {
  /** Most exports leased by one claim (one statement). */
  claimBatch: number;
  /** How long a leased export is reserved for its worker, ms. */
  leaseMs: number;
  /** Attempts before an export is dead-lettered. */
  maxAttempts: number;
  /** First retry delay, ms (doubles each attempt, with jitter, capped at 10 minutes). */
  baseBackoffMs: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Idle poll interval, ms. */
  pollMs: number;
  /** Request timeout override, ms (0: each destination's own). */
  timeoutMs: number;
}

/** Defaults. */
export const DEFAULT_DELIVERY: DeliveryConfig = {
  claimBatch: 5000,
  leaseMs: 30_000,
  maxAttempts: 8,
  baseBackoffMs: 1000,
  concurrency: 32,
  pollMs: 200,
  timeoutMs: 0,
};

/** The Authorization header a dry run shows instead of a real credential. */
export function authHeadersForDryRun(auth: AuthScheme): Record<string, string> {
  switch (auth.kind) {
    case 'none':
      return {};
    case 'basic':
      return { authorization: 'Basic ••••••' };
    default:
      return { authorization: 'Bearer ••••••' };
  }
}

/** A token bucket per dataflow. */
class RateLimiter {
  private readonly next = new Map<string, number>();

  /** Waits until `key` may send, at most `perSecond` requests a second. */
  async take(key: string, perSecond: number): Promise<void> {
    if (perSecond <= 0) return;
    const now = Date.now();
    const at = Math.max(now, this.next.get(key) ?? now);
    this.next.set(key, at + 1000 / perSecond);
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  }
}

const MAX_BACKOFF_MS = 10 * 60_000;

/**
 * Outcomes wait up to this long to share one outbox write (per-profile delivery finishes a few
 * requests per event-loop turn; one write per turn cost more than the requests). Delivery itself
 * never waits for it: only the rows' release does, and they stay leased (at least once) meanwhile.
 */
const SETTLE_WINDOW_MS = 20;
/** Queued outcomes that are written at once, without waiting for the window to end. */
const SETTLE_NOW = 1000;

/** The lease token a claimed row carries (every row the runtime holds came from a claim). */
function leaseOf(row: OutboxRow): number {
  if (row.lease === undefined) throw new AudientError('INTERNAL', `outbox row ${row.id} has no lease: only claimed rows can be settled`);
  return row.lease;
}

/** One request's worth of leased exports, ready to send. */
interface Chunk {
  flow: Dataflow;
  conn: OpenConnection;
  rows: OutboxRow[];
  /** Until when its lease holds (after that another worker may have taken the rows). */
  leasedUntil: number;
}

type Outcome = ItemOutcome & { retryAfterMs?: number };

/** Counters of the runtime (tests, benchmarks). */
export interface DeliveryStats {
  /** Requests being sent now. */
  inFlight: number;
  /** The most requests in flight at once so far. */
  peakInFlight: number;
  /** Leases taken (claim statements). */
  claims: number;
  /** Outcome flushes to the outbox (each one transaction per kind). */
  settles: number;
}

/**
 * The delivery runtime. A pass keeps `concurrency` requests in flight: it leases exports while
 * few requests are ready (so leasing overlaps sending instead of alternating with it), and writes
 * the outcomes of every chunk finished within a short window in one outbox write. A poke during
 * a pass (exports were just queued) makes it lease again as soon as it has room, so a new export
 * does not wait for the pass's slowest request. Finishing after the answer keeps delivery at
 * least once: a crash before the write leaves the rows leased, they return when the lease
 * expires and are resent with the same Idempotency-Key.
 */
export class DeliveryRuntime {
  readonly tokens: TokenCache;
  private readonly transport: Transport;
  readonly stats: DeliveryStats = { inFlight: 0, peakInFlight: 0, claims: 0, settles: 0 };
  private readonly limiter = new RateLimiter();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** A poke arrived while a pass ran: it leases again (or the next pass starts). */
  private more = false;
  /** Wakes the running pass when a request ends or a poke arrives. */
  private wake: (() => void) | undefined;
  private stopped = false;
  private outcomes: Array<[OutboxRow, Outcome]> = [];
  private flushing: Promise<void> | undefined;
  /** Ends the current settle window early (many outcomes queued, or stopping). */
  private settleNow: (() => void) | undefined;

  constructor(
    private readonly deps: {
      store: Store;
      connections: Connections;
      dataflows: Dataflows;
      log: Logger;
      metrics: Metrics;
      config: DeliveryConfig;
      now: () => number;
    },
  ) {
    this.tokens = new TokenCache(deps.now);
    this.transport = new Transport(deps.config.concurrency);
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.poke(), this.deps.config.pollMs);
    this.timer.unref();
    this.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.running) await this.running;
    await this.flushOutcomes();
    this.transport.close();
  }

  /** Runs a delivery pass now, or has the running one lease again as soon as it has room. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.more = true;
      this.wake?.();
      return;
    }
    this.more = false;
    this.running = this.pass()
      .catch((err: unknown) => this.deps.log.error({ err }, 'delivery pass failed; leases will expire and exports return'))
      .finally(() => {
        this.running = undefined;
        if (this.more) this.poke();
      });
  }

  /** Resolves when no pass is running and every outcome is written (tests). */
  async idle(): Promise<void> {
    while (this.running || this.flushing) {
      if (this.running) await this.running;
      await this.flushOutcomes();
    }
  }

  /**
   * One pass: lease what is due while keeping `concurrency` requests in flight, until none is
   * left. A claim runs beside the requests (not before them), started while fewer than twice
   * `concurrency` chunks are ready, so a slow claim (a PostgreSQL round trip over thousands of
   * rows) overlaps sending instead of stalling it.
   */
  async pass(): Promise<void> {
    const { store, config } = this.deps;
    const ready: Chunk[] = [];
    let active = 0;
    let exhausted = false;
    let claiming: Promise<void> | undefined;
    let failed: { err: unknown } | undefined;
    const ended = (): void => {
      active--;
      this.wake?.();
    };
    const sleep = (): Promise<void> =>
      new Promise<void>((resolve) => {
        this.wake = () => {
          this.wake = undefined;
          resolve();
        };
      });
    const claim = async (): Promise<void> => {
      const at = this.deps.now();
      const rows = await store.claimExports(at, config.claimBatch, config.leaseMs);
      this.stats.claims++;
      if (rows.length < config.claimBatch) exhausted = true;
      if (rows.length) ready.push(...(await this.chunks(rows, at + config.leaseMs)));
    };
    try {
      for (;;) {
        if (failed) throw failed.err;
        if (this.more) {
          // Exports were queued since the last claim came back short: look again.
          this.more = false;
          exhausted = false;
        }
        if (!claiming && !exhausted && !this.stopped && ready.length < 2 * config.concurrency) {
          claiming = claim()
            .catch((err: unknown) => {
              failed = { err };
            })
            .finally(() => {
              claiming = undefined;
              this.wake?.();
            });
        }
        if (claiming && !active && !exhausted && ready.length < config.concurrency) {
          // Nothing in flight and more is due: fill up first, so the pass opens with its full
          // concurrency; once requests are out, claims run beside them.
          await claiming;
          continue;
        }
        while (ready.length && active < config.concurrency) {
          const chunk = ready.shift()!;
          // A lease that ran out while the chunk waited: the rows are due again, for any worker.
          if (chunk.leasedUntil <= this.deps.now()) continue;
          active++;
          this.send1(chunk).then(ended, ended);
        }
        if (this.more && !this.stopped) continue;
        if (!active && !claiming) break;
        await sleep();
      }
    } finally {
      // Outcomes are written within their settle window; idle() and stop() wait for that.
      while (active || claiming) await sleep();
    }
  }

  /** Sends one chunk and queues its outcomes for the next outbox write. */
  private async send1(chunk: Chunk): Promise<void> {
    let results: Array<[OutboxRow, Outcome]>;
    try {
      results = await this.deliverChunk(chunk.flow, chunk.conn, chunk.rows);
    } catch (err) {
      results = chunk.rows.map((r) => [r, { ok: false, retry: true, message: `delivery failed: ${(err as Error).message}` }]);
    }
    this.queueOutcomes(results);
  }

  /** Leased rows → chunks per dataflow (per profile, or micro-batches by the delivery mode). */
  private async chunks(rows: readonly OutboxRow[], leasedUntil: number): Promise<Chunk[]> {
    const groups = new Map<string, OutboxRow[]>();
    for (const r of rows) pushTo(groups, `${r.sandboxId}\u0000${r.dataflowId}`, r);
    const out: Chunk[] = [];
    for (const group of groups.values()) {
      const { sandboxId, dataflowId } = group[0]!;
      let flow: Dataflow;
      let conn: OpenConnection;
      try {
        flow = await this.deps.dataflows.get(sandboxId, dataflowId);
        conn = await this.deps.connections.open(sandboxId, flow.connectionId);
      } catch (err) {
        this.queueOutcomes(group.map((r) => [r, { ok: false, retry: false, message: `dataflow or connection is gone: ${(err as Error).message}` }]));
        continue;
      }
      if (flow.status !== 'active') {
        const later = this.deps.now() + 60_000;
        await this.deps.store.settleExports({ done: [], retry: group.map((r) => ({ id: r.id, lease: leaseOf(r), nextAttemptAt: later, lastError: 'dataflow paused' })), dead: [] });
        continue;
      }
      const def = conn.definition;
      if (def.delivery.kind === 'per-profile') {
        for (const r of group) out.push({ flow, conn, rows: [r], leasedUntil });
        continue;
      }
      const byKey = new Map<string, OutboxRow[]>();
      for (const r of group) {
        const key =
          def.delivery.groupBy === 'audience'
            ? (r.payload.audiences[0]?.id ?? '')
            : def.delivery.groupBy === 'identity-namespace'
              ? Object.keys(r.payload.identities).sort().join(',')
              : '';
        pushTo(byKey, key, r);
      }
      for (const list of byKey.values()) {
        for (let i = 0; i < list.length; i += def.delivery.maxSize) out.push({ flow, conn, rows: list.slice(i, i + def.delivery.maxSize), leasedUntil });
      }
    }
    return out;
  }

  /** Queues outcomes; every chunk finishing within the settle window shares one outbox write. */
  private queueOutcomes(results: Array<[OutboxRow, Outcome]>): void {
    for (const r of results) this.outcomes.push(r);
    if (this.flushing) {
      if (this.outcomes.length >= SETTLE_NOW) this.settleNow?.();
      return;
    }
    const now = this.outcomes.length >= SETTLE_NOW || this.stopped;
    this.flushing = new Promise<void>((resolve) => {
      if (now) {
        setImmediate(resolve);
        return;
      }
      const timer = setTimeout(() => {
        this.settleNow = undefined;
        resolve();
      }, SETTLE_WINDOW_MS);
      this.settleNow = () => {
        this.settleNow = undefined;
        clearTimeout(timer);
        setImmediate(resolve);
      };
    })
      .then(() => this.writeOutcomes())
      .catch((err: unknown) => this.deps.log.error({ err }, 'could not record delivery outcomes; leases will expire and exports return'))
      .finally(() => {
        this.flushing = undefined;
        if (this.outcomes.length) this.queueOutcomes([]);
      });
  }

  /** Waits until every queued outcome is written (without waiting out the settle window). */
  private async flushOutcomes(): Promise<void> {
    while (this.flushing) {
      this.settleNow?.();
      await this.flushing;
    }
  }

  private async writeOutcomes(): Promise<void> {
    const results = this.outcomes;
    this.outcomes = [];
    if (results.length) {
      this.stats.settles++;
      await this.settle(results);
    }
  }

  /** Sends one chunk; returns each row's outcome. */
  private async deliverChunk(flow: Dataflow, conn: OpenConnection, rows: OutboxRow[]): Promise<Array<[OutboxRow, Outcome]>> {
    const def = conn.definition;
    const records: ExportRecord[] = rows.map((r) => r.payload);
    const timeoutMs = this.deps.config.timeoutMs || def.timeoutMs;
    let requests: RequestDescriptor[];
    try {
      requests = def.toRequests(records, { settings: conn.settings, timeoutMs });
    } catch (err) {
      return rows.map((r) => [r, { ok: false, retry: false, message: `${def.name} could not build a request: ${(err as Error).message}` }]);
    }
    const outcomes = new Map<number, ItemOutcome & { retryAfterMs?: number }>();
    for (const req of requests) {
      if (flow.rateLimitPerSecond > 0) await this.limiter.take(`${rows[0]!.sandboxId}:${flow.id}`, flow.rateLimitPerSecond);
      const keys = req.items.map((i) => records[i]!.idempotencyKey);
      const idempotencyKey = keys.length === 1 ? keys[0]! : createHash('sha256').update(keys.join('\n')).digest('hex');
      const result = await this.send(conn, req, records, idempotencyKey, timeoutMs);
      req.items.forEach((item, j) => outcomes.set(item, result[j] ?? result[0] ?? { ok: false, retry: true, message: 'no outcome' }));
    }
    return rows.map((r, i) => [r, outcomes.get(i) ?? { ok: false, retry: false, message: `${def.name} produced no request for this profile` }]);
  }

  private async send(
    conn: OpenConnection,
    req: RequestDescriptor,
    records: readonly ExportRecord[],
    idempotencyKey: string,
    timeoutMs: number,
  ): Promise<Array<ItemOutcome & { retryAfterMs?: number }>> {
    const def = conn.definition;
    const all = (o: ItemOutcome & { retryAfterMs?: number }) => req.items.map(() => o);
    for (let attempt = 0; attempt < 2; attempt++) {
      let auth: Readonly<Record<string, string>>;
      try {
        auth = this.tokens.headerNow(conn.id, def.auth, conn.settings) ?? (await this.tokens.header(conn.id, def.auth, conn.settings));
      } catch (err) {
        const e = err as AudientError;
        return all({ ok: false, retry: e.code === 'UNAVAILABLE', message: e.message });
      }
      let res: HttpAnswer;
      this.stats.inFlight++;
      if (this.stats.inFlight > this.stats.peakInFlight) this.stats.peakInFlight = this.stats.inFlight;
      try {
        res = await this.transport.send(req.url, {
          method: req.method,
          headers: { ...req.headers, ...auth, 'idempotency-key': idempotencyKey },
          body: req.body,
          timeoutMs,
        });
      } catch (err) {
        return all({ ok: false, retry: true, message: (err as Error).message });
      } finally {
        this.stats.inFlight--;
      }
      if (res.status === 401 && attempt === 0 && def.auth.kind.startsWith('oauth2')) {
        this.tokens.invalidate(conn.id); // refresh once and resend
        continue;
      }
      const { headers, body } = res;
      const ra = headers['retry-after'];
      const retryAfterMs = ra ? (/^\d+$/.test(ra) ? Number(ra) * 1000 : Math.max(0, Date.parse(ra) - Date.now())) : undefined;
      if (def.classify) {
        try {
          return def.classify({ status: res.status, headers, body }, req, records).map((o) => (retryAfterMs !== undefined ? { ...o, retryAfterMs } : o));
        } catch (err) {
          return all({ ok: false, retry: false, message: `${def.name} could not read the answer (HTTP ${res.status}): ${(err as Error).message}` });
        }
      }
      if (res.status >= 200 && res.status < 300) return all({ ok: true });
      const cls = retryClassForStatus(res.status);
      const retry = cls === 'retry' || cls === 'rate-limited';
      return all({ ok: false, retry, message: `HTTP ${res.status}: ${body.slice(0, 500)}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
    }
    return all({ ok: false, retry: false, message: 'HTTP 401 after refreshing the OAuth2 token: check the credentials' });
  }

  /**
   * Applies outcomes to the outbox (one transaction, each row fenced by its lease: a row whose
   * lease expired and was taken by another claim is that claim's to settle), then counts the
   * outcomes that were applied in the metrics.
   */
  private async settle(results: ReadonlyArray<[OutboxRow, Outcome]>): Promise<void> {
    const { store, config, metrics, log } = this.deps;
    const now = this.deps.now();
    const done: Array<{ id: number; lease: number }> = [];
    const retry: Array<{ id: number; lease: number; nextAttemptAt: number; lastError: string }> = [];
    const dead: Array<{ id: number; lease: number; lastError: string }> = [];
    const kinds: Array<[OutboxRow, 'activated' | 'retried' | 'failed']> = [];
    for (const [row, o] of results) {
      const lease = leaseOf(row);
      if (o.ok) {
        done.push({ id: row.id, lease });
        kinds.push([row, 'activated']);
      } else if (o.retry && row.attempts + 1 < config.maxAttempts) {
        const backoff = Math.min(MAX_BACKOFF_MS, config.baseBackoffMs * 2 ** row.attempts) * (0.5 + Math.random() / 2);
        retry.push({ id: row.id, lease, nextAttemptAt: Math.round(now + Math.max(backoff, o.retryAfterMs ?? 0)), lastError: o.message });
        kinds.push([row, 'retried']);
      } else {
        dead.push({ id: row.id, lease, lastError: o.retry ? `gave up after ${row.attempts + 1} attempts: ${o.message}` : o.message });
        kinds.push([row, 'failed']);
      }
    }
    const settled = await store.settleExports({ done, retry, dead });
    const applied = settled.length === kinds.length ? undefined : new Set(settled);
    if (applied) log.warn({ outcomes: kinds.length, applied: settled.length }, 'leases expired and were taken by another claim; those exports are left to it');
    // Summed per dataflow first: one counter update and one stats row per metric, not per export.
    const stats = new Map<string, Record<string, number>>();
    for (const [row, kind] of kinds) {
      if (applied && !applied.has(row.id)) continue;
      const k = `${row.sandboxId}\u0000${row.dataflowId}`;
      let s = stats.get(k);
      if (!s) stats.set(k, (s = {}));
      s[kind] = (s[kind] ?? 0) + 1;
      if (kind === 'activated') {
        const latency = Math.max(0, now - row.createdAt);
        s['latency_sum_ms'] = (s['latency_sum_ms'] ?? 0) + latency;
        s['latency_count'] = (s['latency_count'] ?? 0) + 1;
        s['max:latency_ms'] = Math.max(s['max:latency_ms'] ?? 0, latency);
        metrics.deliveryLatency.observe(latency / 1000);
      }
    }
    for (const [k, deltas] of stats) {
      const dataflow = k.slice(k.indexOf('\u0000') + 1);
      for (const outcome of ['activated', 'retried', 'failed'] as const) {
        const n = deltas[outcome];
        if (n) metrics.exportsDelivered.inc({ outcome, dataflow }, n);
      }
    }
    const hour = hourOf(now);
    for (const [k, deltas] of stats) {
      const [sandboxId, dataflowId] = k.split('\u0000') as [string, string];
      await store.addActivationStats(sandboxId, dataflowId, hour, deltas);
    }
  }
}
