/** Versioned SQLite migrations; append only, never edit a published one. */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sandboxes (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE api_keys (
    id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL REFERENCES sandboxes(id), name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, instance_admin INTEGER NOT NULL,
    created_at TEXT NOT NULL, revoked_at TEXT);
  CREATE TABLE schemas (sandbox_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sandbox_id, id));
  CREATE TABLE datasets (sandbox_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sandbox_id, id));
  CREATE TABLE namespaces (sandbox_id TEXT NOT NULL, code_key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sandbox_id, code_key));
  CREATE TABLE identities (
    sandbox_id TEXT NOT NULL, ns TEXT NOT NULL, id TEXT NOT NULL, graph_id TEXT NOT NULL,
    type TEXT NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (sandbox_id, ns, id)) WITHOUT ROWID;
  CREATE INDEX identities_graph ON identities (sandbox_id, graph_id);
  CREATE TABLE fragments (
    sandbox_id TEXT NOT NULL, dataset_id TEXT NOT NULL, ns TEXT NOT NULL, id TEXT NOT NULL,
    graph_id TEXT NOT NULL, attributes TEXT NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (sandbox_id, dataset_id, ns, id));
  CREATE INDEX fragments_graph ON fragments (sandbox_id, graph_id);
  CREATE TABLE events (
    sandbox_id TEXT NOT NULL, dataset_id TEXT NOT NULL, event_id TEXT NOT NULL, graph_id TEXT NOT NULL,
    ts INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sandbox_id, dataset_id, event_id));
  CREATE INDEX events_graph ON events (sandbox_id, graph_id, ts);
  CREATE TABLE lake_records (seq INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, dataset_id TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL);
  CREATE INDEX lake_dataset ON lake_records (sandbox_id, dataset_id);
  CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL);
  CREATE TABLE cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
  CREATE TABLE failed_records (
    id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, dataset_id TEXT NOT NULL, source TEXT NOT NULL,
    position INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, details TEXT NOT NULL,
    payload TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, replayed_at TEXT);
  CREATE INDEX failed_sandbox ON failed_records (sandbox_id, created_at);
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    state TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
  CREATE INDEX jobs_sandbox ON jobs (sandbox_id, created_at);
  `,
  `
  DROP INDEX events_graph;
  CREATE INDEX events_graph ON events (sandbox_id, graph_id, ts, event_id);
  CREATE TABLE audiences (sandbox_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sandbox_id, id));
  CREATE TABLE memberships (
    sandbox_id TEXT NOT NULL, profile_id TEXT NOT NULL, audience_id TEXT NOT NULL, status TEXT NOT NULL,
    last_qualification_time INTEGER NOT NULL, PRIMARY KEY (sandbox_id, profile_id, audience_id)) WITHOUT ROWID;
  CREATE INDEX memberships_audience ON memberships (sandbox_id, audience_id, profile_id);
  CREATE INDEX memberships_exited ON memberships (status, last_qualification_time);
  CREATE TABLE membership_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, audience_id TEXT NOT NULL,
    profile_id TEXT NOT NULL, status TEXT NOT NULL, at INTEGER NOT NULL);
  CREATE INDEX membership_events_sandbox ON membership_events (sandbox_id, seq);
  CREATE TABLE reevaluations (
    sandbox_id TEXT NOT NULL, profile_id TEXT NOT NULL, due_at INTEGER NOT NULL, PRIMARY KEY (sandbox_id, profile_id));
  CREATE INDEX reevaluations_due ON reevaluations (due_at);
  CREATE TABLE audience_sizes (
    sandbox_id TEXT NOT NULL, audience_id TEXT NOT NULL, at INTEGER NOT NULL, size INTEGER NOT NULL, source TEXT NOT NULL);
  CREATE INDEX audience_sizes_audience ON audience_sizes (sandbox_id, audience_id, at);
  `,
  `
  CREATE TABLE docs (sandbox_id TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sandbox_id, kind, id));
  `,
  `
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, dataflow_id TEXT NOT NULL, profile_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL, lease_until INTEGER, created_at INTEGER NOT NULL, last_error TEXT);
  CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
  CREATE INDEX outbox_dataflow ON outbox (sandbox_id, dataflow_id, status, id);
  CREATE INDEX outbox_profile ON outbox (sandbox_id, profile_id);
  CREATE TABLE activation_stats (
    sandbox_id TEXT NOT NULL, dataflow_id TEXT NOT NULL, hour INTEGER NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (sandbox_id, dataflow_id, hour, metric)) WITHOUT ROWID;
  `,
  // ID syncs: per partner (connection), the partner's user id of an ECID; by ECID for privacy deletes.
  `
  CREATE TABLE id_syncs (
    sandbox_id TEXT NOT NULL, partner_id TEXT NOT NULL, ecid TEXT NOT NULL, partner_uid TEXT NOT NULL, synced_at INTEGER NOT NULL,
    PRIMARY KEY (sandbox_id, partner_id, ecid)) WITHOUT ROWID;
  CREATE INDEX id_syncs_ecid ON id_syncs (sandbox_id, ecid);
  `,
  // Batch segmentation snapshots: one row per profile (fragments and events within retention as
  // one JSON text), refreshed from the change log at the start of each batch run.
  `
  CREATE TABLE profile_snapshots (
    sandbox_id TEXT NOT NULL, profile_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sandbox_id, profile_id));
  `,
  // Claiming leases the oldest due rows: pending ones and expired leases, each read in id order
  // from this index (the OR over outbox_due read every pending row and sorted them).
  `
  CREATE INDEX outbox_claim ON outbox (status, id);
  `,
  // Only exited memberships are looked up by time (the purge after their retention): a partial
  // index, as on PostgreSQL, keeps realized and existing rows out of it, so entering an audience
  // writes two index entries instead of three.
  `
  DROP INDEX memberships_exited;
  CREATE INDEX memberships_exited ON memberships (status, last_qualification_time) WHERE status = 'exited';
  `,
  // Leases are fenced: each claim stamps its rows with a random lease token, and settling a row
  // (finish, retry, dead letter) only applies while that token is still on it, so a runtime whose
  // lease expired and was re-leased elsewhere cannot settle it a second time. outbox_due is no
  // longer read (claims read outbox_claim): dropping it saves an index update per write.
  `
  ALTER TABLE outbox ADD COLUMN lease_token INTEGER;
  DROP INDEX outbox_due;
  `,
  // Payloads live beside the outbox rows (same id), so leasing and settling rewrite small rows
  // (status, lease fields) instead of each row with its whole export; a deleted outbox row takes
  // its payload with it, whichever statement deletes it.
  `
  CREATE TABLE outbox_payloads (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
  INSERT INTO outbox_payloads (id, payload) SELECT id, payload FROM outbox;
  ALTER TABLE outbox DROP COLUMN payload;
  CREATE TRIGGER outbox_payloads_gc AFTER DELETE ON outbox BEGIN DELETE FROM outbox_payloads WHERE id = old.id; END;
  `,
  // Taking a due re-evaluation leases it (lease = when it is due again if its taker never
  // finishes; due_at then holds only requests made after the take, the maximum safe integer
  // when there are none), so a crash between the take and the evaluation's writes cannot lose
  // a window expiry. Only leased rows are in the lease index.
  `
  ALTER TABLE reevaluations ADD COLUMN lease INTEGER;
  CREATE INDEX reevaluations_lease ON reevaluations (lease) WHERE lease IS NOT NULL;
  `,
  // Privacy deletes leave a tombstone of the profile id (kept as long as exited memberships),
  // and membership writes skip the puts and events of a tombstoned profile: an evaluation that
  // read the profile just before its delete can no longer publish a membership event about the
  // deleted person after the delete.
  `
  CREATE TABLE deleted_profiles (
    sandbox_id TEXT NOT NULL, profile_id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (sandbox_id, profile_id)) WITHOUT ROWID;
  `,
];
