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
 * grew the log past the limit (a bulk load) is still given back, once.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

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
