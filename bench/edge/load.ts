/**
 * The edge load generator, a process of its own (node:http, keep-alive). Two modes:
 * - `open`: requests fall due on a fixed schedule (`rate` per second), whatever the server's
 *   pace; each latency is measured from when its request was due, not from when it could be
 *   sent, so a server that falls behind pays for every request queued behind it (no coordinated
 *   omission). Up to `maxSockets` are in flight; requests due beyond that wait in the client.
 * - `closed`: `concurrency` requests in flight, each sent as soon as the previous one of its slot
 *   is answered; the figure is answers per second (maximum throughput).
 * A warm-up at the start is not counted. Bounded in time; loopback only. It serves several runs
 * in a row (one `run` message each) until `exit`.
 */
import http from 'node:http';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { assertLoopback } from '../lib/http.js';
import { percentile } from '../lib/latency.js';
import { interactBodies, newVisitorBodies } from './bodies.js';

/** Parent → load client: build the bodies once. */
export interface PrepareLoad extends Message {
  type: 'prepare';
  bodies: number;
  profiles: number;
  seed: number;
}

/** Parent → load client: one run against one server. */
export interface RunEdgeLoad extends Message {
  type: 'run';
  /** Base URL (loopback) and path with query. */
  url: string;
  path: string;
  mode: 'open' | 'closed';
  /** open: requests per second. */
  rate: number;
  /** closed: requests in flight. */
  concurrency: number;
  /** Sockets the open mode may use at most. */
  maxSockets: number;
  /** Returning visitors (a known ECID each, the default) or new ones (no identity: the edge mints an ECID and the event creates a profile). */
  visitors?: 'returning' | 'new';
  warmupMs: number;
  durationMs: number;
}

/** Load client → parent: bodies built. */
export interface LoadPrepared extends Message {
  type: 'prepared';
  bodies: number;
  meanBodyBytes: number;
}

/** Load client → parent: the outcome of one run (counted requests only: those due after the warm-up). */
export interface EdgeLoadDone extends Message {
  type: 'done';
  mode: 'open' | 'closed';
  /** Requests counted (open: due in the measured window; closed: answered in it). */
  requests: number;
  statuses: Record<string, number>;
  /** Measured window, ms, and answers per second in it. */
  windowMs: number;
  throughput: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanAnswerBytes: number;
  /** open: requests still unanswered (in flight or waiting for a socket) at the time limit: failures, in the percentiles at the time they had waited. */
  unanswered: number;
  /** open: the latest a request was sent after it was due, ms (a busy server or a saturated client). */
  maxSendLagMs: number;
  firstFailure: string | undefined;
}

/** Load client messages. */
export type EdgeLoadOut = LoadPrepared | EdgeLoadDone;

interface Answer {
  status: number | 'error';
  bytes: number;
  text?: string;
}

function sender(target: URL, agent: http.Agent): (body: Buffer) => Promise<Answer> {
  return (body) =>
    new Promise((resolve) => {
      const req = http.request(target, { method: 'POST', agent, headers: { 'content-type': 'text/plain; charset=UTF-8', 'content-length': body.length } }, (res) => {
        const status = res.statusCode ?? 0;
        let bytes = 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (status !== 200 && chunks.length < 4) chunks.push(c);
        });
        res.on('end', () => resolve(status === 200 ? { status, bytes } : { status, bytes, text: Buffer.concat(chunks).toString().slice(0, 500) }));
        res.on('error', (err) => resolve({ status: 'error', bytes, text: err.message }));
      });
      req.on('error', (err) => resolve({ status: 'error', bytes: 0, text: err.message }));
      req.end(body);
    });
}

async function run(r: RunEdgeLoad, bodies: Buffer[]): Promise<EdgeLoadDone> {
  const target = new URL(r.path, r.url);
  assertLoopback(target);
  const sockets = r.mode === 'open' ? r.maxSockets : r.concurrency;
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  const send = sender(target, agent);
  const statuses: Record<string, number> = {};
  let firstFailure: string | undefined;
  let answerBytes = 0;
  let counted = 0;
  const latencies: number[] = [];
  const record = (a: Answer, ms: number, count: boolean): void => {
    if (!count) return;
    counted++;
    latencies.push(ms);
    statuses[String(a.status)] = (statuses[String(a.status)] ?? 0) + 1;
    answerBytes += a.bytes;
    if (a.status !== 200) firstFailure ??= `${a.status}: ${a.text ?? ''}`;
  };

  let windowMs: number;
  let unanswered = 0;
  let maxSendLagMs = 0;
  if (r.mode === 'open') {
    const interval = 1000 / r.rate;
    const total = Math.round(((r.warmupMs + r.durationMs) / 1000) * r.rate);
    const warmCount = Math.round((r.warmupMs / 1000) * r.rate);
    let inFlight = 0;
    const sentAndUnanswered = new Set<number>();
    /** Requests due while every socket was busy, oldest first: sent as sockets free up. */
    const waiting: number[] = [];
    const start = performance.now() + 20;
    const hardEnd = start + r.warmupMs + r.durationMs + 10_000;
    await new Promise<void>((resolve) => {
      let i = 0;
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        resolve();
      };
      const dueOf = (k: number): number => start + k * interval;
      const fire = (k: number): void => {
        inFlight++;
        sentAndUnanswered.add(k);
        maxSendLagMs = Math.max(maxSendLagMs, performance.now() - dueOf(k));
        void send(bodies[k % bodies.length]!).then((a) => {
          inFlight--;
          sentAndUnanswered.delete(k);
          if (finished) return;
          record(a, performance.now() - dueOf(k), k >= warmCount);
          const next = waiting.shift();
          if (next !== undefined) fire(next);
          else if (i >= total && inFlight === 0) finish();
        });
      };
      const tick = (): void => {
        const now = performance.now();
        while (i < total && dueOf(i) <= now) {
          const k = i++;
          // Every socket busy: the request waits in the client, and its latency still runs
          // from when it was due (the server's backlog is what it measures).
          if (inFlight >= r.maxSockets) waiting.push(k);
          else fire(k);
        }
        if (i < total) setTimeout(tick, Math.max(0, Math.min(1, dueOf(i) - performance.now())));
        else if (inFlight === 0 && waiting.length === 0) finish();
      };
      setTimeout(tick, 20);
      // Bounded: whatever is unanswered 10 s after the schedule ended (in flight or still
      // waiting) is a failure; its latency is counted as at least the time it had waited by then.
      setTimeout(() => {
        const now = performance.now();
        for (const k of [...sentAndUnanswered, ...waiting.splice(0)]) {
          if (k >= warmCount) {
            unanswered++;
            latencies.push(now - dueOf(k));
          }
        }
        finish();
      }, hardEnd - performance.now()).unref();
    });
    windowMs = r.durationMs;
    if (unanswered) {
      statuses['unanswered 10 s after the schedule'] = unanswered;
      firstFailure ??= `${unanswered} requests unanswered 10 s after the schedule ended (counted in the percentiles at the time they had waited, a lower bound)`;
    }
  } else {
    const start = performance.now();
    const measureFrom = start + r.warmupMs;
    const end = measureFrom + r.durationMs;
    let next = 0;
    let lastAnswer = measureFrom;
    const worker = async (): Promise<void> => {
      while (performance.now() < end) {
        const k = next++;
        const t = performance.now();
        const a = await send(bodies[k % bodies.length]!);
        const done = performance.now();
        if (t >= measureFrom && done <= end) {
          record(a, done - t, true);
          lastAnswer = Math.max(lastAnswer, done);
        }
      }
    };
    await Promise.all(Array.from({ length: r.concurrency }, worker));
    windowMs = Math.max(1, lastAnswer - measureFrom);
  }
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  const ok = statuses['200'] ?? 0;
  return {
    type: 'done',
    mode: r.mode,
    requests: counted + unanswered,
    statuses,
    windowMs,
    throughput: ok / (windowMs / 1000),
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    p999Ms: percentile(sorted, 99.9),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    meanAnswerBytes: counted ? Math.round(answerBytes / counted) : 0,
    unanswered,
    maxSendLagMs,
    firstFailure,
  };
}

/** Distinct new visitors' bodies (they differ by page only: each request is a new visitor whatever its body). */
const NEW_VISITOR_BODIES = 2_000;

async function main(): Promise<void> {
  const prep = await fromParent<PrepareLoad>('prepare');
  const bodies = interactBodies(prep.bodies, prep.profiles, prep.seed);
  const fresh = newVisitorBodies(NEW_VISITOR_BODIES);
  toParent({ type: 'prepared', bodies: bodies.length, meanBodyBytes: Math.round(bodies.reduce((n, b) => n + b.length, 0) / bodies.length) } satisfies LoadPrepared);
  for (;;) {
    const next = await fromParent<RunEdgeLoad | Message>('run', 'exit');
    if (next.type === 'exit') break;
    const r = next as RunEdgeLoad;
    toParent(await run(r, r.visitors === 'new' ? fresh : bodies));
  }
  process.disconnect?.();
}

runChild(main);
