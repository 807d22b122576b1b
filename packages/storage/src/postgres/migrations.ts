import type pg from 'pg';

/**
 * Versioned PostgreSQL migrations; append only, never edit a published one.
 *
 * The tables mirror the SQLite ones. Choices that keep the port's types exact:
 * - epoch-ms columns are BIGINT (the pool parses INT8 to a JS number; epoch ms fit in a double);
 * - created/updated/revoked/replayed times are TEXT ISO strings, stored as given, so they read
 *   back byte for byte (TIMESTAMPTZ would reformat them);
 * - documents and bodies are JSONB;
 * - identifier and ordering columns use `COLLATE "C"` so that `ORDER BY id` and `id < $cursor`
 *   compare bytes like SQLite does, whatever the database's locale.
 * Statements are unqualified: the store's `search_path` picks the schema.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sandboxes (id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE api_keys (
    id TEXT COLLATE "C" PRIMARY KEY, sandbox_id TEXT COLLATE "C" NOT NULL REFERENCES sandboxes(id),
    name TEXT NOT NULL, key_hash TEXT COLLATE "C" NOT NULL UNIQUE, role TEXT NOT NULL,
    instance_admin BOOLEAN NOT NULL, created_at TEXT COLLATE "C" NOT NULL, revoked_at TEXT);
  CREATE INDEX api_keys_sandbox ON api_keys (sandbox_id, created_at);
  CREATE TABLE schemas (
    sandbox_id TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, body JSONB NOT NULL,
    PRIMARY KEY (sandbox_id, id));
  CREATE TABLE datasets (
    sandbox_id TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, body JSONB NOT NULL,
    PRIMARY KEY (sandbox_id, id));
  CREATE TABLE namespaces (
    sandbox_id TEXT COLLATE "C" NOT NULL, code_key TEXT COLLATE "C" NOT NULL, body JSONB NOT NULL,
    PRIMARY KEY (sandbox_id, code_key));
  CREATE TABLE identities (
    sandbox_id TEXT COLLATE "C" NOT NULL, ns TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL,
    graph_id TEXT COLLATE "C" NOT NULL, type TEXT NOT NULL, last_seen BIGINT NOT NULL,
    PRIMARY KEY (sandbox_id, ns, id));
  CREATE INDEX identities_graph ON identities (sandbox_id, graph_id);
  CREATE TABLE fragments (
    sandbox_id TEXT COLLATE "C" NOT NULL, dataset_id TEXT COLLATE "C" NOT NULL, ns TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL, graph_id TEXT COLLATE "C" NOT NULL, attributes JSONB NOT NULL, ts BIGINT NOT NULL,
    PRIMARY KEY (sandbox_id, dataset_id, ns, id));
  CREATE INDEX fragments_graph ON fragments (sandbox_id, graph_id);
  CREATE TABLE events (
    sandbox_id TEXT COLLATE "C" NOT NULL, dataset_id TEXT COLLATE "C" NOT NULL, event_id TEXT COLLATE "C" NOT NULL,
    graph_id TEXT COLLATE "C" NOT NULL, ts BIGINT NOT NULL, body JSONB NOT NULL,
    PRIMARY KEY (sandbox_id, dataset_id, event_id));
  CREATE INDEX events_graph ON events (sandbox_id, graph_id, ts, event_id);
  CREATE TABLE lake_records (
    seq BIGSERIAL PRIMARY KEY, sandbox_id TEXT COLLATE "C" NOT NULL, dataset_id TEXT COLLATE "C" NOT NULL,
    body JSONB NOT NULL, at BIGINT NOT NULL);
  CREATE INDEX lake_dataset ON lake_records (sandbox_id, dataset_id);
  CREATE TABLE changes (seq BIGSERIAL PRIMARY KEY, sandbox_id TEXT COLLATE "C" NOT NULL, body JSONB NOT NULL, at BIGINT NOT NULL);
  CREATE TABLE cursors (name TEXT COLLATE "C" PRIMARY KEY, seq BIGINT NOT NULL);
  CREATE TABLE failed_records (
    id TEXT COLLATE "C" PRIMARY KEY, sandbox_id TEXT COLLATE "C" NOT NULL, dataset_id TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL, position INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL,
    details JSONB NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, replayed_at TEXT);
  CREATE INDEX failed_sandbox ON failed_records (sandbox_id, id);
  CREATE TABLE jobs (
    id TEXT COLLATE "C" PRIMARY KEY, sandbox_id TEXT COLLATE "C" NOT NULL, kind TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL, state JSONB NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
  CREATE INDEX jobs_sandbox ON jobs (sandbox_id, id);
  `,
  // 2: segmentation. The events index already has SQLite migration 2's shape (sandbox_id,
  // graph_id, ts, event_id) since migration 1, so it is left alone. Exited memberships are found
  // by a partial index: only they are ever purged, and most rows are not exited.
  `
  CREATE TABLE audiences (
    sandbox_id TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, body JSONB NOT NULL,
    PRIMARY KEY (sandbox_id, id));
  CREATE TABLE memberships (
    sandbox_id TEXT COLLATE "C" NOT NULL, profile_id TEXT COLLATE "C" NOT NULL, audience_id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL, last_qualification_time BIGINT NOT NULL,
    PRIMARY KEY (sandbox_id, profile_id, audience_id));
  CREATE INDEX memberships_audience ON memberships (sandbox_id, audience_id, profile_id);
  CREATE INDEX memberships_exited ON memberships (status, last_qualification_time) WHERE status = 'exited';
  CREATE TABLE membership_events (
    seq BIGSERIAL PRIMARY KEY, sandbox_id TEXT COLLATE "C" NOT NULL, audience_id TEXT COLLATE "C" NOT NULL,
    profile_id TEXT COLLATE "C" NOT NULL, status TEXT NOT NULL, at BIGINT NOT NULL);
  CREATE INDEX membership_events_sandbox ON membership_events (sandbox_id, seq);
  CREATE TABLE reevaluations (
    sandbox_id TEXT COLLATE "C" NOT NULL, profile_id TEXT COLLATE "C" NOT NULL, due_at BIGINT NOT NULL,
    PRIMARY KEY (sandbox_id, profile_id));
  CREATE INDEX reevaluations_due ON reevaluations (due_at);
  CREATE TABLE audience_sizes (
    sandbox_id TEXT COLLATE "C" NOT NULL, audience_id TEXT COLLATE "C" NOT NULL, at BIGINT NOT NULL,
    size BIGINT NOT NULL, source TEXT NOT NULL);
  CREATE INDEX audience_sizes_audience ON audience_sizes (sandbox_id, audience_id, at);
  `,
  // 3: generic per-sandbox documents (webhooks, connections, dataflows…), by kind.
  `
  CREATE TABLE docs (
    sandbox_id TEXT COLLATE "C" NOT NULL, kind TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, body JSONB NOT NULL,
    PRIMARY KEY (sandbox_id, kind, id));
  `,
  // 4: the activation outbox and per-hour activation metrics. Claiming reads pending rows by due
  // time and in-flight rows by lease expiry (a partial index: only in-flight rows have a lease);
  // dead letters are listed per dataflow in id order; a privacy delete drops a profile's rows.
  `
  CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY, sandbox_id TEXT COLLATE "C" NOT NULL, dataflow_id TEXT COLLATE "C" NOT NULL,
    profile_id TEXT COLLATE "C" NOT NULL, idempotency_key TEXT COLLATE "C" NOT NULL, payload JSONB NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL, lease_until BIGINT,
    created_at BIGINT NOT NULL, last_error TEXT);
  CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
  CREATE INDEX outbox_lease ON outbox (lease_until) WHERE status = 'inflight';
  CREATE INDEX outbox_dataflow ON outbox (sandbox_id, dataflow_id, status, id);
  CREATE INDEX outbox_profile ON outbox (sandbox_id, profile_id);
  CREATE TABLE activation_stats (
    sandbox_id TEXT COLLATE "C" NOT NULL, dataflow_id TEXT COLLATE "C" NOT NULL, hour BIGINT NOT NULL,
    metric TEXT COLLATE "C" NOT NULL, value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (sandbox_id, dataflow_id, hour, metric));
  `,
  // ID syncs: per partner (connection), the partner's user id of an ECID; by ECID for privacy deletes.
  `
  CREATE TABLE id_syncs (
    sandbox_id TEXT COLLATE "C" NOT NULL, partner_id TEXT COLLATE "C" NOT NULL, ecid TEXT COLLATE "C" NOT NULL,
    partner_uid TEXT NOT NULL, synced_at BIGINT NOT NULL,
    PRIMARY KEY (sandbox_id, partner_id, ecid));
  CREATE INDEX id_syncs_ecid ON id_syncs (sandbox_id, ecid);
  `,
  // Batch segmentation snapshots: one row per profile (fragments and events within retention as
  // one JSON text, decoded by one JSON.parse), refreshed from the change log at each batch run.
  `
  CREATE TABLE profile_snapshots (
    sandbox_id TEXT COLLATE "C" NOT NULL, profile_id TEXT COLLATE "C" NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (sandbox_id, profile_id));
  `,
  // Leases are fenced by a random token per claim (settling applies only while the row still
  // carries it). Claims read pending rows in id order from a partial index of pending rows (and
  // expired leases from outbox_lease), so a claim reads the rows it takes, not every pending row;
  // outbox_due is no longer read and is dropped.
  `
  ALTER TABLE outbox ADD COLUMN lease_token BIGINT;
  DROP INDEX outbox_due;
  CREATE INDEX outbox_pending ON outbox (id) WHERE status = 'pending';
  `,
  // Taking a due re-evaluation leases it (lease = when it is due again if its taker never
  // finishes; due_at then holds only requests made after the take, the maximum safe integer
  // when there are none), so a crash between the take and the evaluation's writes cannot lose
  // a window expiry. Only leased rows are in the lease index.
  `
  ALTER TABLE reevaluations ADD COLUMN lease BIGINT;
  CREATE INDEX reevaluations_lease ON reevaluations (lease) WHERE lease IS NOT NULL;
  `,
  // Privacy deletes leave a tombstone of the profile id (kept as long as exited memberships),
  // and membership writes skip the puts and events of a tombstoned profile: an evaluation that
  // read the profile just before its delete can no longer publish a membership event about the
  // deleted person after the delete.
  `
  CREATE TABLE deleted_profiles (
    sandbox_id TEXT NOT NULL, profile_id TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (sandbox_id, profile_id));
  `,
  // Every transaction that writes identities of a sandbox moves its graph epoch on, under the
  // sandbox's lock. A store reads the epoch with BEGIN and keeps the graphs it read while the
  // epoch is the one it last saw, so a returning visitor's batch skips the graph read.
  `
  CREATE TABLE graph_epochs (sandbox_id TEXT PRIMARY KEY, epoch BIGINT NOT NULL);
  `,
  // The guard of an ingestion batch sent as one statement (see ingest-tx.ts): it takes the
  // sandbox's lock and the change log's (keys passed in, in that order), then checks that the
  // sandbox's graph epoch is still the one the batch planned at. VOLATILE, so its query takes a
  // snapshot after the locks were granted and sees what their previous holder committed.
  `
  CREATE FUNCTION audient_ingest_guard(sandbox_lock INTEGER, log_lock INTEGER, sandbox TEXT, expected BIGINT)
  RETURNS INTEGER LANGUAGE plpgsql VOLATILE AS $$
  BEGIN
    PERFORM pg_advisory_xact_lock(sandbox_lock);
    PERFORM pg_advisory_xact_lock(log_lock);
    IF coalesce((SELECT epoch FROM graph_epochs WHERE sandbox_id = sandbox), 0) <> expected THEN
      RAISE EXCEPTION 'the identity graphs of sandbox % changed since the batch was planned', sandbox USING ERRCODE = 'AU409';
    END IF;
    RETURN 1;
  END $$;
  `,
  // The guard of a membership write sent as one statement (see WRITE_MEMBERSHIPS in
  // segmentation.ts): it takes the membership log's lock (key passed in), then answers which of
  // the profiles are privacy-deleted. VOLATILE, so that read sees a delete committed while the
  // lock was awaited (the statement's own snapshot predates the wait).
  `
  CREATE FUNCTION audient_membership_guard(log_lock INTEGER, sandbox TEXT, profiles TEXT[])
  RETURNS TEXT[] LANGUAGE plpgsql VOLATILE AS $$
  BEGIN
    PERFORM pg_advisory_xact_lock(log_lock);
    RETURN ARRAY(SELECT profile_id FROM deleted_profiles WHERE sandbox_id = sandbox AND profile_id = ANY(profiles));
  END $$;
  `,
];

/**
 * Applies the pending migrations, each in its own transaction, creating `schema` first when
 * given. Idempotent, and safe when several processes start together (advisory lock).
 */
export async function applyMigrations(pool: pg.Pool, schema: string | undefined): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // Session-level lock: two processes starting together must not both apply a migration.
    await client.query(`SELECT pg_advisory_lock(hashtext('audient:migrate:' || coalesce($1::text, current_schema()::text, '')))`, [schema ?? null]);
    try {
      if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
      const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      for (const [i, sql] of POSTGRES_MIGRATIONS.entries()) {
        const version = i + 1;
        if (done.has(version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(sql);
          await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [version, new Date().toISOString()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
      }
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext('audient:migrate:' || coalesce($1::text, current_schema()::text, '')))`, [schema ?? null]);
    }
  } catch (err) {
    // Do not return a client that may still hold the lock or a transaction; closing it frees both.
    broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
}
