/**
 * The load generator, a process of its own: builds the request bodies (deterministic), then sends
 * them over keep-alive connections with a bounded number in flight, and reports the wall time from
 * the first request to the last response, the status of every response and request latencies.
 * Bounded in count and in time; loopback only.
 */
import http from 'node:http';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { assertLoopback } from '../lib/http.js';
import { percentile } from '../lib/latency.js';
import { requestBodies, type BodyShape } from '../lib/workload.js';

/** Parent → load client: what to send where. */
export interface RunLoad extends Message {
  type: 'run';
  /** Base URL of the server under test (must be loopback). */
  url: string;
  path: string;
  apiKey: string | undefined;
  shape: BodyShape;
  /** Events to send (requests = count / 100 for batches). */
  count: number;
  seed: number;
  people: number;
  concurrency: number;
  /** No new request starts after this long from the first one. */
  timeLimitMs: number;
}

/** Load client → parent: the bodies are built, the load starts now. */
export interface LoadGenerated extends Message {
  type: 'generated';
  requests: number;
  bytes: number;
  ms: number;
}

/** Load client → parent: the outcome. */
export interface LoadDone extends Message {
  type: 'done';
  requests: number;
  /** Events in requests answered 200. */
  eventsOk: number;
  /** Requests answered, by status code; `error` for requests that got no answer. */
  statuses: Record<string, number>;
  wallMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** True when the time limit stopped the run before every request was sent. */
  truncated: boolean;
  /** The first answer that was not a 200, for diagnosis. */
  firstFailure: string | undefined;
}

/** Load client messages. */
export type LoadOut = LoadGenerated | LoadDone;

async function main(): Promise<void> {
  const run = await fromParent<RunLoad>('run');
  const target = new URL(run.path, run.url);
  assertLoopback(target);

  const t0 = performance.now();
  const bodies = requestBodies(run.shape, run.count, { people: run.people, seed: run.seed });
  const perBody = run.shape === 'single' ? 1 : 100;
  toParent({
    type: 'generated',
    requests: bodies.length,
    bytes: bodies.reduce((n, b) => n + b.length, 0),
    ms: Math.round(performance.now() - t0),
  } satisfies LoadGenerated);

  const agent = new http.Agent({ keepAlive: true, maxSockets: run.concurrency, maxFreeSockets: run.concurrency });
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
  if (run.apiKey) headers['authorization'] = `Bearer ${run.apiKey}`;
  const statuses: Record<string, number> = {};
  const latencies = new Float64Array(bodies.length);
  let done = 0;
  let next = 0;
  let eventsOk = 0;
  let firstFailure: string | undefined;
  let truncated = false;

  const send = (body: Buffer): Promise<{ status: number | 'error'; text?: string }> =>
    new Promise((resolve) => {
      const req = http.request(
        target,
        { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status === 200) {
            res.resume();
            res.on('end', () => resolve({ status }));
          } else {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.length < 4 && chunks.push(c));
            res.on('end', () => resolve({ status, text: Buffer.concat(chunks).toString().slice(0, 500) }));
          }
          res.on('error', (err) => resolve({ status: 'error', text: err.message }));
        },
      );
      req.on('error', (err) => resolve({ status: 'error', text: err.message }));
      req.end(body);
    });

  const start = performance.now();
  const deadline = start + run.timeLimitMs;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      if (performance.now() > deadline) {
        truncated = true;
        return;
      }
      const i = next++;
      const t = performance.now();
      const r = await send(bodies[i]!);
      latencies[done++] = performance.now() - t;
      statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
      if (r.status === 200) eventsOk += perBody;
      else firstFailure ??= `${r.status}: ${r.text ?? ''}`;
    }
  };
  await Promise.all(Array.from({ length: run.concurrency }, worker));
  const wallMs = performance.now() - start;
  agent.destroy();

  const sorted = latencies.slice(0, done).sort();
  toParent({
    type: 'done',
    requests: done,
    eventsOk,
    statuses,
    wallMs,
    latencyP50Ms: percentile(sorted, 50),
    latencyP99Ms: percentile(sorted, 99),
    truncated,
    firstFailure,
  } satisfies LoadDone);
  process.disconnect?.();
}

runChild(main);
