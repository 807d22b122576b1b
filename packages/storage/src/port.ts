/**
 * The storage port: everything Audient persists, behind one interface with two adapters
 * (SQLite, the embedded default, and PostgreSQL). Every method is scoped by sandbox; no method
 * can read or write across sandboxes except the instance-level ones (sandboxes, key lookup).
 */
import type {
  DatasetDef,
  ErrorDetail,
  IdentityRef,
  IngestSnapshot,
  NamespaceDef,
  ProfileChange,
  SchemaDef,
  StoredFragment,
  StoredIdentity,
  WritePlan,
} from '@audient/core';

/** A tenant: every object belongs to exactly one. */
export interface SandboxRow {
  id: string;
  name: string;
  createdAt: string;
}

/** An API key as stored: only its hash, never the key. */
export interface ApiKeyRow {
  id: string;
  sandboxId: string;
  name: string;
  keyHash: string;
  /** Role name; fine-grained permissions hang off it (see the permissions issue). */
  role: string;
  /** May create sandboxes (and their first key). */
  instanceAdmin: boolean;
  createdAt: string;
  revokedAt: string | null;
}

/** A change as read back from the feed. */
export interface ChangeRow {
  seq: number;
  sandboxId: string;
  change: ProfileChange;
  at: number;
}

/** A stored experience event. */
export interface EventRow {
  datasetId: string;
  eventId: string;
  timestamp: number;
  body: Record<string, unknown>;
}

/** A record that was refused, kept with why, until it is replayed or discarded. */
export interface FailedRecordRow {
  id: string;
  sandboxId: string;
  datasetId: string;
  /** Where it came from: `stream`, `batch:<jobId>`, `replay:<id>`. */
  source: string;
  /** Position in its request or file (0-based index or line number). */
  position: number;
  code: string;
  message: string;
  details: ErrorDetail[];
  /** The record as received (JSON text, or the raw line when it was not even JSON). */
  payload: string;
  status: 'failed' | 'replayed' | 'discarded';
  createdAt: string;
  replayedAt: string | null;
}

/** A long-running job (batch ingestion, privacy delete, later segmentation runs). */
export interface JobRow {
  id: string;
  sandboxId: string;
  kind: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  /** Kind-specific state: counts, progress, parameters, error. */
  state: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** Paging for lists: newest first, `cursor` is the last id seen. */
export interface Page {
  limit: number;
  cursor?: string | undefined;
}

/** Reads and writes of one ingestion batch, inside one transaction. */
export interface IngestTx {
  /** Every member of every graph that holds one of `identities`. */
  graphMembersOf(identities: readonly IdentityRef[]): Promise<StoredIdentity[]>;
  /** Existing fragments for (dataset, primary identity) pairs, keyed by fragmentKey. */
  fragments(keys: ReadonlyArray<{ datasetId: string; identity: IdentityRef }>): Promise<IngestSnapshot['fragments']>;
  /** Which (dataset, event id) pairs are already stored, as eventKey strings. */
  existingEvents(keys: ReadonlyArray<{ datasetId: string; eventId: string }>): Promise<Set<string>>;
  /** Applies a plan; returns the change sequence numbers in order. */
  apply(plan: WritePlan, now: number): Promise<number[]>;
  /** Stores records of datasets not enabled for profile (kept, not unified). */
  appendLake(rows: ReadonlyArray<{ datasetId: string; body: Record<string, unknown> }>, now: number): Promise<void>;
}

/** The storage port. */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Runs pending migrations (idempotent). */
  migrate(): Promise<void>;
  close(): Promise<void>;

  createSandbox(row: { id: string; name: string }): Promise<void>;
  getSandbox(id: string): Promise<SandboxRow | undefined>;
  listSandboxes(): Promise<SandboxRow[]>;

  createApiKey(row: Omit<ApiKeyRow, 'createdAt' | 'revokedAt'>): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRow | undefined>;
  listApiKeys(sandboxId: string): Promise<ApiKeyRow[]>;
  revokeApiKey(sandboxId: string, id: string): Promise<boolean>;

  putSchema(sandboxId: string, schema: SchemaDef): Promise<void>;
  getSchema(sandboxId: string, id: string): Promise<SchemaDef | undefined>;
  listSchemas(sandboxId: string): Promise<SchemaDef[]>;
  putDataset(sandboxId: string, dataset: DatasetDef): Promise<void>;
  getDataset(sandboxId: string, id: string): Promise<DatasetDef | undefined>;
  listDatasets(sandboxId: string): Promise<DatasetDef[]>;
  putNamespace(sandboxId: string, ns: NamespaceDef): Promise<void>;
  listNamespaces(sandboxId: string): Promise<NamespaceDef[]>;

  /** Runs one ingestion batch atomically; writers of one sandbox are serialised. */
  ingest<T>(sandboxId: string, fn: (tx: IngestTx) => Promise<T>): Promise<T>;

  /** The graph (profile id) an identity belongs to. */
  findProfileId(sandboxId: string, identity: IdentityRef): Promise<string | undefined>;
  profileIdentities(sandboxId: string, profileId: string): Promise<StoredIdentity[]>;
  profileFragments(sandboxId: string, profileId: string): Promise<StoredFragment[]>;
  /** Events of a profile, newest first; `before` pages by (timestamp, eventId). */
  profileEvents(
    sandboxId: string,
    profileId: string,
    opts: { limit: number; before?: { timestamp: number; eventId: string } | undefined },
  ): Promise<EventRow[]>;
  /** Removes a profile's identities, fragments and events and records a delete change. Returns counts. */
  deleteProfile(sandboxId: string, profileId: string, now: number): Promise<{ identities: number; fragments: number; events: number }>;
  countLake(sandboxId: string, datasetId: string): Promise<number>;

  /** Changes after `afterSeq`, oldest first. */
  readChanges(afterSeq: number, limit: number): Promise<ChangeRow[]>;
  getCursor(name: string): Promise<number>;
  setCursor(name: string, seq: number): Promise<void>;

  addFailedRecords(rows: ReadonlyArray<Omit<FailedRecordRow, 'status' | 'createdAt' | 'replayedAt'>>): Promise<void>;
  listFailedRecords(
    sandboxId: string,
    filter: { datasetId?: string | undefined; source?: string | undefined; status?: FailedRecordRow['status'] | undefined },
    page: Page,
  ): Promise<FailedRecordRow[]>;
  getFailedRecords(sandboxId: string, ids: readonly string[]): Promise<FailedRecordRow[]>;
  setFailedStatus(sandboxId: string, ids: readonly string[], status: FailedRecordRow['status'], at: string): Promise<void>;
  /** Deletes failed records whose payload mentions any of `needles` (privacy delete). */
  purgeFailedRecords(sandboxId: string, needles: readonly string[]): Promise<number>;

  putJob(job: JobRow): Promise<void>;
  getJob(sandboxId: string, id: string): Promise<JobRow | undefined>;
  listJobs(sandboxId: string, kind: string | undefined, page: Page): Promise<JobRow[]>;
}
