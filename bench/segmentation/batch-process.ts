/**
 * The batch benchmark's process: a SQLite file store created and migrated by the real code, N
 * profiles written straight into its tables (one email identity, the CRM fragment and the
 * person's 0–20 events, the rows the store keeps; sequential graph ids), 100 audiences created
 * through AudienceService, then `BatchSegmentation.run(sandbox, {all: true})` timed to the end
 * of the job. Peer: a bare better-sqlite3 scan of the same fragments and events with JSON.parse.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
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
  peerMs: number;
  peerRows: number;
  job: Record<string, unknown>;
  memberships: number;
  dbMB: number;
  peakRssMB: number;
}

async function main(): Promise<void> {
  const run = await fromParent<RunBatch>('run');
  const dbPath = join(run.dir, 'batch.db');
  const ctx = await benchContext({ dir: run.dir, databaseUrl: dbPath, now: () => NOW });
  const t0 = performance.now();
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
        const graph = `g${String(i).padStart(9, '0')}`;
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
  const loadMs = performance.now() - t0;
  console.log(`  loaded ${run.profiles} profiles and ${events} events in ${Math.round(loadMs / 1000)} s`);

  const methods: Record<string, number> = {};
  for (const a of batchAudiences(run.audiences)) {
    const row = await ctx.audiences.create(SANDBOX, { id: a.id, name: a.id, query: a.query });
    methods[row.method] = (methods[row.method] ?? 0) + 1;
  }

  // Peer first: the same rows read raw, each JSON body parsed.
  const raw = new Database(dbPath, { readonly: true, fileMustExist: true });
  const tp = performance.now();
  let peerRows = 0;
  let sink = 0;
  for (const r of raw.prepare('SELECT graph_id, attributes FROM fragments WHERE sandbox_id = ? ORDER BY graph_id').iterate(SANDBOX) as Iterable<{ attributes: string }>) {
    sink += Object.keys(JSON.parse(r.attributes) as object).length;
    peerRows++;
  }
  for (const r of raw.prepare('SELECT graph_id, body FROM events WHERE sandbox_id = ? ORDER BY graph_id, ts').iterate(SANDBOX) as Iterable<{ body: string }>) {
    sink += Object.keys(JSON.parse(r.body) as object).length;
    peerRows++;
  }
  const peerMs = performance.now() - tp;
  raw.close();
  if (sink < 0) console.log(sink);

  const to = performance.now();
  const job = await ctx.batchSegmentation.run(SANDBOX, { all: true });
  await ctx.jobs.idle();
  const oursMs = performance.now() - to;
  const done = await ctx.jobs.get(SANDBOX, job.id);
  const check = new Database(dbPath, { readonly: true, fileMustExist: true });
  const memberships = (check.prepare('SELECT COUNT(*) AS n FROM memberships WHERE sandbox_id = ?').get(SANDBOX) as { n: number }).n;
  check.close();
  const size = (p: string): number => {
    try {
      return statSync(p).size;
    } catch {
      return 0;
    }
  };
  await ctx.close();
  toParent({
    type: 'done', profiles: run.profiles, events, loadMs, audiences: run.audiences, methods, oursMs, peerMs, peerRows,
    job: { status: done.status, ...done.state, sizes: undefined }, memberships,
    dbMB: Math.round((size(dbPath) + size(`${dbPath}-wal`)) / 1024 / 1024), peakRssMB: peakRssMB(),
  } satisfies BatchDone);
  process.disconnect?.();
}

runChild(main);
