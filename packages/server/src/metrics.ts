/** Prometheus metrics of one Audient process (one registry per app, so tests can run several). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The metrics every part of the server records into. */
export interface Metrics {
  registry: Registry;
  recordsIngested: Counter<'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  changesPublished: Counter;
  changeFeedLag: Gauge;
  jobsFinished: Counter<'kind' | 'status'>;
  exportsDelivered: Counter<'outcome' | 'dataflow'>;
  deliveryLatency: Histogram;
  /** Events the hot profile views hold together (read from `viewsHeld` when scraped). */
  viewEvents: Gauge;
  /** The estimated heap those events take, bytes (read from `viewsHeld` when scraped). */
  viewBytes: Gauge;
  /** What `viewEvents` and `viewBytes` report: set by the segmentation engine. */
  viewsHeld: () => { events: number; bytes: number };
  /** Profiles whose events a hot evaluation (edge, streaming) took from their view or read from the store. */
  hotEventReads: Counter<'source'>;
  /** Audiences the segmentation engine evaluated on a profile (one per audience and profile). */
  audienceEvaluations: Counter;
  /** Membership confirmations (realized → existing) written off the evaluation's path, by outcome. */
  membershipConfirmations: Counter<'outcome'>;
}

/** Creates the registry and its metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'audient_' });
  const metrics: Metrics = {
    registry,
    viewEvents: new Gauge({
      name: 'audient_view_events',
      help: 'Events the hot profile views hold in memory together',
      registers: [registry],
      collect() {
        this.set(metrics.viewsHeld().events);
      },
    }),
    viewBytes: new Gauge({
      name: 'audient_view_bytes',
      help: "Estimated heap of the events the hot profile views hold, only the parts the sandbox's audiences read (bounded by AUDIENT_VIEW_MB)",
      registers: [registry],
      collect() {
        this.set(metrics.viewsHeld().bytes);
      },
    }),
    viewsHeld: () => ({ events: 0, bytes: 0 }),
    hotEventReads: new Counter({
      name: 'audient_hot_event_reads_total',
      help: "Profiles whose events an edge or streaming evaluation took from the profile's view (view) or read from the store (store)",
      labelNames: ['source'],
      registers: [registry],
    }),
    audienceEvaluations: new Counter({
      name: 'audient_audience_evaluations_total',
      help: "Audiences evaluated on a profile (one per audience and profile) by the edge, the streaming engine and time-driven re-evaluations; an audience skipped because nothing it reads changed is not counted",
      registers: [registry],
    }),
    membershipConfirmations: new Counter({
      name: 'audient_membership_confirmations_total',
      help: 'Membership confirmations (realized to existing) by outcome: written, stale (the membership had changed since, so nothing was written) or dropped (given up after three failed tries; the membership stays realized until confirmed again)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    exportsDelivered: new Counter({
      name: 'audient_exports_total',
      help: 'Profile exports by dataflow and outcome (activated, retried, failed)',
      labelNames: ['outcome', 'dataflow'],
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'audient_export_delivery_seconds',
      help: 'Time from an export being queued to its delivery',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300],
      registers: [registry],
    }),
    recordsIngested: new Counter({
      name: 'audient_records_ingested_total',
      help: 'Records received for ingestion, by outcome',
      labelNames: ['status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'audient_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    changesPublished: new Counter({
      name: 'audient_profile_changes_published_total',
      help: 'Profile changes published on the change feed',
      registers: [registry],
    }),
    changeFeedLag: new Gauge({
      name: 'audient_change_feed_lag',
      help: 'Changes written but not yet published',
      registers: [registry],
    }),
    jobsFinished: new Counter({
      name: 'audient_jobs_finished_total',
      help: 'Jobs finished, by kind and status',
      labelNames: ['kind', 'status'],
      registers: [registry],
    }),
  };
  return metrics;
}
