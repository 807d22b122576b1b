/**
 * Test helper: a destination API stand-in on loopback. It records every request and can be told
 * to misbehave (errors, rate limits, slowness, expired tokens, replays) so the delivery runtime's
 * retry, timeout, refresh-on-401 and idempotency behaviour is tested over real HTTP.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the receiver saw it, and how it was answered. */
export interface RecordedRequest {
  method: string;
  /** Path and query, as sent (`/v1/events?batch=1`). */
  url: string;
  /** Lower-cased header names, as node:http gives them. */
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or `undefined` when it is empty or not JSON. */
  json: unknown;
  /** The bearer token presented, if any. */
  bearer: string | undefined;
  /** Epoch milliseconds at arrival. */
  at: number;
  /** Status answered; 0 until the answer is decided. */
  status: number;
  /** A 2xx answer to an `Idempotency-Key` already answered 2xx. */
  duplicate: boolean;
  /** The client went away before the answer was written (e.g. it timed out on a slow answer). */
  aborted: boolean;
}

/** A scripted failure answer. */
export interface FailureReply {
  status: number;
  /** Sent as the `Retry-After` header (seconds, or an HTTP date). */
  retryAfter?: string | number;
  /** Response body; objects are sent as JSON. Defaults to `{ error: "injected failure" }`. */
  body?: unknown;
}

/** A success answer chosen by {@link ReceiverOptions.respond}. */
export interface SuccessReply {
  status?: number;
  body?: unknown;
}

/** Options for {@link startReceiver}. */
export interface ReceiverOptions {
  /** When set, requests without a bearer token this accepts get 401 `invalid_token`. */
  verifyBearer?: (token: string) => Promise<boolean>;
  /** Answer for requests that pass every check; defaults to 200 `{ ok: true }`. */
  respond?: (req: RecordedRequest) => SuccessReply;
}

/** A running receiver. */
export interface Receiver {
  /** Base URL, `http://127.0.0.1:<port>` (no trailing slash); any path is accepted. */
  url: string;
  /** Every request, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** Requests answered 2xx, less duplicates: what the destination actually took in. */
  readonly accepted: readonly RecordedRequest[];
  /** Replays of an `Idempotency-Key` already accepted (answered 200, not taken in again). */
  readonly duplicates: readonly RecordedRequest[];
  /** Whether replays are detected by `Idempotency-Key`; on by default. */
  dropDuplicates: boolean;
  /** The next `n` requests are answered with `reply` (before any other check, like a gateway would). */
  failNext(n: number, reply: FailureReply): void;
  /** The next `n` requests are answered only after `ms` milliseconds. */
  slowNext(n: number, ms: number): void;
  /**
   * Every bearer token seen so far is from now on refused with 401 `invalid_token`, as if it had
   * expired; tokens first seen later are unaffected, so a client that refreshes gets through.
   */
  expireTokens(): void;
  /** Resolves once `predicate` holds over the answered requests; rejects after `timeoutMs`. */
  waitFor(predicate: (requests: readonly RecordedRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function bearerOf(headers: IncomingHttpHeaders): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  return match?.[1];
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function write(res: ServerResponse, reply: Reply): void {
  if (res.destroyed) return;
  const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? {});
  const type = typeof reply.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
  res.writeHead(reply.status, { 'content-type': type, ...reply.headers }).end(text);
}

const invalidToken = (description: string): Reply => ({
  status: 401,
  headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${description}"` },
  body: { error: 'invalid_token', error_description: description },
});

/** Starts a receiver on 127.0.0.1 (random port). */
export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const requests: RecordedRequest[] = [];
  const accepted: RecordedRequest[] = [];
  const duplicates: RecordedRequest[] = [];
  const failures: FailureReply[] = [];
  const delays: number[] = [];
  const seenTokens = new Set<string>();
  const expiredTokens = new Set<string>();
  const answeredKeys = new Set<string>();
  const waiters = new Set<() => void>();
  const timers = new Set<NodeJS.Timeout>();

  const notify = (): void => {
    for (const waiter of waiters) waiter();
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  async function decide(rec: RecordedRequest): Promise<Reply> {
    const failure = failures.shift();
    if (failure) {
      const headers: Record<string, string> = {};
      if (failure.retryAfter !== undefined) headers['retry-after'] = String(failure.retryAfter);
      return { status: failure.status, headers, body: failure.body ?? { error: 'injected failure' } };
    }
    if (rec.bearer !== undefined && expiredTokens.has(rec.bearer)) return invalidToken('token expired');
    if (opts.verifyBearer) {
      if (rec.bearer === undefined || !(await opts.verifyBearer(rec.bearer))) {
        return invalidToken('missing or invalid bearer token');
      }
    }
    const key = rec.headers['idempotency-key'];
    const idempotencyKey = Array.isArray(key) ? key[0] : key;
    if (receiver.dropDuplicates && idempotencyKey !== undefined && answeredKeys.has(idempotencyKey)) {
      rec.duplicate = true;
      return { status: 200, headers: {}, body: { ok: true, duplicate: true } };
    }
    const success = opts.respond?.(rec) ?? {};
    const status = success.status ?? 200;
    if (status >= 200 && status < 300 && idempotencyKey !== undefined) answeredKeys.add(idempotencyKey);
    return { status, headers: {}, body: success.body ?? { ok: true } };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const body = await readBody(req);
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      body,
      json: parseJson(body),
      bearer: bearerOf(req.headers),
      at,
      status: 0,
      duplicate: false,
      aborted: false,
    };
    requests.push(rec);
    res.on('close', () => {
      if (!res.writableFinished) rec.aborted = true;
    });
    const delay = delays.shift();
    if (delay !== undefined) await sleep(delay);
    // The request is processed even if the client gave up waiting, as a real server would.
    const reply = await decide(rec);
    rec.status = reply.status;
    if (rec.bearer !== undefined) seenTokens.add(rec.bearer);
    if (rec.duplicate) duplicates.push(rec);
    else if (reply.status >= 200 && reply.status < 300) accepted.push(rec);
    write(res, reply);
    notify();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      write(res, { status: 500, headers: {}, body: { error: String(err) } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}`,
    requests,
    accepted,
    duplicates,
    dropDuplicates: true,
    failNext(n, reply) {
      for (let i = 0; i < n; i += 1) failures.push(reply);
    },
    slowNext(n, ms) {
      for (let i = 0; i < n; i += 1) delays.push(ms);
    },
    expireTokens() {
      for (const token of seenTokens) expiredTokens.add(token);
    },
    waitFor(predicate, timeoutMs = 5000) {
      const answered = (): RecordedRequest[] => requests.filter((r) => r.status !== 0);
      if (predicate(answered())) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!predicate(answered())) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`waitFor timed out after ${timeoutMs} ms (${requests.length} requests recorded)`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
  return receiver;
}
