/**
 * The storage port: everything Audient persists, behind one interface with two adapters
 * (SQLite, the embedded default, and PostgreSQL). Every method is scoped by sandbox; no method
 * can read or write across sandboxes except the instance-level ones (sandboxes, key lookup).
 */
import type {
  DatasetDef,
  ExportRecord,
  EvaluationMethod,
  Membership,
  MergePolicy,
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

/**
 * How long a taken re-evaluation stays leased to its taker: long enough for one evaluation
 * pass, short enough that a crashed taker delays a window expiry by at most this.
 */
export const REEVALUATION_LEASE_MS = 60_000;

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

/** An audience as stored. */
export interface AudienceRow {
  id: string;
  name: string;
  description: string;
  /** Source text in the audience language. */
  query: string;
  mergePolicy: MergePolicy;
  /** How the engine evaluates it, and why (human-readable). */
  method: EvaluationMethod;
  methodReason: string;
  /** Audience ids referenced by inSegment. */
  dependsOn: string[];
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** One membership write: `membership: null` deletes it. */
export interface MembershipWrite {
  profileId: string;
  audienceId: string;
  membership: Membership | null;
  /** Publish a membership event (entered or left). */
  event?: 'realized' | 'exited' | undefined;
}

/** A confirmation: the membership entered at `lastQualificationTime` is still held (realized → existing). */
export interface MembershipConfirmation {
  profileId: string;
  audienceId: string;
  lastQualificationTime: number;
}

/** A membership event as logged (replayable by position). */
export interface MembershipEventRow {
  seq: number;
  sandboxId: string;
  audienceId: string;
  profileId: string;
  status: 'realized' | 'exited';
  at: number;
}

/**
 * A run of consecutive profiles of a batch page: their ids, their snapshot texts as one JSON
 * array text (each element what `decodeSnapshot` reads), and their current memberships as one
 * JSON array text (per profile `[[audienceId, status, lastQualificationTime]…]`), the three in
 * the same order (not necessarily id order); `last` is the chunk's greatest id. A page comes as
 * a few large texts rather than strings per profile: the job's thread only hands them to its
 * workers, and V8 does not copy large strings in its young-generation collections.
 */
export interface BatchProfileChunk {
  profileIds: string[];
  snapshots: string;
  memberships: string;
  last: string;
}

/** One page of a batch run's membership writes (see `Store.writeBatchMemberships`). */
export interface BatchMembershipPage {
  /** Memberships entered (`realized`) or left (`exited`) at `now`, each logged as an event, in this order; one per profile and audience. */
  changes: ReadonlyArray<{ profileId: string; audienceId: string; status: 'realized' | 'exited' }>;
  /**
   * Confirmations (realized → existing, lastQualificationTime kept), set-based: every membership
   * of `profileIds` in `audienceIds` still `realized` becomes `existing`, except the pairs in
   * `changes` and in `unconfirmed` (not evaluated).
   */
  confirm: {
    profileIds: readonly string[];
    audienceIds: readonly string[];
    unconfirmed: ReadonlyArray<{ profileId: string; audienceId: string }>;
  };
  /** Re-evaluations to ask for, as `scheduleReevaluations`. */
  schedule: ReadonlyArray<{ profileId: string; dueAt: number }>;
}

/** A profile as the batch evaluator reads it from its snapshot: fragments, and events oldest first. */
export interface ProfileSnapshot {
  profileId: string;
  fragments: StoredFragment[];
  events: EventRow[];
}

/** One profile as `Store.readProfile` returns it (fresh objects: the caller may modify them). */
export interface ProfileRead {
  profileId: string;
  identities: StoredIdentity[];
  fragments: StoredFragment[];
  memberships: Membership[];
  events: EventRow[];
}

/** A point of an audience's size history. */
export interface AudienceSizePoint {
  at: number;
  size: number;
  source: 'batch' | 'streaming';
}

/** An export waiting in (or dead in) the durable outbox. */
export interface OutboxRow {
  id: number;
  sandboxId: string;
  dataflowId: string;
  profileId: string;
  idempotencyKey: string;
  payload: ExportRecord;
  status: 'pending' | 'inflight' | 'dead';
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  lastError: string | null;
  /**
   * The lease token of the claim that returned the row (claimed rows only): settling the row
   * (`settleExports`) applies only while this lease is still the row's.
   */
  lease?: number;
}

/** Outcomes of leased exports, each fenced by the lease token its claim returned. */
export interface ExportSettlement {
  /** Delivered: removed. */
  done: ReadonlyArray<{ id: number; lease: number }>;
  /** Back to pending, due at `nextAttemptAt`, one more attempt counted. */
  retry: ReadonlyArray<{ id: number; lease: number; nextAttemptAt: number; lastError: string }>;
  /** To the dead letters with the reason, one more attempt counted. */
  dead: ReadonlyArray<{ id: number; lease: number; lastError: string }>;
}

/**
 * An ID sync: a partner's own user id for one of our ECIDs, per partner (the connection whose
 * destination addresses users by synced ids). One id per partner and ECID; a later sync of the
 * same ECID replaces it.
 */
export interface IdSyncRow {
  sandboxId: string;
  partnerId: string;
  ecid: string;
  partnerUid: string;
  /** When it was last synced, epoch ms. */
  syncedAt: number;
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
  /**
   * Applies a plan; returns the change sequence numbers in order. `last`: the batch does nothing
   * after it, so a store may commit the batch with it (PostgreSQL sends a batch that read nothing
   * from the database as one statement); a batch that fails after a last apply may be committed.
   */
  apply(plan: WritePlan, now: number, opts?: { last?: boolean }): Promise<number[]>;
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
  /**
   * Everything a profile read needs, read at once: the graph holding `identity` (undefined when
   * none does), its identities (by ns, id), fragments, memberships, and its newest `eventsLimit`
   * events before `before` (newest first). Optional: without it, the reads above are made one by one.
   */
  readProfile?(
    sandboxId: string,
    identity: IdentityRef,
    opts: { eventsLimit: number; before?: { timestamp: number; eventId: string } | undefined },
  ): Promise<ProfileRead | undefined>;
  /** Removes a profile's identities, fragments, events, memberships, batch snapshot, pending re-evaluations and queued exports, and records a delete change. */
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

  putAudience(sandboxId: string, audience: AudienceRow): Promise<void>;
  getAudience(sandboxId: string, id: string): Promise<AudienceRow | undefined>;
  listAudiences(sandboxId: string): Promise<AudienceRow[]>;
  /** Deletes an audience with its memberships and size history. */
  deleteAudience(sandboxId: string, id: string): Promise<boolean>;

  /** Current memberships of many profiles (absent profiles map to []). */
  memberships(sandboxId: string, profileIds: readonly string[]): Promise<Map<string, Membership[]>>;
  /** Writes memberships and appends their events atomically; returns the events logged, in order. */
  writeMemberships(sandboxId: string, writes: readonly MembershipWrite[], now: number): Promise<MembershipEventRow[]>;
  /**
   * Marks memberships `existing` that are still `realized` from the entry each confirmation
   * names (same lastQualificationTime); any other row (exited since, entered again, deleted) is
   * left as it is, so a confirmation applied late never undoes a later write. Returns how many
   * rows changed.
   */
  confirmMemberships(sandboxId: string, confirmations: readonly MembershipConfirmation[]): Promise<number>;
  /** Members of an audience (status realized/existing unless `statuses` says otherwise), paged by profile id. */
  listMembers(
    sandboxId: string,
    audienceId: string,
    opts: { statuses: ReadonlyArray<Membership['status']>; limit: number; after?: string | undefined },
  ): Promise<Array<{ profileId: string; membership: Membership }>>;
  countMembers(sandboxId: string, audienceId: string): Promise<Record<Membership['status'], number>>;
  /** Membership events after `afterSeq`, oldest first (all sandboxes when sandboxId is undefined). */
  readMembershipEvents(sandboxId: string | undefined, afterSeq: number, limit: number): Promise<MembershipEventRow[]>;
  /** The seq of a sandbox's latest membership event (0 when none). */
  membershipEventHead(sandboxId: string): Promise<number>;
  /** Deletes exited memberships whose last change is older than `before` (epoch ms). */
  purgeExitedMemberships(before: number): Promise<number>;

  /** How many profiles (identity graphs) a sandbox holds. */
  countProfiles(sandboxId: string): Promise<number>;
  /** Profile ids of a sandbox in id order, after `after`. */
  listProfileIds(sandboxId: string, after: string | undefined, limit: number): Promise<string[]>;
  /**
   * Events (at or after `eventsSince`, oldest first) of many profiles at once, as loadProfiles
   * reads them, for evaluators that hold the fragments already. Optional: without it,
   * loadProfiles is used.
   */
  loadEvents?(sandboxId: string, profileIds: readonly string[], eventsSince: number): Promise<Map<string, EventRow[]>>;
  /** Fragments and events (at or after `eventsSince`, oldest first) of many profiles at once. */
  loadProfiles(
    sandboxId: string,
    profileIds: readonly string[],
    eventsSince: number,
  ): Promise<Map<string, { fragments: StoredFragment[]; events: EventRow[] }>>;

  /**
   * The seq of the latest change (0 when none), read while no write of the sandbox is in flight:
   * every change of the sandbox up to it is committed, and later ones will have higher seqs.
   */
  changeHead(sandboxId: string): Promise<number>;
  /**
   * Rebuilds the batch-evaluation snapshots (one row per profile: its fragments and its events
   * at or after `eventsSince`) of `profileIds`, or of every profile of the sandbox when undefined
   * (stale rows of profiles that no longer exist are removed either way). Returns how many
   * snapshots were written and removed.
   */
  refreshProfileSnapshots(sandboxId: string, profileIds: readonly string[] | undefined, eventsSince: number): Promise<{ written: number; removed: number }>;
  /** Snapshots in profile id order after `after`; events at or after `eventsSince`, oldest first. */
  scanProfileSnapshots(sandboxId: string, after: string | undefined, limit: number, eventsSince: number): Promise<ProfileSnapshot[]>;

  /**
   * The next `limit` snapshots after `after` in profile id order, with the profiles' memberships,
   * in chunks of up to `chunk` consecutive profiles (the batch job's read).
   */
  scanBatchProfiles(sandboxId: string, after: string | undefined, limit: number, chunk: number): Promise<BatchProfileChunk[]>;
  /**
   * Writes a page of a batch run atomically: confirmations, changes with their events, and
   * re-evaluations, each as one set-based statement. Returns the events logged, in order.
   */
  writeBatchMemberships(sandboxId: string, page: BatchMembershipPage, now: number): Promise<MembershipEventRow[]>;

  /**
   * Asks for profiles to be re-evaluated at their `dueAt` (per profile, the earliest request
   * wins). A request made while the profile's re-evaluation is leased is kept for after it.
   */
  scheduleReevaluations(sandboxId: string, items: ReadonlyArray<{ profileId: string; dueAt: number }>): Promise<void>;
  /**
   * Leases and returns up to `limit` re-evaluations due at or before `now` (and those whose
   * lease expired), earliest first: each stays stored, out of other takers' reach, until
   * `now + REEVALUATION_LEASE_MS`, when it is due again unless `finishReevaluations` removed it.
   */
  takeDueReevaluations(now: number, limit: number): Promise<Array<{ sandboxId: string; profileId: string; dueAt: number }>>;
  /**
   * Ends the leases `takeDueReevaluations(takenAt, …)` took on these profiles, once their
   * evaluation committed: a re-evaluation asked for meanwhile stays pending, the rest are removed.
   * A lease since taken again (after it expired) is left to its new holder.
   */
  finishReevaluations(sandboxId: string, profileIds: readonly string[], takenAt: number): Promise<void>;

  addAudienceSize(sandboxId: string, audienceId: string, point: AudienceSizePoint): Promise<void>;
  audienceSizes(sandboxId: string, audienceId: string, limit: number): Promise<AudienceSizePoint[]>;

  /**
   * Generic documents of a sandbox, by kind (webhooks, connections, dataflows, datastreams…):
   * small JSON objects read and written whole. `kind` is a fixed name chosen by the code.
   */
  putDoc(sandboxId: string, kind: string, id: string, body: unknown): Promise<void>;
  getDoc<T>(sandboxId: string, kind: string, id: string): Promise<T | undefined>;
  listDocs<T>(sandboxId: string, kind: string): Promise<T[]>;
  deleteDoc(sandboxId: string, kind: string, id: string): Promise<boolean>;

  /** Writes exports to the durable outbox (before anything is sent). */
  enqueueExports(rows: ReadonlyArray<Pick<OutboxRow, 'sandboxId' | 'dataflowId' | 'profileId' | 'idempotencyKey' | 'payload' | 'createdAt'>>): Promise<void>;
  /**
   * Leases due exports: pending ones whose next attempt is due, and in-flight ones whose lease
   * expired (their worker died). They become in-flight until `now + leaseMs`. Oldest first.
   */
  claimExports(now: number, limit: number, leaseMs: number): Promise<OutboxRow[]>;
  /**
   * Applies delivery outcomes in one transaction, each only to a row that still carries the
   * given lease (a row whose lease expired and was taken by another claim is left to that
   * claim). Returns the ids it applied to.
   */
  settleExports(outcomes: ExportSettlement): Promise<number[]>;
  /** Outbox rows of a sandbox by status (dead letters: status dead), oldest first, after id `after`. */
  listOutbox(sandboxId: string, filter: { dataflowId?: string | undefined; status: OutboxRow['status'] }, page: { limit: number; after?: number | undefined }): Promise<OutboxRow[]>;
  /** Moves dead letters back to pending (all of a dataflow, or the given ids); returns how many. */
  requeueDeadLetters(sandboxId: string, which: { ids: readonly number[] } | { dataflowId: string }, now: number): Promise<number>;
  /** Counts by status and the creation time of the oldest pending export. */
  outboxCounts(sandboxId: string, dataflowId: string): Promise<{ pending: number; inflight: number; dead: number; oldestPendingAt: number | null }>;
  /** Adds to per-hour activation metrics (`max:` metrics keep the maximum instead of a sum). */
  addActivationStats(sandboxId: string, dataflowId: string, hour: number, deltas: Readonly<Record<string, number>>): Promise<void>;
  /** Per-hour metrics since `sinceHour` (epoch ms of the hour), oldest first. */
  activationStats(sandboxId: string, dataflowId: string, sinceHour: number): Promise<Array<{ hour: number; metrics: Record<string, number> }>>;

  /** Records ID syncs (insert, or replace the partner id and time of an already synced ECID). */
  putIdSyncs(rows: readonly IdSyncRow[]): Promise<void>;
  /** A partner's syncs of these ECIDs (ECIDs never synced are absent), in the order of `ecids`. */
  idSyncsOf(sandboxId: string, partnerId: string, ecids: readonly string[]): Promise<IdSyncRow[]>;
  /** Removes a partner's syncs: all of them, or those of the given ECIDs; returns how many. */
  deleteIdSyncs(sandboxId: string, partnerId: string, ecids?: readonly string[]): Promise<number>;

  putJob(job: JobRow): Promise<void>;
  getJob(sandboxId: string, id: string): Promise<JobRow | undefined>;
  listJobs(sandboxId: string, kind: string | undefined, page: Page): Promise<JobRow[]>;
}
