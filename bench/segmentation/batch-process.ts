/**
 * The batch benchmark's process: a SQLite file store created and migrated by the real code, N
 * profiles written straight into its tables (one email identity, the CRM fragment and the
 * person's 0–20 events, the rows the store keeps; sequential graph ids), 100 audiences created
 * through AudienceService, then `BatchSegmentation.run(sandbox, {all: true})` timed to the end
 * of the job: run 1 on the fresh store (builds every profile snapshot, every membership is new),
 * then `changed` profiles re-ingested through IngestionService (new CRM attributes; change feed
 * and streaming evaluation drained, untimed), then run 2 timed the same way (refreshes only
 * the changed snapshots). Peer: a bare better-sqlite3 scan of the same fragments and events
 * with JSON.parse.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { withClient } from '@audient/storage/testing';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { peakRssMB } from '../lib/rss.js';
import { batchAudiences } from './audiences.js';
import { NOW, makeEvents, makeProfile } from './data.js';
import { SANDBOX, benchContext } from './store-setup.js';

/** Parent → process. */
export interface RunBatch extends Message {
  type: 'run';
  dir: string;
  profiles: number;
  audiences: number;
  seed: number;
  /** Profiles re-ingested between run 1 and run 2. */
  changed: number;
  /** A PostgreSQL URL (a scratch schema); the SQLite file in `dir` when absent. */
  databaseUrl?: string;
}

/** Process → parent. */
export interface BatchDone extends Message {
  type: 'done';
  profiles: number;
  events: number;
  loadMs: number;
  audiences: number;
  methods: Record<string, number>;
  oursMs: number;
  /** Run 2 (after `changed` profiles were re-ingested), ms. */
  secondMs: number;
  changed: number;
  changeIngestMs: number;
  peerMs: number;
  peerRows: number;
  job: Record<string, unknown>;
  secondJob: Record<string, unknown>;
  memberships: number;
  dbMB: number;
  peakRssMB: number;
}

const graphOf = (i: number): string => `g${String(i).padStart(9, '0')}`;

/** Writes the profiles' rows straight into a SQLite file store; returns the event count. */
function loadSqlite(dbPath: string, run: RunBatch): number {
  const db = new Database(dbPath, { fileMustExist: true });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const addIdentity = db.prepare('INSERT INTO identities (sandbox_id, ns, id, graph_id, type, last_seen) VALUES (?, ?, ?, ?, ?, ?)');
  const addFragment = db.prepare('INSERT INTO fragments (sandbox_id, dataset_id, ns, id, graph_id, attributes, ts) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const addEvent = db.prepare('INSERT INTO events (sandbox_id, dataset_id, event_id, graph_id, ts, body) VALUES (?, ?, ?, ?, ?, ?)');
  let events = 0;
  const BATCH = 5_000;
  for (let start = 0; start < run.profiles; start += BATCH) {
    db.transaction(() => {
      for (let i = start; i < Math.min(run.profiles, start + BATCH); i++) {
        const graph = graphOf(i);
        const email = `member${i}@example.net`;
        addIdentity.run(SANDBOX, 'email', email, graph, 'person', NOW);
        addFragment.run(SANDBOX, 'crm', 'email', email, graph, JSON.stringify(makeProfile(i, run.seed)), NOW);
        for (const e of makeEvents(i, run.seed)) {
          addEvent.run(SANDBOX, 'web', e._id, graph, Date.parse(e.timestamp), JSON.stringify(e));
          events++;
        }
      }
    })();
  }
  db.close();
  return events;
}

/** The same rows into a PostgreSQL schema, `unnest` inserts of 2,000 profiles at a time. */
async function loadPostgres(url: string, run: RunBatch): Promise<number> {
  return withClient(url, async (c) => {
    let events = 0;
    const BATCH = 2_000;
    for (let start = 0; start < run.profiles; start += BATCH) {
      const ids: string[] = [];
      const graphs: string[] = [];
      const attrs: string[] = [];
      const ev: { id: string[]; graph: string[]; ts: number[]; body: string[] } = { id: [], graph: [], ts: [], body: [] };
      for (let i = start; i < Math.min(run.profiles, start + BATCH); i++) {
        ids.push(`member${i}@example.net`);
        graphs.push(graphOf(i));
        attrs.push(JSON.stringify(makeProfile(i, run.seed)));
        for (const e of makeEvents(i, run.seed)) {
          ev.id.push(e._id);
          ev.graph.push(graphOf(i));
          ev.ts.push(Date.parse(e.timestamp));
          ev.body.push(JSON.stringify(e));
        }
      }
      events += ev.id.length;
      await c.query('BEGIN');
      await c.query(`INSERT INTO identities (sandbox_id, ns, id, graph_id, type, last_seen) SELECT $1, 'email', i, g, 'person', $4 FROM unnest($2::text[], $3::text[]) AS u(i, g)`, [SANDBOX, ids, graphs, NOW]);
      await c.query(`INSERT INTO fragments (sandbox_id, dataset_id, ns, id, graph_id, attributes, ts) SELECT $1, 'crm', 'email', i, g, a::jsonb, $5 FROM unnest($2::text[], $3::text[], $4::text[]) AS u(i, g, a)`, [SANDBOX, ids, graphs, attrs, NOW]);
      await c.query(`INSERT INTO events (sandbox_id, dataset_id, event_id, graph_id, ts, body) SELECT $1, 'web', i, g, t, b::jsonb FROM unnest($2::text[], $3::text[], $4::int8[], $5::text[]) AS u(i, g, t, b)`, [SANDBOX, ev.id, ev.graph, ev.ts, ev.body]);
      await c.query('COMMIT');
    }
    await c.query('ANALYZE');
    return events;
  });
}

/** Peer on SQLite: the rows read raw in graph order, each JSON body parsed. */
function peerSqlite(dbPath: string): { rows: number; sink: number } {
  const raw = new Database(dbPath, { readonly: true, fileMustExist: true });
  let rows = 0;
  let sink = 0;
  for (const r of raw.prepare('SELECT graph_id, attributes FROM fragments WHERE sandbox_id = ? ORDER BY graph_id').iterate(SANDBOX) as Iterable<{ attributes: string }>) {
    sink += Object.keys(JSON.parse(r.attributes) as object).length;
    rows++;
  }
  for (const r of raw.prepare('SELECT graph_id, body FROM events WHERE sandbox_id = ? ORDER BY graph_id, ts').iterate(SANDBOX) as Iterable<{ body: string }>) {
    sink += Object.keys(JSON.parse(r.body) as object).length;
    rows++;
  }
  raw.close();
  return { rows, sink };
}

/** Peer on PostgreSQL: the same rows as text, in graph order, 5,000 profiles per query, each parsed. */
async function peerPostgres(url: string, profiles: number): Promise<{ rows: number; sink: number }> {
  return withClient(url, async (c) => {
    let rows = 0;
    let sink = 0;
    for (let start = 0; start < profiles; start += 5_000) {
      const range = [SANDBOX, graphOf(start), graphOf(start + 5_000)];
      const f = await c.query<{ a: string }>('SELECT graph_id, attributes::text AS a FROM fragments WHERE sandbox_id = $1 AND graph_id >= $2 AND graph_id < $3 ORDER BY graph_id', range);
      for (const r of f.rows) sink += Object.keys(JSON.parse(r.a) as object).length;
      const e = await c.query<{ b: string }>('SELECT graph_id, body::text AS b FROM events WHERE sandbox_id = $1 AND graph_id >= $2 AND graph_id < $3 ORDER BY graph_id, ts', range);
      for (const r of e.rows) sink += Object.keys(JSON.parse(r.b) as object).length;
      rows += f.rows.length + e.rows.length;
    }
    return { rows, sink };
  });
}

async function main(): Promise<void> {
  const run = await fromParent<RunBatch>('run');
  const dbPath = join(run.dir, 'batch.db');
  const pgUrl = run.databaseUrl;
  const ctx = await benchContext({ dir: run.dir, databaseUrl: pgUrl ?? dbPath, now: () => NOW });
  const t0 = performance.now();
  const events = pgUrl ? await loadPostgres(pgUrl, run) : loadSqlite(dbPath, run);
  const loadMs = performance.now() - t0;
  console.log(`  loaded ${run.profiles} profiles and ${events} events in ${Math.round(loadMs / 1000)} s`);

  const methods: Record<string, number> = {};
  for (const a of batchAudiences(run.audiences)) {
    const row = await ctx.audiences.create(SANDBOX, { id: a.id, name: a.id, query: a.query });
    methods[row.method] = (methods[row.method] ?? 0) + 1;
  }

  // Peer first: the same rows read raw, each JSON body parsed.
  const tp = performance.now();
  const peer = pgUrl ? await peerPostgres(pgUrl, run.profiles) : peerSqlite(dbPath);
  const peerMs = performance.now() - tp;
  const peerRows = peer.rows;
  if (peer.sink < 0) console.log(peer.sink);

  const to = performance.now();
  const job = await ctx.batchSegmentation.run(SANDBOX, { all: true });
  await ctx.jobs.idle();
  const oursMs = performance.now() - to;
  const done = await ctx.jobs.get(SANDBOX, job.id);
  await ctx.bus.drain();

  // Changes between runs through the real ingestion path (change log, feed, streaming engine).
  const tc = performance.now();
  const step = Math.max(1, Math.floor(run.profiles / Math.max(1, run.changed)));
  const changedIds: number[] = [];
  for (let i = 0; i < run.profiles && changedIds.length < run.changed; i += step) changedIds.push(i);
  for (let k = 0; k < changedIds.length; k += 100) {
    const records = changedIds.slice(k, k + 100).map((i) => ({ ...makeProfile(i, run.seed + 1), identityMap: { email: [{ id: `member${i}@example.net`, primary: true }] } }));
    await ctx.ingestion.ingest(SANDBOX, 'crm', records);
  }
  await ctx.feed.flush();
  await ctx.bus.drain();
  const changeIngestMs = performance.now() - tc;

  const t2 = performance.now();
  const job2 = await ctx.batchSegmentation.run(SANDBOX, { all: true });
  await ctx.jobs.idle();
  const secondMs = performance.now() - t2;
  const done2 = await ctx.jobs.get(SANDBOX, job2.id);
  await ctx.bus.drain();
  let memberships: number;
  let dbBytes: number;
  if (pgUrl) {
    [memberships, dbBytes] = await withClient(pgUrl, async (c) => [
      Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM memberships WHERE sandbox_id = $1', [SANDBOX])).rows[0]!.n),
      Number((await c.query<{ b: string }>(`SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS b FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`)).rows[0]!.b),
    ]);
  } else {
    const check = new Database(dbPath, { readonly: true, fileMustExist: true });
    memberships = (check.prepare('SELECT COUNT(*) AS n FROM memberships WHERE sandbox_id = ?').get(SANDBOX) as { n: number }).n;
    check.close();
    const size = (p: string): number => {
      try {
        return statSync(p).size;
      } catch {
        return 0;
      }
    };
    dbBytes = size(dbPath) + size(`${dbPath}-wal`);
  }
  await ctx.close();
  toParent({
    type: 'done', profiles: run.profiles, events, loadMs, audiences: run.audiences, methods, oursMs, secondMs, changed: changedIds.length, changeIngestMs, peerMs, peerRows,
    job: { status: done.status, ...done.state, sizes: undefined }, secondJob: { status: done2.status, ...done2.state, sizes: undefined }, memberships,
    dbMB: Math.round(dbBytes / 1024 / 1024), peakRssMB: peakRssMB(),
  } satisfies BatchDone);
  process.disconnect?.();
}

runChild(main);
