/**
 * Batch ingestion of CSV and JSON Lines files: the file is parsed as a stream, ingested in
 * chunks (one store transaction each), and its job reports bytes, rows, accepted and rejected
 * as it goes. Bad rows land in the failed-records store with their line number; good rows of the
 * same file are all kept.
 */
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { AudientError } from '@audient/core';
import type { JobRow } from '@audient/storage';
import type { Config } from '../config.js';
import { parseCsv, parseJsonLines, type CsvMapping, type FileRow } from '../files/index.js';
import type { Catalog } from './catalog.js';
import type { IncomingRecord, IngestionService } from './ingestion.js';
import type { Jobs } from './jobs.js';

/** What to ingest. */
export interface BatchRequest {
  datasetId: string;
  format: 'csv' | 'jsonl';
  /** The uploaded (or local) file. */
  path: string;
  fileName: string;
  mapping?: CsvMapping | undefined;
  /** Delete the file when the job ends (uploads: yes; CLI local files: no). */
  removeAfter: boolean;
}

/** Starts and runs batch file jobs. */
export class BatchIngestion {
  constructor(private readonly deps: { config: Config; catalog: Catalog; ingestion: IngestionService; jobs: Jobs }) {}

  /** Checks the dataset and starts the job; the answer comes at once, the work continues. */
  async start(sandboxId: string, req: BatchRequest): Promise<JobRow> {
    const { catalog, ingestion, jobs, config } = this.deps;
    const dataset = await catalog.getDataset(sandboxId, req.datasetId);
    const schema = await catalog.resolvedSchema(sandboxId, dataset.schemaId);
    const totalBytes = (await stat(req.path)).size;
    const initial = {
      datasetId: req.datasetId, fileName: req.fileName, format: req.format, totalBytes,
      bytesRead: 0, rows: 0, accepted: 0, rejected: 0,
    };
    return jobs.start(sandboxId, 'batch-ingestion', initial, async (update, jobId) => {
      let bytesRead = 0;
      const file = createReadStream(req.path);
      const counted = (async function* () {
        for await (const chunk of file) {
          bytesRead += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      })();
      const rows: AsyncIterable<FileRow> =
        req.format === 'csv' ? parseCsv(counted, { root: schema.root, ...(req.mapping ? { mapping: req.mapping } : {}) }) : parseJsonLines(counted);
      const counts = { rows: 0, accepted: 0, rejected: 0 };
      let chunk: IncomingRecord[] = [];
      const flush = async (): Promise<void> => {
        if (!chunk.length) return;
        const results = await ingestion.ingestRows(sandboxId, req.datasetId, chunk, `batch:${jobId}`);
        for (const r of results) counts[r.status === 'accepted' ? 'accepted' : 'rejected']++;
        chunk = [];
        await update({ ...counts, bytesRead });
      };
      try {
        for await (const row of rows) {
          counts.rows++;
          chunk.push(row.error ? { position: row.line, error: row.error, raw: row.raw } : { position: row.line, record: row.record });
          if (chunk.length >= config.batchChunkSize) await flush();
        }
        await flush();
      } finally {
        file.destroy();
        if (req.removeAfter) await rm(req.path, { force: true });
      }
      return { ...counts, bytesRead: totalBytes };
    });
  }

  /** Validates a format name given by a caller. */
  static format(value: string | undefined, fileName: string): 'csv' | 'jsonl' {
    const f = value ?? (/\.csv$/i.test(fileName) ? 'csv' : /\.(jsonl|ndjson)$/i.test(fileName) ? 'jsonl' : undefined);
    if (f === 'csv' || f === 'jsonl') return f;
    throw new AudientError('UNSUPPORTED_MEDIA_TYPE', 'say which format the file is: csv or jsonl (content type text/csv or application/x-ndjson)', [
      { path: 'format', reason: 'format', message: 'expected csv or jsonl', received: String(value ?? fileName) },
    ]);
  }
}
