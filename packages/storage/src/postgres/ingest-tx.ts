/**
 * The PostgreSQL `IngestTx`: the reads and writes of one ingestion batch on one client inside
 * an open transaction. Every method costs a constant number of round trips per batch, whatever
 * the batch size: lookups take parallel arrays (`unnest($2::text[], $3::text[])`) and writes are
 * multi-row `INSERT … SELECT FROM unnest(…)` / `UPDATE … FROM unnest(…)` statements.
 */
import { eventKey, fragmentKey, identityKey, type NamespaceType, type StoredFragment, type StoredIdentity, type WritePlan } from '@audient/core';
import type pg from 'pg';
import type { GraphCache } from '../graph-cache.js';
import type { IngestTx } from '../port.js';
import { logLockKey, sandboxLockKey } from './log-lock.js';

/** An `identities` row as selected. */
export interface IdentityRow {
  ns: string;
  id: string;
  graph_id: string;
  type: string;
  last_seen: number;
}

/** A `fragments` row as selected. */
export interface FragmentRow {
  dataset_id: string;
  ns: string;
  id: string;
  graph_id: string;
  attributes: Record<string, unknown>;
  ts: number;
}

/** Maps an identity row to the core type. */
export const toIdentity = (r: IdentityRow): StoredIdentity => ({
  ns: r.ns,
  id: r.id,
  graphId: r.graph_id,
  type: r.type as NamespaceType,
  lastSeen: r.last_seen,
});

/** Maps a fragment row to the core type. */
export const toFragment = (r: FragmentRow): StoredFragment => ({
  datasetId: r.dataset_id,
  ns: r.ns,
  id: r.id,
  graphId: r.graph_id,
  attributes: r.attributes,
  timestamp: r.ts,
});

/**
 * Where a row of graph `g` ends up after the merges are applied one by one, in order. Merges
 * can chain (a batch may merge B into A, then A into C), so a single `UPDATE … FROM unnest`
 * needs each source graph's final target to give the same result as sequential updates.
 */
export function finalMergeTargets(merges: WritePlan['graphMerges']): { from: string[]; to: string[] } {
  const from: string[] = [];
  const to: string[] = [];
  const seen = new Set<string>();
  for (const m of merges) {
    if (seen.has(m.from)) continue;
    seen.add(m.from);
    let cur = m.from;
    for (const n of merges) if (n.from === cur) cur = n.to;
    if (cur !== m.from) (from.push(m.from), to.push(cur));
  }
  return { from, to };
}

/**
 * A primary-key probe for a `CROSS JOIN LATERAL`. The `LIMIT 1` (harmless on a unique key) keeps
 * the planner from flattening the lookup into a hash join over a sequential scan, which it
 * prefers for mid-sized tables and which costs O(table) per batch instead of O(batch).
 */
const BY_KEY = (columns: string, table: string, match: string): string =>
  `SELECT ${columns} FROM ${table} WHERE sandbox_id = $1 AND ${match} LIMIT 1`;

/** Keeps the last item per key, in first-seen order (an `ON CONFLICT` insert may touch a row once). */
function lastPerKey<T>(items: readonly T[], key: (t: T) => string): T[] {
  const byKey = new Map<string, T>();
  for (const t of items) byKey.set(key(t), t);
  return [...byKey.values()];
}

/**
 * The sandbox's graph epoch moves on (a data-modifying CTE; `$1` is the sandbox): every
 * transaction that changes which identities a graph holds runs it, under the sandbox's lock
 * (see movesGraphEpoch). A store holding graphs read at an older epoch drops them (see
 * PostgresStore.ingest).
 */
export const GRAPH_EPOCH_BUMP = epochBump('');

/**
 * Whether a plan changes graphs another store may hold: merges, evictions, identities added to a
 * graph that existed before the batch. Graphs the batch creates (a new visitor's) are in no other
 * store's memory, and last-seen touches leave every graph's members as they were: neither moves
 * the epoch, so other processes keep what they hold while new and returning visitors come in.
 * What they hold may then carry older last-seen times, which only eviction reads: a batch that
 * evicts after planning with held graphs is run again, reading them (see `apply`).
 */
export function movesGraphEpoch(plan: WritePlan): boolean {
  if (plan.graphMerges.length || plan.evictedIdentities.length) return true;
  if (!plan.newIdentities.length) return false;
  const created = new Set(plan.createdGraphs);
  return plan.newIdentities.some((i) => !created.has(i.graphId));
}

/** Whether a plan chose identities to evict (stored ones, or new ones it did not add). */
const evicts = (plan: WritePlan): boolean => plan.evictedIdentities.length > 0 || plan.changes.some((c) => (c.identitiesEvicted?.length ?? 0) > 0);

/** The epoch bump, its row gated by `gate` (a WHERE clause, or nothing). */
function epochBump(gate: string): string {
  return `INSERT INTO graph_epochs (sandbox_id, epoch) SELECT $1::text, 1${gate}
  ON CONFLICT (sandbox_id) DO UPDATE SET epoch = graph_epochs.epoch + 1`;
}

/** SQLSTATE of a batch refused because the sandbox's graph epoch moved since it was planned (migration 3's guard). */
export const STALE_GRAPHS = 'AU409';

/** The graphs a batch planned with are no longer current: it is run again, reading them. */
export class StaleGraphsError extends Error {
  readonly code = STALE_GRAPHS;
}

/** Whether a batch failed because the graphs it planned with were stale (ours, or the guard's error from PostgreSQL). */
export const isStaleGraphs = (err: unknown): boolean => typeof err === 'object' && err !== null && (err as { code?: unknown }).code === STALE_GRAPHS;

/**
 * A batch whose transaction is not open yet. Reads answered from held graphs need none; the first
 * statement opens it (`open`: BEGIN and the locks, refused with StaleGraphsError when the epoch is
 * not `expected`). An apply marked `last` that comes before that is sent alone: one guarded
 * statement that takes the locks, checks the epoch and writes, committed on its own (one round
 * trip for a returning visitor's batch).
 */
export interface DeferredBegin {
  /** The sandbox's graph epoch the held graphs are current at. */
  expected: number;
  /** Whether BEGIN was sent. */
  opened(): boolean;
  open(): Promise<void>;
  /** The batch was committed by its guarded statement: nothing else may run in it. */
  committed(): void;
}

/** The store's graph cache, and the sandbox's graph epoch the transaction began at. */
export interface HeldGraphs {
  graphs: GraphCache;
  epoch: number;
  /** Per sandbox, the epoch the held graphs are current at (epoch + 1 once this transaction moves it: see movesGraphEpoch). */
  epochs: Map<string, number>;
}

/**
 * Builds the transaction's `IngestTx`. `isOpen` guards against use after commit or rollback,
 * when the client may already serve someone else. With `held`, graphs held in memory are not
 * read again, graphs read are held, and the plan's identity writes update what is held. With
 * `deferred`, the transaction opens at the first statement (see DeferredBegin).
 */
export function postgresIngestTx(client: pg.PoolClient, sandboxId: string, isOpen: () => boolean, held?: HeldGraphs, deferred?: DeferredBegin): IngestTx {
  const send = async <R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> => {
    if (!isOpen()) throw new Error('IngestTx used after its transaction ended');
    return (await client.query<R>(sql, params)).rows;
  };
  const q = async <R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> => {
    if (deferred && !deferred.opened()) await deferred.open();
    return send<R>(sql, params);
  };

  /** Whether a graph was answered from memory (its last-seen times may be behind another store's touches). */
  let usedHeld = false;
  return {
    graphMembersOf: async (identities) => {
      if (identities.length === 0) return [];
      // Members of graphs held for some of the identities; the others' graphs are read (one round trip).
      const out: StoredIdentity[] = [];
      const found = new Set<string>();
      const missing: Array<{ ns: string; id: string }> = [];
      for (const i of identities) {
        if (found.has(identityKey(i))) continue;
        const graph = held?.graphs.get(sandboxId, i.ns, i.id);
        if (!graph) {
          missing.push(i);
          continue;
        }
        usedHeld = true;
        for (const m of graph) {
          found.add(identityKey(m));
          out.push(m);
        }
      }
      const toRead = missing.filter((i) => !found.has(identityKey(i)));
      if (!toRead.length) return out;
      const rows = await q<IdentityRow>(
        `SELECT ns, id, graph_id, type, last_seen FROM identities
         WHERE sandbox_id = $1 AND graph_id = ANY(ARRAY(
           SELECT i.graph_id FROM unnest($2::text[], $3::text[]) AS k(ns, id)
           CROSS JOIN LATERAL (${BY_KEY('graph_id', 'identities', 'ns = k.ns AND id = k.id')}) i))
         ORDER BY graph_id, ns, id`,
        [sandboxId, toRead.map((i) => i.ns), toRead.map((i) => i.id)],
      );
      // Rows come by graph: each graph is held whole.
      let graph: StoredIdentity[] = [];
      for (const r of rows) {
        const m = toIdentity(r);
        if (graph.length && graph[0]!.graphId !== m.graphId) {
          held?.graphs.put(sandboxId, graph);
          graph = [];
        }
        graph.push(m);
        if (found.has(identityKey(m))) continue;
        found.add(identityKey(m));
        out.push(m);
      }
      if (graph.length) held?.graphs.put(sandboxId, graph);
      return out;
    },

    fragments: async (keys) => {
      const out = new Map<string, StoredFragment>();
      if (keys.length === 0) return out;
      const rows = await q<FragmentRow>(
        `SELECT f.* FROM unnest($2::text[], $3::text[], $4::text[]) AS k(dataset_id, ns, id)
         CROSS JOIN LATERAL (${BY_KEY('dataset_id, ns, id, graph_id, attributes, ts', 'fragments', 'dataset_id = k.dataset_id AND ns = k.ns AND id = k.id')}) f`,
        [sandboxId, keys.map((k) => k.datasetId), keys.map((k) => k.identity.ns), keys.map((k) => k.identity.id)],
      );
      for (const r of rows) out.set(fragmentKey(r.dataset_id, r), toFragment(r));
      return out;
    },

    existingEvents: async (keys) => {
      if (keys.length === 0) return new Set<string>();
      const rows = await q<{ dataset_id: string; event_id: string }>(
        `SELECT e.* FROM unnest($2::text[], $3::text[]) AS k(dataset_id, event_id)
         CROSS JOIN LATERAL (${BY_KEY('dataset_id, event_id', 'events', 'dataset_id = k.dataset_id AND event_id = k.event_id')}) e`,
        [sandboxId, keys.map((k) => k.datasetId), keys.map((k) => k.eventId)],
      );
      return new Set(rows.map((r) => eventKey(r.dataset_id, r.event_id)));
    },

    apply: async (plan, now, opts) => {
      // Eviction orders a graph's identities by last seen: planned from memory, it may have
      // ordered them by times another store has since moved. Run again with the graphs read.
      if (deferred && usedHeld && evicts(plan)) {
        throw new StaleGraphsError(`an eviction in sandbox ${sandboxId} was planned with graphs held in memory`);
      }
      const writesIdentities = plan.graphMerges.length + plan.evictedIdentities.length + plan.newIdentities.length + plan.touchedIdentities.length > 0;
      const moves = movesGraphEpoch(plan);
      if (held && writesIdentities) {
        // What is held follows the writes; the next batch expects the epoch they move to (a rollback leaves it behind, and what is held is dropped then).
        held.graphs.written(sandboxId, plan);
        if (moves) held.epochs.set(sandboxId, held.epoch + 1);
      }
      // Merges and evictions take statements of their own: not in the one guarded statement.
      if (deferred && !deferred.opened() && opts?.last && !plan.graphMerges.length && !plan.evictedIdentities.length) {
        // A plan with nothing to write sends nothing: the batch is then checked as a read-only one (see PostgresStore.ingest).
        return applyPlan(send, sandboxId, plan, now, moves, deferred);
      }
      return applyPlan(q, sandboxId, plan, now, moves);
    },

    appendLake: async (rows, now) => {
      if (rows.length === 0) return;
      await q(
        `INSERT INTO lake_records (sandbox_id, dataset_id, body, at)
         SELECT $1::text, d, b, $4::int8 FROM unnest($2::text[], $3::jsonb[]) WITH ORDINALITY AS r(d, b, n) ORDER BY n`,
        [sandboxId, rows.map((r) => r.datasetId), rows.map((r) => JSON.stringify(r.body)), now],
      );
    },
  };
}

type Query = <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => Promise<R[]>;

/** Collects the parameters of one statement, numbering them from `$2` (`$1` is the sandbox). */
class Params {
  readonly values: unknown[];
  constructor(sandboxId: string) {
    this.values = [sandboxId];
  }
  /** Adds a value; returns its placeholder with the cast, e.g. `$4::text[]`. */
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

/**
 * Applies a plan in the SQLite adapter's order (merges, evictions, new identities, touched
 * identities, fragments, events, changes). Merges and evictions, when there are any, run first
 * as statements of their own; everything else is one statement of data-modifying CTEs (one round
 * trip): new and touched identities are disjoint keys, and the other writes go to different
 * tables, so no row is modified twice in it.
 *
 * With `guarded` (a batch sent as one statement outside any transaction, see DeferredBegin),
 * the statement starts with the guard (`audient_ingest_guard`, migration 3): it takes the
 * sandbox's lock and the change log's, then refuses (STALE_GRAPHS) when the graph epoch is not
 * `guarded.expected`; `guarded.committed()` is called once it has committed (a plan with nothing
 * to write sends nothing and calls nothing). Every write's rows are gated on the guard, so none
 * is made before the locks are held and the epoch checked, and the change seqs are taken under
 * the log's lock.
 */
async function applyPlan(q: Query, sandboxId: string, plan: WritePlan, now: number, movesEpoch: boolean, guarded?: Pick<DeferredBegin, 'expected' | 'committed'>): Promise<number[]> {
  const merges = finalMergeTargets(plan.graphMerges);
  if (merges.from.length) {
    // Data-modifying CTEs: the three repoints in one round trip (different tables, no overlap).
    await q(
      `WITH m AS (SELECT * FROM unnest($2::text[], $3::text[]) AS m(from_g, to_g)),
       i AS (UPDATE identities t SET graph_id = m.to_g FROM m WHERE t.sandbox_id = $1 AND t.graph_id = ANY($2::text[]) AND t.graph_id = m.from_g),
       f AS (UPDATE fragments t SET graph_id = m.to_g FROM m WHERE t.sandbox_id = $1 AND t.graph_id = ANY($2::text[]) AND t.graph_id = m.from_g)
       UPDATE events t SET graph_id = m.to_g FROM m WHERE t.sandbox_id = $1 AND t.graph_id = ANY($2::text[]) AND t.graph_id = m.from_g`,
      [sandboxId, merges.from, merges.to],
    );
  }
  if (plan.evictedIdentities.length) {
    await q(
      `DELETE FROM identities WHERE sandbox_id = $1 AND (ns, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
      [sandboxId, plan.evictedIdentities.map((e) => e.ns), plan.evictedIdentities.map((e) => e.id)],
    );
  }
  const p = new Params(sandboxId);
  const guard = guarded && `g AS (SELECT audient_ingest_guard(${sandboxLockKey('$1')}, ${logLockKey('changes')}, $1, ${p.add(guarded.expected, 'int8')}) AS ok)`;
  // The guard runs once (a CTE read more than once is materialised), as each write's one-time filter.
  const gate = guard ? ' WHERE (SELECT ok FROM g) = 1' : '';
  const ctes: string[] = movesEpoch ? [epochBump(gate)] : [];
  const added = plan.newIdentities;
  if (added.length) {
    ctes.push(
      `INSERT INTO identities (sandbox_id, ns, id, graph_id, type, last_seen)
       SELECT $1::text, * FROM unnest(${p.add(added.map((i) => i.ns), 'text[]')}, ${p.add(added.map((i) => i.id), 'text[]')},
         ${p.add(added.map((i) => i.graphId), 'text[]')}, ${p.add(added.map((i) => i.type), 'text[]')}, ${p.add(added.map((i) => i.lastSeen), 'int8[]')})${gate}`,
    );
  }
  const touched = lastPerKey(plan.touchedIdentities, (t) => `${t.ns}\u0000${t.id}`);
  if (touched.length) {
    // An update written as an upsert of rows that exist: `UPDATE … FROM unnest` lets the planner
    // hash-join a sequential scan of the table; this probes the primary key per row instead.
    // Keys that no longer exist find no row, so nothing is inserted.
    ctes.push(
      `INSERT INTO identities (sandbox_id, ns, id, graph_id, type, last_seen)
       SELECT i.sandbox_id, i.ns, i.id, i.graph_id, i.type, u.last_seen
       FROM unnest(${p.add(touched.map((t) => t.ns), 'text[]')}, ${p.add(touched.map((t) => t.id), 'text[]')}, ${p.add(touched.map((t) => t.lastSeen), 'int8[]')}) AS u(ns, id, last_seen)
       CROSS JOIN LATERAL (${BY_KEY('*', 'identities', 'ns = u.ns AND id = u.id')}) i${gate}
       ON CONFLICT (sandbox_id, ns, id) DO UPDATE SET last_seen = excluded.last_seen`,
    );
  }
  const frags = lastPerKey(plan.fragments, (f) => fragmentKey(f.datasetId, f));
  if (frags.length) {
    ctes.push(
      `INSERT INTO fragments (sandbox_id, dataset_id, ns, id, graph_id, attributes, ts)
       SELECT $1::text, * FROM unnest(${p.add(frags.map((f) => f.datasetId), 'text[]')}, ${p.add(frags.map((f) => f.ns), 'text[]')},
         ${p.add(frags.map((f) => f.id), 'text[]')}, ${p.add(frags.map((f) => f.graphId), 'text[]')},
         ${p.add(frags.map((f) => JSON.stringify(f.attributes)), 'jsonb[]')}, ${p.add(frags.map((f) => f.timestamp), 'int8[]')})${gate}
       ON CONFLICT (sandbox_id, dataset_id, ns, id)
       DO UPDATE SET graph_id = excluded.graph_id, attributes = excluded.attributes, ts = excluded.ts`,
    );
  }
  const events = plan.events;
  if (events.length) {
    ctes.push(
      `INSERT INTO events (sandbox_id, dataset_id, event_id, graph_id, ts, body)
       SELECT $1::text, * FROM unnest(${p.add(events.map((e) => e.datasetId), 'text[]')}, ${p.add(events.map((e) => e.eventId), 'text[]')},
         ${p.add(events.map((e) => e.graphId), 'text[]')}, ${p.add(events.map((e) => e.timestamp), 'int8[]')},
         ${p.add(events.map((e) => e.bodyJson ?? JSON.stringify(e.body)), 'jsonb[]')})${gate}`,
    );
  }
  // The serial default is evaluated row by row as the ordered SELECT feeds the insert, so seqs
  // follow the plan's order; RETURNING's row order is not promised, hence the sort.
  const main = plan.changes.length
    ? `INSERT INTO changes (sandbox_id, body, at)
       SELECT $1::text, c, ${p.add(now, 'int8')} FROM unnest(${p.add(plan.changes.map((c) => JSON.stringify(c)), 'jsonb[]')}) WITH ORDINALITY AS u(c, n)${gate} ORDER BY n
       RETURNING seq`
    : ctes.length
      ? 'SELECT NULL::int8 AS seq WHERE false'
      : undefined;
  if (!main) return [];
  const withs = [...(guard ? [guard] : []), ...ctes.map((c, k) => `w${k} AS (${c})`)];
  const sql = withs.length ? `WITH ${withs.join(',\n')}\n${main}` : main;
  const rows = await q<{ seq: number | string }>(sql, p.values);
  guarded?.committed();
  return rows.map((r) => Number(r.seq)).sort((a, b) => a - b);
}
