/**
 * Builds a running Audient from a Config: store, bus, change feed and services. The HTTP app
 * and the CLI both start from here, so there is one wiring of the parts.
 */
import { mkdirSync } from 'node:fs';
import { openStore, type Store } from '@audient/storage';
import pino, { type Logger } from 'pino';
import { MemoryBus } from './bus/memory-bus.js';
import type { Bus } from './bus/port.js';
import type { Config } from './config.js';
import { createMetrics, type Metrics } from './metrics.js';
import { BatchIngestion } from './services/batch-ingestion.js';
import { Catalog } from './services/catalog.js';
import { ChangeFeed } from './services/change-feed.js';
import { FailedRecords } from './services/failed-records.js';
import { IngestionService } from './services/ingestion.js';
import { Jobs } from './services/jobs.js';
import { ProfileService } from './services/profiles.js';
import { Tenancy } from './services/tenancy.js';

/** Every long-lived part of a running Audient. */
export interface AudientContext {
  config: Config;
  log: Logger;
  store: Store;
  bus: Bus;
  metrics: Metrics;
  feed: ChangeFeed;
  tenancy: Tenancy;
  catalog: Catalog;
  ingestion: IngestionService;
  batches: BatchIngestion;
  failed: FailedRecords;
  jobs: Jobs;
  profiles: ProfileService;
  /** Stops background work and closes the store. */
  close(): Promise<void>;
}

/** Opens the store (running migrations) and wires the services. `store` may be given by tests. */
export async function createContext(config: Config, opts: { log?: Logger; store?: Store } = {}): Promise<AudientContext> {
  const log = opts.log ?? pino({ level: config.logLevel });
  if (!opts.store && !/^postgres(ql)?:/.test(config.databaseUrl) && config.databaseUrl !== ':memory:') {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  }
  const store = opts.store ?? (await openStore(config.databaseUrl));
  const bus = new MemoryBus(log);
  const metrics = createMetrics();
  const feed = new ChangeFeed({ store, bus, log, metrics });
  const catalog = new Catalog(store);
  const jobs = new Jobs({ store, log, metrics });
  const ingestion = new IngestionService({ store, catalog, feed, limits: config.limits, metrics });
  const ctx: AudientContext = {
    config,
    log,
    store,
    bus,
    metrics,
    feed,
    tenancy: new Tenancy(store),
    catalog,
    ingestion,
    batches: new BatchIngestion({ config, catalog, ingestion, jobs }),
    failed: new FailedRecords({ store, ingestion }),
    jobs,
    profiles: new ProfileService({ store, catalog, jobs, feed }),
    async close() {
      await jobs.idle();
      await feed.stop();
      await bus.close();
      await store.close();
    },
  };
  feed.poke();
  return ctx;
}
