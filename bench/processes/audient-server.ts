/**
 * Audient under test, in a process of its own: the real context and HTTP app over SQLite (a WAL
 * file) or PostgreSQL, listening on loopback, with a sandbox, an event schema and a
 * profile-enabled dataset. On `stop` it waits for the change feed to publish everything and for
 * the bus's subscribers to handle it, then reports what it ingested and published and its peak
 * memory.
 */
import { createContext, buildApp, loadConfig } from '@audient/server';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { peakRssMB, rssMB } from '../lib/rss.js';
import { EVENT_SCHEMA } from '../lib/workload.js';

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

/** Server → parent: stopped, with its own account of the run. */
export interface ServerStopped extends Message {
  type: 'stopped';
  accepted: number;
  rejected: number;
  changesPublished: number;
  /** Time from `stop` (sent after the last response) until every change was published and handled. */
  feedDrainMs: number;
  peakRssMB: number;
  /** Largest RSS seen by the 100 ms sampler (excludes start-up peaks the kernel counter keeps). */
  sampledPeakRssMB: number;
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
  const { apiKey } = await ctx.tenancy.createSandbox({ id: sandboxId, instanceAdmin: true });
  await ctx.catalog.createSchema(sandboxId, EVENT_SCHEMA);
  await ctx.catalog.createDataset(sandboxId, { id: 'web', name: 'Web', schemaId: EVENT_SCHEMA.id, profileEnabled: true });
  const app = await buildApp(ctx);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('server has no TCP address');

  let sampled = rssMB();
  const sampler = setInterval(() => {
    sampled = Math.max(sampled, rssMB());
  }, 100);
  sampler.unref();
  const cpuAtReady = process.cpuUsage();
  toParent({ type: 'ready', url: `http://127.0.0.1:${address.port}`, apiKey, sandboxId, datasetId: 'web' } satisfies ServerReady);

  await fromParent<Message>('stop');
  const t = performance.now();
  await ctx.feed.flush();
  await ctx.bus.drain();
  const feedDrainMs = performance.now() - t;
  const cpu = process.cpuUsage(cpuAtReady);
  clearInterval(sampler);
  sampled = Math.max(sampled, rssMB());
  const ingested = (await ctx.metrics.recordsIngested.get()).values;
  const count = (status: string): number => ingested.filter((v) => v.labels['status'] === status).reduce((n, v) => n + v.value, 0);
  const published = (await ctx.metrics.changesPublished.get()).values.reduce((n, v) => n + v.value, 0);
  const stopped: ServerStopped = {
    type: 'stopped',
    accepted: count('accepted'),
    rejected: count('rejected'),
    changesPublished: published,
    feedDrainMs,
    peakRssMB: peakRssMB(),
    sampledPeakRssMB: sampled,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  // Reported before closing: a close that lets the process exit early must not lose the figures.
  toParent(stopped);
  await app.close();
  await ctx.close();
  process.disconnect?.();
}

runChild(main);
