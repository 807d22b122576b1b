/**
 * Log sequence numbers in commit order. `changes.seq` and `membership_events.seq` come from
 * sequences taken at insert time; two writers committing out of that order would let a reader see
 * seq 6, move its cursor past it, and never see 5 once that commits. Every transaction appending
 * to a log therefore takes that log's lock before its append and keeps it until commit, so a
 * seq is only handed out once every lower one is committed or rolled back. The lock is taken as
 * its own statement before any row lock of the transaction, after the sandbox's lock when it
 * takes one (ingestion takes both with its BEGIN, or in its guard: see ingest-tx.ts), and
 * `changes` before `membership_events`: no lock-order cycles (nothing that holds a log lock waits
 * for a lock a log appender holds first). Advisory locks are database-wide: the key names the
 * schema.
 */
export type LogName = 'changes' | 'membership_events';

/** The advisory lock key of a log's appends (an SQL expression). */
export function logLockKey(log: LogName): string {
  return `hashtext('audient:log:${log}:' || current_schema())`;
}

/** The statement that takes a log's append lock until the end of the current transaction. */
export function logLockSql(log: LogName): string {
  return `SELECT pg_advisory_xact_lock(${logLockKey(log)})`;
}

/**
 * The advisory lock key that serialises one sandbox's ingestion across processes (an SQL
 * expression; `sandbox` is an SQL expression of its id: a literal or a parameter).
 */
export function sandboxLockKey(sandbox: string): string {
  return `hashtext('audient:ingest:' || current_schema() || ':' || ${sandbox})`;
}
