/**
 * Alerts on dataflows: subscriptions (signed webhooks) to activation failures above a rate,
 * delivery delays, dead letters and paused dataflows. Conditions are checked on a timer; an
 * alert fires once when a condition starts and once more (`resolved`) when it clears.
 */
import { randomBytes } from 'node:crypto';
import { AudientError } from '@audient/core';
import type { Store } from '@audient/storage';
import type { Logger } from 'pino';
import { sortableId } from '../ids.js';
import type { SecretBox } from '../secrets.js';
import { signPayload } from '../services/webhooks.js';
import { hourOf } from './activation.js';
import type { Dataflows } from './dataflows.js';

const KIND = 'alert-subscription';
const TIMEOUT_MS = 5000;

/** What can be alerted on. */
export type AlertKind = 'failure-rate' | 'delay' | 'dead-letters' | 'paused';

interface StoredAlert {
  id: string;
  url: string;
  secret: string;
  kinds: AlertKind[];
  dataflowIds: string[] | null;
  /** failure-rate: failed / (failed + activated) this hour at or above this fires (with at least `minFailures`). */
  failureRate: number;
  minFailures: number;
  /** delay: oldest queued export older than this, ms. */
  delayMs: number;
  /** Conditions currently firing, `<dataflowId>:<kind>`. */
  firing: string[];
  lastError: string | null;
  createdAt: string;
}

/** The API view (never the secret). */
export type AlertView = Omit<StoredAlert, 'secret'>;

/** Alert subscriptions and their evaluation. */
export class Alerts {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly deps: { store: Store; dataflows: Dataflows; secrets: SecretBox; log: Logger; now: () => number; everyMs: number }) {}

  start(): void {
    if (this.deps.everyMs <= 0) return;
    this.timer = setInterval(() => void this.checkAll(), this.deps.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.checking;
  }

  async create(
    sandboxId: string,
    input: { url: string; kinds: AlertKind[]; dataflowIds?: string[] | undefined; failureRate?: number; minFailures?: number; delayMs?: number },
  ): Promise<AlertView & { secret: string }> {
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      throw new AudientError('VALIDATION_FAILED', 'url is not a valid URL', [{ path: 'url', reason: 'format', message: 'expected an http(s) URL' }]);
    }
    for (const id of input.dataflowIds ?? []) await this.deps.dataflows.get(sandboxId, id);
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    const a: StoredAlert = {
      id: sortableId('alert'),
      url: url.toString(),
      secret: this.deps.secrets.seal(secret),
      kinds: [...new Set(input.kinds)],
      dataflowIds: input.dataflowIds ?? null,
      failureRate: input.failureRate ?? 0.05,
      minFailures: input.minFailures ?? 1,
      delayMs: input.delayMs ?? 10 * 60_000,
      firing: [],
      lastError: null,
      createdAt: new Date(this.deps.now()).toISOString(),
    };
    await this.deps.store.putDoc(sandboxId, KIND, a.id, a);
    const { secret: _sealed, ...view } = a;
    return { ...view, secret };
  }

  async list(sandboxId: string): Promise<AlertView[]> {
    return (await this.deps.store.listDocs<StoredAlert>(sandboxId, KIND)).map(({ secret: _s, ...v }) => v);
  }

  async delete(sandboxId: string, id: string): Promise<void> {
    if (!(await this.deps.store.deleteDoc(sandboxId, KIND, id))) throw new AudientError('NOT_FOUND', `no alert subscription ${id}`);
  }

  /** Checks every sandbox's subscriptions (timer). */
  checkAll(): Promise<void> {
    if (!this.checking) {
      this.checking = (async () => {
        try {
          for (const s of await this.deps.store.listSandboxes()) await this.check(s.id);
        } catch (err) {
          this.deps.log.error({ err }, 'alert check failed');
        }
      })().finally(() => (this.checking = undefined));
    }
    return this.checking;
  }

  /** Evaluates the conditions of one sandbox's subscriptions and notifies changes. */
  async check(sandboxId: string): Promise<void> {
    const { store, dataflows } = this.deps;
    const subs = await store.listDocs<StoredAlert>(sandboxId, KIND);
    if (!subs.length) return;
    const now = this.deps.now();
    const flows = await dataflows.list(sandboxId);
    const facts = new Map<string, { failed: number; activated: number; oldestPendingAt: number | null; dead: number; paused: boolean }>();
    for (const f of flows) {
      const [stats, counts] = await Promise.all([store.activationStats(sandboxId, f.id, hourOf(now)), store.outboxCounts(sandboxId, f.id)]);
      const m = stats[0]?.metrics ?? {};
      facts.set(f.id, { failed: m['failed'] ?? 0, activated: m['activated'] ?? 0, oldestPendingAt: counts.oldestPendingAt, dead: counts.dead, paused: f.status === 'paused' });
    }
    for (const sub of subs) {
      const firing = new Set<string>();
      const details = new Map<string, Record<string, unknown>>();
      for (const f of flows) {
        if (sub.dataflowIds && !sub.dataflowIds.includes(f.id)) continue;
        const x = facts.get(f.id)!;
        const rate = x.failed + x.activated > 0 ? x.failed / (x.failed + x.activated) : 0;
        const conditions: Record<AlertKind, [boolean, Record<string, unknown>]> = {
          'failure-rate': [x.failed >= sub.minFailures && rate >= sub.failureRate, { failed: x.failed, activated: x.activated, rate, threshold: sub.failureRate }],
          delay: [x.oldestPendingAt !== null && now - x.oldestPendingAt >= sub.delayMs, { oldestPendingMs: x.oldestPendingAt === null ? 0 : now - x.oldestPendingAt, thresholdMs: sub.delayMs }],
          'dead-letters': [x.dead > 0, { deadLetters: x.dead }],
          paused: [x.paused, {}],
        };
        for (const kind of sub.kinds) {
          const [on, info] = conditions[kind];
          if (on) firing.add(`${f.id}:${kind}`);
          details.set(`${f.id}:${kind}`, { dataflowId: f.id, dataflowName: f.name, kind, ...info });
        }
      }
      const before = new Set(sub.firing);
      const events = [
        ...[...firing].filter((k) => !before.has(k)).map((k) => ({ state: 'firing', ...details.get(k) })),
        ...[...before].filter((k) => !firing.has(k)).map((k) => ({ state: 'resolved', ...(details.get(k) ?? { key: k }) })),
      ];
      if (!events.length) continue;
      const error = await this.notify(sub, events);
      await store.putDoc(sandboxId, KIND, sub.id, { ...sub, firing: error ? sub.firing : [...firing], lastError: error });
    }
  }

  private async notify(sub: StoredAlert, alerts: unknown[]): Promise<string | null> {
    const body = JSON.stringify({ subscriptionId: sub.id, at: new Date(this.deps.now()).toISOString(), alerts });
    const t = Math.floor(this.deps.now() / 1000);
    try {
      const res = await fetch(sub.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'audient-signature': signPayload(this.deps.secrets.unseal(sub.secret), t, body) },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? null : `HTTP ${res.status}; will notify again at the next check`;
    } catch (err) {
      return `${(err as Error).message}; will notify again at the next check`;
    }
  }
}
