/**
 * Configuration, read in one place: from explicit options first, then `AUDIENT_*` environment
 * variables, then defaults. Everything else receives a `Config`; nothing else reads process.env.
 */
import { join, resolve } from 'node:path';
import { DEFAULT_LIMITS, type IngestLimits } from '@audient/core';

/** Every setting of a running Audient. */
export interface Config {
  /** Where the embedded database, the admin key and uploads live. */
  dataDir: string;
  /** `postgres://…` for PostgreSQL; otherwise a SQLite file path. */
  databaseUrl: string;
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
}

/** Settings given on the command line (all optional). */
export type ConfigOverrides = Partial<Omit<Config, 'limits'>> & { limits?: Partial<IngestLimits> };

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** Builds the configuration. */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = resolve(overrides.dataDir ?? env['AUDIENT_DATA_DIR'] ?? '.audient');
  return {
    dataDir,
    databaseUrl: overrides.databaseUrl ?? env['AUDIENT_DATABASE_URL'] ?? join(dataDir, 'audient.db'),
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
  };
}
