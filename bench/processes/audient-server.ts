/**
 * Audient under test, in a process of its own: the real context and HTTP app over SQLite (a WAL
 * file) or PostgreSQL, listening on loopback, with a sandbox, an event schema and a
 * profile-enabled dataset. On `stop` it waits for the change feed to publish everything and for
 * the bus's subscribers to handle it, then reports what it ingested and published and its peak
 * memory.
 */
import { createContext, buildApp, loadConfig } from '@audient/server';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { createBenchSandbox, ingestCounts } from '../lib/audient.js';
import { loopbackUrl } from '../lib/http.js';
import { peakRssMB, sampleRss } from '../lib/rss.js';

/** Parent → server: start over this database. */
export interface StartServer extends Message {
  type: 'start';
  dataDir: string;
  /** A SQLite file path or a postgres:// URL. */
  databaseUrl: string;
}

/** Server → parent: listening. */
export interface ServerReady extends Message {
  type: 'ready';
  url: string;
  apiKey: string;
  sandboxId: string;
  datasetId: string;
}

/** An Audient server process → parent: stopped, with its own account of the run. */
export interface AudientStopped extends Message {
  type: 'stopped';
  accepted: number;
  rejected: number;
  changesPublished: number;
  /** Time from `stop` (sent after the last response) until every change was published and handled. */
  feedDrainMs: number;
  peakRssMB: number;
  /** Largest RSS seen by the 100 ms sampler (excludes start-up peaks the kernel counter keeps). */
  sampledPeakRssMB: number;
}

/** Server → parent: stopped, with its own account of the run and the CPU time it took. */
export interface ServerStopped extends AudientStopped {
  /**
   * CPU time (user + system) the server process spent from `ready` until everything was
   * published and handled: the work per event, less sensitive to other load on the machine.
   */
  cpuMs: number;
}

/** Server messages. */
export type ServerOut = ServerReady | ServerStopped;

async function main(): Promise<void> {
  const start = await fromParent<StartServer>('start');
  const config = loadConfig({ dataDir: start.dataDir, databaseUrl: start.databaseUrl, host: '127.0.0.1', port: 0, logLevel: 'warn' }, {});
  const ctx = await createContext(config);
  const sandboxId = 'bench';
  const apiKey = await createBenchSandbox(ctx, sandboxId);
  const app = await buildApp(ctx);
  await app.listen({ port: 0, host: '127.0.0.1' });

  const rss = sampleRss();
  const cpuAtReady = process.cpuUsage();
  toParent({ type: 'ready', url: loopbackUrl(app.server), apiKey, sandboxId, datasetId: 'web' } satisfies ServerReady);

  await fromParent<Message>('stop');
  const t = performance.now();
  await ctx.feed.flush();
  await ctx.bus.drain();
  const feedDrainMs = performance.now() - t;
  const cpu = process.cpuUsage(cpuAtReady);
  rss.stop();
  const sampledPeakRssMB = rss.peak();
  const stopped: ServerStopped = {
    type: 'stopped',
    ...(await ingestCounts(ctx)),
    feedDrainMs,
    peakRssMB: peakRssMB(),
    sampledPeakRssMB,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  // Reported before closing: a close that lets the process exit early must not lose the figures.
  toParent(stopped);
  await app.close();
  await ctx.close();
  process.disconnect?.();
}

runChild(main);
