/**
 * Signed webhooks for membership events. A subscription has a URL, an optional audience filter
 * and a position in the membership-event log; events after the position are POSTed in order, in
 * batches, signed with HMAC-SHA256 (`audient-signature: t=<unix>,v1=<hex of t.body>`). A 2xx
 * advances the position; 408, 429 and 5xx are retried with exponential backoff and jitter
 * (honouring Retry-After); any other 4xx pauses the subscription with the reason, so nothing is
 * skipped. Replay = move the position back.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { AudientError, retryClassForStatus } from '@audient/core';
import type { MembershipEventRow, Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Bus } from '../bus/port.js';
import { sortableId } from '../ids.js';
import type { SecretBox } from '../secrets.js';
import { SandboxCache } from '../sandbox-cache.js';

const KIND = 'membership-webhook';
const BATCH = 100;
const TIMEOUT_MS = 5000;
const MAX_BACKOFF_MS = 5 * 60_000;
/** Membership events taken from the bus per handler call (one delivery pass per sandbox among them). */
const BUS_BATCH = 1000;
/** How long a sandbox's cached subscription list is trusted without a write seen here. */
const LIST_TTL_MS = 5_000;

/** A stored subscription (the secret sealed). */
interface StoredWebhook {
  id: string;
  url: string;
  audienceIds: string[] | null;
  secret: string;
  position: number;
  status: 'active' | 'paused';
  failures: number;
  nextAttemptAt: number;
  lastError: string | null;
  lastDeliveryAt: string | null;
  createdAt: string;
}

/** A subscription as the API shows it (never the secret). */
export type WebhookView = Omit<StoredWebhook, 'secret' | 'nextAttemptAt'>;

const view = (w: StoredWebhook): WebhookView => {
  const { secret: _s, nextAttemptAt: _n, ...rest } = w;
  return rest;
};

/** Signs a body the way receivers verify it. */
export function signPayload(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Membership webhooks: management and delivery. */
export class MembershipWebhooks {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private running = new Map<string, Promise<void>>();
  private stopped = false;
  /** Sandboxes with events that arrived while their pass was running: one more pass follows. */
  private readonly again = new Set<string>();
  /**
   * Subscriptions per sandbox, so a membership event of a sandbox without any costs no read.
   * Dropped on every write through this service; rebuilt after LIST_TTL_MS in any case (writes by
   * another process over the same store).
   */
  private readonly subsCache = new SandboxCache<StoredWebhook[]>(LIST_TTL_MS);

  constructor(private readonly deps: { store: Store; bus: Bus; secrets: SecretBox; log: Logger; now?: () => number }) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  start(): void {
    this.stopped = false;
    this.unsubscribe = this.deps.bus.subscribeBatch<MembershipEventRow>('memberships.*', 'webhooks', BUS_BATCH, async (msgs) => {
      const sandboxes = new Set<string>();
      for (const m of msgs) sandboxes.add(m.payload.sandboxId);
      for (const sandboxId of sandboxes) this.request(sandboxId);
    });
    this.timer = setInterval(() => void this.deliverAll(), 2000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.stopped = true;
    this.again.clear();
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.running.values());
  }

  /** The sandbox's subscriptions, from memory while fresh. */
  private subscriptions(sandboxId: string): Promise<StoredWebhook[]> {
    return this.subsCache.get(sandboxId, () => this.deps.store.listDocs<StoredWebhook>(sandboxId, KIND));
  }

  /** Writes a subscription and drops the sandbox's cached list. */
  private async save(sandboxId: string, w: StoredWebhook): Promise<void> {
    this.subsCache.drop(sandboxId);
    try {
      await this.deps.store.putDoc(sandboxId, KIND, w.id, w);
    } finally {
      this.subsCache.drop(sandboxId);
    }
  }

  /** Creates a subscription; the signing secret is returned once. */
  async create(sandboxId: string, input: { url: string; audienceIds?: string[] | undefined; fromPosition?: number | undefined }): Promise<WebhookView & { secret: string }> {
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      throw new AudientError('VALIDATION_FAILED', 'url is not a valid URL', [{ path: 'url', reason: 'format', message: 'expected an http(s) URL' }]);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new AudientError('VALIDATION_FAILED', 'webhooks use http or https', [{ path: 'url', reason: 'format', message: `protocol ${url.protocol} is not allowed` }]);
    }
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    const w: StoredWebhook = {
      id: sortableId('wh'),
      url: url.toString(),
      audienceIds: input.audienceIds ?? null,
      secret: this.deps.secrets.seal(secret),
      position: input.fromPosition ?? (await this.deps.store.membershipEventHead(sandboxId)),
      status: 'active',
      failures: 0,
      nextAttemptAt: 0,
      lastError: null,
      lastDeliveryAt: null,
      createdAt: new Date(this.now()).toISOString(),
    };
    await this.save(sandboxId, w);
    return { ...view(w), secret };
  }

  async list(sandboxId: string): Promise<WebhookView[]> {
    return (await this.deps.store.listDocs<StoredWebhook>(sandboxId, KIND)).map(view);
  }

  private async get(sandboxId: string, id: string): Promise<StoredWebhook> {
    const w = await this.deps.store.getDoc<StoredWebhook>(sandboxId, KIND, id);
    if (!w) throw new AudientError('NOT_FOUND', `no webhook ${id} in this sandbox`);
    return w;
  }

  async delete(sandboxId: string, id: string): Promise<void> {
    this.subsCache.drop(sandboxId);
    const deleted = await this.deps.store.deleteDoc(sandboxId, KIND, id);
    this.subsCache.drop(sandboxId);
    if (!deleted) throw new AudientError('NOT_FOUND', `no webhook ${id} in this sandbox`);
  }

  /** Moves the position (replay from `position`) and resumes a paused subscription. */
  async replay(sandboxId: string, id: string, position: number): Promise<WebhookView> {
    const w = await this.get(sandboxId, id);
    const next: StoredWebhook = { ...w, position, status: 'active', failures: 0, nextAttemptAt: 0, lastError: null };
    await this.save(sandboxId, next);
    this.request(sandboxId);
    return view(next);
  }

  /** Delivers pending events of every sandbox (timer). */
  async deliverAll(): Promise<void> {
    try {
      for (const s of await this.deps.store.listSandboxes()) await this.deliverSandbox(s.id);
    } catch (err) {
      this.deps.log.error({ err }, 'webhook delivery sweep failed');
    }
  }

  /** Delivers pending events of one sandbox's subscriptions; one pass at a time per sandbox. */
  deliverSandbox(sandboxId: string): Promise<void> {
    const current = this.running.get(sandboxId);
    if (current) return current;
    const p = this.deliverOnce(sandboxId).finally(() => {
      this.running.delete(sandboxId);
      if (this.again.delete(sandboxId)) this.request(sandboxId);
    });
    this.running.set(sandboxId, p);
    return p;
  }

  /** New events for a sandbox: a pass now, or one more after the running pass (which may have read past them already). */
  private request(sandboxId: string): void {
    if (this.stopped) return;
    if (this.running.has(sandboxId)) this.again.add(sandboxId);
    else void this.deliverSandbox(sandboxId).catch((err: unknown) => this.deps.log.error({ err, sandboxId }, 'webhook delivery pass failed'));
  }

  private async deliverOnce(sandboxId: string): Promise<void> {
    const subs = await this.subscriptions(sandboxId);
    for (const w of subs) {
      if (w.status !== 'active' || w.nextAttemptAt > this.now()) continue;
      let sub = w;
      for (;;) {
        const events = await this.deps.store.readMembershipEvents(sandboxId, sub.position, BATCH);
        if (!events.length) break;
        const wanted = sub.audienceIds ? events.filter((e) => sub.audienceIds!.includes(e.audienceId)) : events;
        const last = events.at(-1)!.seq;
        const ok = wanted.length === 0 ? true : await this.post(sandboxId, sub, wanted);
        sub = (await this.deps.store.getDoc<StoredWebhook>(sandboxId, KIND, sub.id)) ?? sub;
        if (!ok) break;
        sub = { ...sub, position: last, failures: 0, lastError: null, nextAttemptAt: 0, lastDeliveryAt: new Date(this.now()).toISOString() };
        await this.save(sandboxId, sub);
        if (events.length < BATCH) break;
      }
    }
  }

  /** One POST; records failures (backoff or pause) and returns whether it was delivered. */
  private async post(sandboxId: string, w: StoredWebhook, events: MembershipEventRow[]): Promise<boolean> {
    const body = JSON.stringify({ webhookId: w.id, events });
    const t = Math.floor(this.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'audient-signature': signPayload(this.deps.secrets.unseal(w.secret), t, body),
      'idempotency-key': `${w.id}:${events[0]!.seq}-${events.at(-1)!.seq}`,
    };
    let status = 0;
    let retryAfterMs: number | undefined;
    let error: string;
    try {
      const res = await fetch(w.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return true;
      status = res.status;
      const ra = res.headers.get('retry-after');
      if (ra) retryAfterMs = /^\d+$/.test(ra) ? Number(ra) * 1000 : Math.max(0, Date.parse(ra) - Date.now());
      error = `HTTP ${status}`;
    } catch (err) {
      error = (err as Error).name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS} ms` : (err as Error).message;
    }
    const cls = status ? retryClassForStatus(status) : 'retry';
    const failures = w.failures + 1;
    const pause = cls === 'drop' || cls === 'fix-config' || cls === 'refresh-auth';
    const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures, 20)) * (0.5 + Math.random() / 2);
    const next: StoredWebhook = {
      ...w,
      failures,
      lastError: pause ? `${error}: the receiver refused the delivery; fix it, then replay to resume` : error,
      status: pause ? 'paused' : 'active',
      nextAttemptAt: this.now() + Math.max(backoff, retryAfterMs ?? 0),
    };
    this.deps.log.warn({ sandboxId, webhookId: w.id, status, error, failures }, 'membership webhook delivery failed');
    await this.save(sandboxId, next);
    return false;
  }
}
