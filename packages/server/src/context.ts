/**
 * Builds a running Audient from a Config: store, bus, change feed and services. The HTTP app
 * and the CLI both start from here, so there is one wiring of the parts.
 */
import { mkdirSync } from 'node:fs';
import { openStore, type Store } from '@audient/storage';
import pino, { type Logger } from 'pino';
import { MemoryBus } from './bus/memory-bus.js';
import { newUuid } from './ids.js';
import { SecretBox } from './secrets.js';
import { ActivationService } from './activation/activation.js';
import { Alerts } from './activation/alerts.js';
import { Connections } from './activation/connections.js';
import { Dataflows } from './activation/dataflows.js';
import { DEFAULT_DELIVERY, DeliveryRuntime, type DeliveryConfig } from './activation/delivery.js';
import { Datastreams } from './edge/datastreams.js';
import { EdgeService } from './edge/edge-service.js';
import { MembershipWebhooks } from './services/webhooks.js';
import type { Bus } from './bus/port.js';
import type { Config } from './config.js';
import { createMetrics, type Metrics } from './metrics.js';
import { AudienceInspector } from './services/audience-inspect.js';
import { AudienceService } from './services/audiences.js';
import { BatchIngestion } from './services/batch-ingestion.js';
import { BatchSegmentation } from './services/batch-segmentation.js';
import { Catalog } from './services/catalog.js';
import { ChangeFeed } from './services/change-feed.js';
import { FailedRecords } from './services/failed-records.js';
import { IngestionService } from './services/ingestion.js';
import { Jobs } from './services/jobs.js';
import { ProfileService } from './services/profiles.js';
import { SegmentationEngine } from './services/segmentation.js';
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
  audiences: AudienceService;
  inspector: AudienceInspector;
  segmentation: SegmentationEngine;
  batchSegmentation: BatchSegmentation;
  webhooks: MembershipWebhooks;
  connections: Connections;
  dataflows: Dataflows;
  activation: ActivationService;
  delivery: DeliveryRuntime;
  alerts: Alerts;
  datastreams: Datastreams;
  edge: EdgeService;
  secrets: SecretBox;
  /** The clock every service reads (injectable for tests). */
  now: () => number;
  /** Stops background work and closes the store. */
  close(): Promise<void>;
}

/** Opens the store (running migrations) and wires the services. `store` may be given by tests. */
export async function createContext(
  config: Config,
  opts: { log?: Logger; store?: Store; now?: () => number; delivery?: Partial<DeliveryConfig> } = {},
): Promise<AudientContext> {
  const now = opts.now ?? Date.now;
  const log = opts.log ?? pino({ level: config.logLevel });
  if (!opts.store && !/^postgres(ql)?:/.test(config.databaseUrl) && config.databaseUrl !== ':memory:') {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  }
  const store = opts.store ?? (await openStore(config.databaseUrl, { sqlite: { cacheMB: config.sqliteCacheMB } }));
  const bus = new MemoryBus(log);
  const metrics = createMetrics();
  const feed = new ChangeFeed({ store, bus, log, metrics });
  const catalog = new Catalog(store);
  const jobs = new Jobs({ store, log, metrics });
  const ingestion = new IngestionService({ store, catalog, feed, limits: config.limits, metrics, now, groupWaitMs: config.groupCommitWaitMs });
  const secrets = SecretBox.open(config.dataDir, config.secretKey);
  const webhooks = new MembershipWebhooks({ store, bus, secrets, log, now });
  const audiences = new AudienceService({ store, catalog, config: config.segmentation, newId: newUuid });
  const segmentation = new SegmentationEngine({ store, bus, catalog, audiences, config: config.segmentation, log, metrics, now });
  ingestion.onEventsStored((sandboxId, events, created) => segmentation.eventsStored(sandboxId, events, created));
  const batchSegmentation = new BatchSegmentation({ store, bus, jobs, engine: segmentation, audiences, config: config.segmentation, log, now });
  const connections = new Connections({ store, secrets });
  const dataflows = new Dataflows({ store, catalog, audiences, connections });
  const activation = new ActivationService({ store, bus, catalog, audiences, connections, dataflows, jobs, log, now });
  const delivery = new DeliveryRuntime({ store, connections, dataflows, log, metrics, config: { ...DEFAULT_DELIVERY, ...config.delivery, ...opts.delivery }, now });
  activation.onQueued(() => delivery.poke());
  const alerts = new Alerts({ store, dataflows, secrets, log, now, everyMs: config.alertCheckMs });
  const datastreams = new Datastreams({ store, catalog, now });
  const edge = new EdgeService({ store, catalog, ingestion, segmentation, connections, dataflows, datastreams, audiences, log, now });
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
    audiences,
    inspector: new AudienceInspector({ store, catalog, audiences, config: config.segmentation, now }),
    segmentation,
    batchSegmentation,
    webhooks,
    secrets,
    connections,
    dataflows,
    activation,
    delivery,
    alerts,
    datastreams,
    edge,
    now,
    async close() {
      batchSegmentation.stopSchedule();
      await segmentation.stop();
      await webhooks.stop();
      await activation.stop();
      await delivery.stop();
      await alerts.stop();
      await jobs.idle();
      await feed.stop();
      await bus.close();
      // Confirmations of evaluations that were still running when segmentation stopped.
      await segmentation.flushConfirmations();
      await store.close();
    },
  };
  segmentation.start();
  webhooks.start();
  activation.start();
  delivery.start();
  alerts.start();
  batchSegmentation.startSchedule();
  feed.poke();
  return ctx;
}
