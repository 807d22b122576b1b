/**
 * WAL checkpoints off the main thread. A checkpoint copies the write-ahead log into the database
 * file and fsyncs it; done inside a commit (SQLite's automatic checkpoint) it stalls the event
 * loop for milliseconds. The store turns automatic checkpoints off and this worker thread, with
 * its own connection, runs PASSIVE checkpoints (which never block the writer) on a timer.
 * Once a second: a page written several times between two checkpoints is copied once, and a
 * hot index page is written often (measured on the streaming benchmark: 250 ms cost about 5–15 %
 * more CPU per change than 1 s, the checkpoint thread's included). Recovery replays at most the
 * last second of the log.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (err) { parentPort.postMessage(String(err && err.message || err)); }
}, workerData.everyMs);
parentPort.on('message', (m) => { if (m === 'stop') { clearInterval(timer); db.close(); process.exit(0); } });
`;

/** A running checkpointer; `stop()` ends it. */
export class Checkpointer {
  private readonly worker: Worker;

  constructor(path: string, everyMs = 1000) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_CODE, { eval: true, workerData: { path, driver, everyMs } });
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
