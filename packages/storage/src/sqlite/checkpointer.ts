/**
 * WAL checkpoints off the main thread. A checkpoint copies the write-ahead log into the database
 * file and fsyncs it; done inside a commit (SQLite's automatic checkpoint) it stalls the event
 * loop for milliseconds. The store turns automatic checkpoints off and this worker thread, with
 * its own connection, runs PASSIVE checkpoints (which never block the writer) on a timer.
 * Once a second: a page written several times between two checkpoints is copied once, and a
 * hot index page is written often (measured on the streaming benchmark: 250 ms cost about 5–15 %
 * more CPU per change than 1 s, the checkpoint thread's included). Recovery replays at most the
 * last second of the log.
 *
 * A checkpoint never resets the log by itself: SQLite writes it from its start again only when a
 * write transaction begins with every frame already copied. A once-a-second checkpoint copies a
 * second of frames while new ones keep coming, so under steady writes (an edge answering
 * thousands of requests a second) it never ends complete and the file grew without bound (2 GB
 * within a minute in the edge benchmark). Past CHASE_FRAMES, the worker checkpoints every
 * millisecond instead: each copies the few frames written since the last, ends complete between
 * two commits, and the next commit starts the log over. It never takes the writer's lock (RESTART
 * would, and stall the event loop behind a long copy).
 *
 * Starting over reuses the file: SQLite cuts it back only past the store's journal_size_limit,
 * WAL_FILE_LIMIT_FRAMES. A limit at the chase threshold cut the file at every start-over (about
 * once a second at 5,000 edge requests/s): freeing its blocks, then allocating them again for the
 * next log, made that commit take 15–20 ms on the event loop, instead of under 1 ms. A burst that
 * grew the log past the limit (a bulk load, or closed-loop load that starves this thread) is given
 * back a step at a time (see WalLimit): cut in one go, it held the commit that started the log
 * over for 80 ms per 250 MB here.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
let timer;
const tick = () => {
  let next = workerData.everyMs;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    if (r && r.log >= workerData.chaseFrames) next = 1;
  } catch (err) { parentPort.postMessage(String(err && err.message || err)); }
  timer = setTimeout(tick, next);
};
timer = setTimeout(tick, workerData.everyMs);
parentPort.on('message', (m) => { if (m === 'stop') { clearTimeout(timer); db.close(); process.exit(0); } });
`;

/** Log frames (pages) past which the worker checkpoints every millisecond until the log starts over: 64 MB of 4 KB pages. */
export const CHASE_FRAMES = 16_384;

/** The log file's size (in pages) kept when it starts over (journal_size_limit): room for a log that passed CHASE_FRAMES while the chase caught up. */
export const WAL_FILE_LIMIT_FRAMES = 4 * CHASE_FRAMES;

/** A running checkpointer; `stop()` ends it. */
export class Checkpointer {
  private readonly worker: Worker;

  constructor(path: string, everyMs = 1000) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_CODE, { eval: true, workerData: { path, driver, everyMs, chaseFrames: CHASE_FRAMES } });
    this.worker.unref();
    // A failed checkpoint is retried at the next tick; nothing to do here but not crash.
    this.worker.on('message', () => undefined);
    this.worker.on('error', () => undefined);
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    // Keep the process alive until the worker has closed its connection.
    this.worker.ref();
    this.worker.postMessage('stop');
    await exited;
  }
}

/** Most a start-over cuts from the log's file, bytes (see WalLimit): about 1–2 ms of the commit's time here. */
export const WAL_CUT_STEP_BYTES = 4 * 1024 ** 2;

/**
 * The journal_size_limit for a log file of `fileBytes`: a start-over cuts the file to the limit,
 * so the limit trails the file's size by `stepBytes` until the file is back to `keepBytes`.
 */
export function walLimitFor(fileBytes: number, keepBytes: number, stepBytes: number): number {
  return fileBytes > keepBytes + stepBytes ? fileBytes - stepBytes : keepBytes;
}

/**
 * Keeps a writing connection's journal_size_limit a step below the log file's size while the file
 * is past the kept size: each start-over of the log then frees at most a step of it (freeing
 * blocks is what a cut costs, about 0.3–0.5 ms per MB here, inside the commit that starts the log
 * over). Checked every `checkEvery` write transactions, so the file's growth between two checks
 * adds to one cut at most.
 */
export class WalLimit {
  private writes = 0;
  private limit = -2;

  constructor(
    private readonly db: Database.Database,
    private readonly walPath: string,
    private readonly keepBytes: number,
    private readonly stepBytes = WAL_CUT_STEP_BYTES,
    private readonly checkEvery = 32,
  ) {
    this.check();
  }

  /** After a write transaction. */
  wrote(): void {
    if (++this.writes >= this.checkEvery) this.check();
  }

  /** Sets the limit for the log file's size now. */
  check(): void {
    this.writes = 0;
    const size = statSync(this.walPath, { throwIfNoEntry: false })?.size ?? 0;
    const limit = walLimitFor(size, this.keepBytes, this.stepBytes);
    if (limit === this.limit) return;
    this.db.pragma(`journal_size_limit = ${limit}`);
    this.limit = limit;
  }
}
