/**
 * A batch segmentation worker thread: compiles the run's audiences once (from their query text,
 * against the sandbox's schemas, as AudienceService does), then decodes and evaluates the pages
 * of snapshot and membership texts the job sends, and answers with the page's changes as typed
 * arrays, transferred rather than copied (see batch-evaluate.ts).
 * The job keeps all I/O on its own thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkAudience, compileAudience, parseAudience, type AudienceSchemas, type MergePolicy } from '@audient/core';
import { batchTargets, evaluatePage, resultBuffers, type PageInput, type PageResult } from './batch-evaluate.js';

/** What a worker is started with. */
export interface BatchWorkerInit {
  audiences: Array<{ id: string; query: string; mergePolicy: MergePolicy }>;
  schemas: AudienceSchemas;
  enabled: string[];
  now: number;
  eventsSince: number;
  maxErrors: number;
}

/** A page to evaluate: a few large strings, which cross threads as flat copies. */
export interface BatchWorkerRequest extends PageInput {
  seq: number;
}

/** Its answer (or the error that stopped it). */
export type BatchWorkerResponse = { seq: number; result: PageResult } | { seq: number; error: string };

if (parentPort) {
  const port = parentPort;
  const init = workerData as BatchWorkerInit;
  const targets = batchTargets(init.audiences.map((a) => ({ id: a.id, mergePolicy: a.mergePolicy, compiled: compileAudience(checkAudience(parseAudience(a.query), init.schemas)) })));
  const enabled = new Set(init.enabled);
  port.on('message', (req: BatchWorkerRequest) => {
    try {
      const result = evaluatePage(req, targets, enabled, init.now, init.eventsSince, init.maxErrors);
      port.postMessage({ seq: req.seq, result } satisfies BatchWorkerResponse, resultBuffers(result));
    } catch (err) {
      port.postMessage({ seq: req.seq, error: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies BatchWorkerResponse);
    }
  });
}
