/**
 * Configuration, read in one place: from explicit options first, then `AUDIENT_*` environment
 * variables, then defaults. Everything else receives a `Config`; nothing else reads process.env.
 */
import { join, resolve } from 'node:path';
import { DEFAULT_LIMITS, type IngestLimits } from '@audient/core';
import { DEFAULT_CACHE_MB } from '@audient/storage';

/** Every setting of a running Audient. */
export interface Config {
  /** Where the embedded database, the admin key and uploads live. */
  dataDir: string;
  /** `postgres://…` for PostgreSQL; otherwise a SQLite file path. */
  databaseUrl: string;
  /** SQLite page cache, MB (the embedded store only). */
  sqliteCacheMB: number;
  host: string;
  port: number;
  logLevel: string;
  limits: IngestLimits;
  /** Largest JSON request body, bytes. */
  maxBodyBytes: number;
  /** Largest batch file upload, bytes. */
  maxUploadBytes: number;
  /** Records per store transaction during batch file ingestion. */
  batchChunkSize: number;
  /**
   * How long an ingestion group transaction waits for more requests when writes arrive close
   * together, ms (0: never waits; see IngestionService.commit). Below saturation it trades up
   * to this much latency for a transaction and a pipeline pass shared by several requests.
   */
  groupCommitWaitMs: number;
  segmentation: SegmentationConfig;
  /** Delivery runtime settings (see activation/delivery.ts). */
  delivery: { leaseMs?: number; maxAttempts?: number; concurrency?: number; timeoutMs?: number; pollMs?: number };
  /** How often dataflow alert conditions are checked, ms (0: never). */
  alertCheckMs: number;
  /** Hex AES-256 key for secrets at rest; when absent, one is generated into the data dir. Secret. */
  secretKey: string | undefined;
  /**
   * Serve HTTPS with this PEM certificate (chain) and private key file (AUDIENT_TLS_CERT and
   * AUDIENT_TLS_KEY, both or neither). Browsers' Web SDKs (Adobe's `alloy`) only call an edge
   * domain over HTTPS, so pages point `edgeDomain` at an Audient serving TLS.
   */
  tls: { certFile: string; keyFile: string } | undefined;
}

/** Segmentation settings. */
export interface SegmentationConfig {
  /** Most audiences per sandbox, and per evaluation method (Adobe's guardrails by default). */
  maxAudiences: number;
  maxStreamingAudiences: number;
  maxEdgeAudiences: number;
  /** How far back events are kept for evaluation, ms (30 days). */
  eventRetentionMs: number;
  /** How long exited memberships are kept, ms (30 days). */
  exitedRetentionMs: number;
  /** Daily batch evaluation time, UTC `HH:MM`; empty disables the schedule. */
  batchTime: string;
  /** How often due re-evaluations (window expiries) are checked, ms. */
  tickMs: number;
  /**
   * Estimated heap the events of the hot profile views take together, at most, bytes (see
   * ProfileView in services/segmentation.ts).
   */
  viewBytes: number;
  /** A view unused this long gives its events up when another view needs the room, ms. */
  viewIdleMs: number;
}

/** Settings given on the command line (all optional). */
export type ConfigOverrides = Partial<Omit<Config, 'limits' | 'segmentation'>> & {
  limits?: Partial<IngestLimits>;
  segmentation?: Partial<SegmentationConfig>;
};

const DAY_MS = 24 * 60 * 60 * 1000;

function checkTime(v: string): string {
  if (v !== '' && !/^([01]\d|2[0-3]):[0-5]\d$/.test(v)) throw new Error(`AUDIENT_BATCH_TIME must be HH:MM (UTC) or empty, got ${JSON.stringify(v)}`);
  return v;
}

/** A whole number from the environment, at least `min` (1 unless a setting allows 0 to mean off). */
function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be ${min === 0 ? 'a whole number (0 or more)' : 'a positive integer'}, got ${JSON.stringify(raw)}`);
  return n;
}

function tlsFrom(overrides: ConfigOverrides, env: NodeJS.ProcessEnv): Config['tls'] {
  if (overrides.tls !== undefined) return overrides.tls;
  const certFile = env['AUDIENT_TLS_CERT'] || undefined;
  const keyFile = env['AUDIENT_TLS_KEY'] || undefined;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new Error('AUDIENT_TLS_CERT and AUDIENT_TLS_KEY go together: set both (PEM files) to serve HTTPS, or neither');
  return { certFile: resolve(certFile), keyFile: resolve(keyFile) };
}

/** Settings that were replaced: one still set would be ignored without a word, so it stops the start. */
const REPLACED: Record<string, string> = {
  AUDIENT_VIEW_EVENTS: 'AUDIENT_VIEW_MB (the estimated heap the hot profile views may take, MB; default 200)',
};

/** Builds the configuration. */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  for (const [old, now] of Object.entries(REPLACED)) {
    if (env[old] !== undefined) throw new Error(`${old} is no longer read: use ${now}`);
  }
  const dataDir = resolve(overrides.dataDir ?? env['AUDIENT_DATA_DIR'] ?? '.audient');
  return {
    dataDir,
    databaseUrl: overrides.databaseUrl ?? env['AUDIENT_DATABASE_URL'] ?? join(dataDir, 'audient.db'),
    sqliteCacheMB: overrides.sqliteCacheMB ?? intFrom(env, 'AUDIENT_SQLITE_CACHE_MB', DEFAULT_CACHE_MB),
    host: overrides.host ?? env['AUDIENT_HOST'] ?? '127.0.0.1',
    port: overrides.port ?? intFrom(env, 'AUDIENT_PORT', 8080),
    logLevel: overrides.logLevel ?? env['AUDIENT_LOG_LEVEL'] ?? 'info',
    limits: {
      maxEventBytes: overrides.limits?.maxEventBytes ?? intFrom(env, 'AUDIENT_MAX_EVENT_BYTES', DEFAULT_LIMITS.maxEventBytes),
      maxProfileBytes: overrides.limits?.maxProfileBytes ?? intFrom(env, 'AUDIENT_MAX_PROFILE_BYTES', DEFAULT_LIMITS.maxProfileBytes),
      maxIdentitiesPerRecord:
        overrides.limits?.maxIdentitiesPerRecord ?? intFrom(env, 'AUDIENT_MAX_IDENTITIES_PER_RECORD', DEFAULT_LIMITS.maxIdentitiesPerRecord),
      maxGraphSize: overrides.limits?.maxGraphSize ?? intFrom(env, 'AUDIENT_MAX_GRAPH_SIZE', DEFAULT_LIMITS.maxGraphSize),
    },
    maxBodyBytes: overrides.maxBodyBytes ?? intFrom(env, 'AUDIENT_MAX_BODY_BYTES', 16 * 1024 * 1024),
    maxUploadBytes: overrides.maxUploadBytes ?? intFrom(env, 'AUDIENT_MAX_UPLOAD_BYTES', 2 * 1024 * 1024 * 1024),
    batchChunkSize: overrides.batchChunkSize ?? intFrom(env, 'AUDIENT_BATCH_CHUNK_SIZE', 500),
    groupCommitWaitMs: overrides.groupCommitWaitMs ?? intFrom(env, 'AUDIENT_GROUP_COMMIT_WAIT_MS', 1, 0),
    secretKey: overrides.secretKey ?? env['AUDIENT_SECRET_KEY'],
    tls: tlsFrom(overrides, env),
    alertCheckMs: overrides.alertCheckMs ?? intFrom(env, 'AUDIENT_ALERT_CHECK_MS', 30_000),
    delivery: overrides.delivery ?? {
      leaseMs: intFrom(env, 'AUDIENT_DELIVERY_LEASE_MS', 30_000),
      maxAttempts: intFrom(env, 'AUDIENT_DELIVERY_MAX_ATTEMPTS', 8),
      concurrency: intFrom(env, 'AUDIENT_DELIVERY_CONCURRENCY', 32),
      timeoutMs: env['AUDIENT_DELIVERY_TIMEOUT_MS'] ? intFrom(env, 'AUDIENT_DELIVERY_TIMEOUT_MS', 2000) : 0,
      pollMs: intFrom(env, 'AUDIENT_DELIVERY_POLL_MS', 200),
    },
    segmentation: {
      maxAudiences: overrides.segmentation?.maxAudiences ?? intFrom(env, 'AUDIENT_MAX_AUDIENCES', 4000),
      maxStreamingAudiences: overrides.segmentation?.maxStreamingAudiences ?? intFrom(env, 'AUDIENT_MAX_STREAMING_AUDIENCES', 500),
      maxEdgeAudiences: overrides.segmentation?.maxEdgeAudiences ?? intFrom(env, 'AUDIENT_MAX_EDGE_AUDIENCES', 150),
      eventRetentionMs: overrides.segmentation?.eventRetentionMs ?? intFrom(env, 'AUDIENT_EVENT_RETENTION_DAYS', 30) * DAY_MS,
      exitedRetentionMs: overrides.segmentation?.exitedRetentionMs ?? intFrom(env, 'AUDIENT_EXITED_RETENTION_DAYS', 30) * DAY_MS,
      batchTime: overrides.segmentation?.batchTime ?? checkTime(env['AUDIENT_BATCH_TIME'] ?? '02:00'),
      tickMs: overrides.segmentation?.tickMs ?? intFrom(env, 'AUDIENT_SEGMENTATION_TICK_MS', 1000),
      viewBytes: overrides.segmentation?.viewBytes ?? intFrom(env, 'AUDIENT_VIEW_MB', 200) * 1024 * 1024,
      viewIdleMs: overrides.segmentation?.viewIdleMs ?? intFrom(env, 'AUDIENT_VIEW_IDLE_MS', 60_000),
    },
  };
}
