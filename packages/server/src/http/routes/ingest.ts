/** Streaming ingestion, batch file uploads, jobs and the failed-records store. */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AudientError } from '@audient/core';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AudientContext } from '../../context.js';
import { sortableId } from '../../ids.js';
import { BatchIngestion } from '../../services/batch-ingestion.js';
import { principal, RECORDS_BODY, requireWrite } from '../app.js';
import { IdParam } from '../schemas.js';

const MAX_RECORDS_PER_REQUEST = 10_000;
const FILE_TYPES = ['text/csv', 'application/x-ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/octet-stream'];
const FailedFilter = Type.Object(
  {
    datasetId: Type.Optional(Type.String()),
    source: Type.Optional(Type.String()),
    status: Type.Optional(Type.Union([Type.Literal('failed'), Type.Literal('replayed'), Type.Literal('discarded')])),
  },
  { additionalProperties: false },
);

/** Routes that bring data in. */
export function ingestRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    // File uploads arrive as raw streams; the route writes them to disk under a size cap.
    app.addContentTypeParser(FILE_TYPES, (_req, payload, done) => done(null, payload));

    app.post(
      '/datasets/:id/records',
      {
        config: RECORDS_BODY,
        schema: {
          tags: ['ingestion'],
          summary: 'Ingest one record (object) or many (array); the answer gives a result per record',
          params: IdParam,
          body: Type.Unknown({ description: 'A record or an array of records of the dataset schema' }),
        },
      },
      async (req, reply) => {
        const { sandboxId } = requireWrite(req);
        const body = req.body;
        if (Array.isArray(body)) {
          if (body.length > MAX_RECORDS_PER_REQUEST) {
            throw new AudientError('BODY_TOO_LARGE', `at most ${MAX_RECORDS_PER_REQUEST} records per request; use a batch upload for more`);
          }
          const results = await ctx.ingestion.ingest(sandboxId, req.params.id, body);
          const rejected = results.filter((r) => r.status === 'rejected').length;
          return reply.status(rejected ? 207 : 200).send({ accepted: results.length - rejected, rejected, results });
        }
        if (typeof body !== 'object' || body === null) {
          throw new AudientError('BAD_REQUEST', 'send a JSON object (one record) or an array of records');
        }
        const [result] = await ctx.ingestion.ingest(sandboxId, req.params.id, [body]);
        if (!result || result.status === 'accepted') return reply.send(result);
        const err = new AudientError(result.code === 'MALFORMED_CSV' ? 'MALFORMED_CSV' : result.code, result.message, result.details);
        return reply.status(err.status).send({ ...err.toJSON(), failedRecordId: result.failedRecordId });
      },
    );

    app.post(
      '/datasets/:id/batches',
      {
        bodyLimit: ctx.config.maxUploadBytes,
        schema: {
          tags: ['ingestion'],
          summary: 'Upload a CSV or JSON Lines file; ingestion runs as a job whose progress can be read',
          params: IdParam,
          querystring: Type.Object(
            {
              format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('jsonl')])),
              fileName: Type.Optional(Type.String({ maxLength: 256 })),
              mapping: Type.Optional(Type.String({ description: 'CSV mapping as JSON: {"columns": {"Last Name": "person.name.lastName"}}' })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req, reply) => {
        const { sandboxId } = requireWrite(req);
        const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        const fileName = req.query.fileName ?? 'upload';
        const format = BatchIngestion.format(
          req.query.format ?? (type === 'text/csv' ? 'csv' : type === 'application/octet-stream' ? undefined : type ? 'jsonl' : undefined),
          fileName,
        );
        let mapping: unknown;
        if (req.query.mapping !== undefined) {
          try {
            mapping = JSON.parse(req.query.mapping);
          } catch {
            throw new AudientError('BAD_REQUEST', 'mapping is not valid JSON', [{ path: 'mapping', reason: 'format', message: 'expected a JSON object' }]);
          }
        }
        await ctx.catalog.getDataset(sandboxId, req.params.id);
        const dir = join(ctx.config.dataDir, 'uploads');
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const path = join(dir, sortableId('up'));
        let size = 0;
        const cap = ctx.config.maxUploadBytes;
        const counter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            size += chunk.length;
            if (size > cap) cb(new AudientError('BODY_TOO_LARGE', `uploads are limited to ${cap} bytes`));
            else cb(null, chunk);
          },
        });
        try {
          await pipeline(req.body as Readable, counter, createWriteStream(path, { mode: 0o600 }));
        } catch (err) {
          await rm(path, { force: true });
          throw err;
        }
        const job = await ctx.batches.start(sandboxId, {
          datasetId: req.params.id, format, path, fileName, removeAfter: true,
          mapping: mapping as Parameters<typeof ctx.batches.start>[1]['mapping'],
        });
        return reply.status(202).send(job);
      },
    );

    app.get('/jobs/:id', { schema: { tags: ['jobs'], summary: 'A job: status, counts, progress', params: IdParam } }, async (req) =>
      ctx.jobs.get(principal(req).sandboxId, req.params.id),
    );
    app.get(
      '/jobs',
      {
        schema: {
          tags: ['jobs'],
          summary: 'Jobs, newest first',
          querystring: Type.Object({
            kind: Type.Optional(Type.String()),
            limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
            cursor: Type.Optional(Type.String()),
          }),
        },
      },
      async (req) => {
        const items = await ctx.store.listJobs(principal(req).sandboxId, req.query.kind, { limit: req.query.limit, cursor: req.query.cursor });
        return { items, next: items.length === req.query.limit ? items.at(-1)?.id : undefined };
      },
    );

    app.get(
      '/failed-records',
      {
        schema: {
          tags: ['ingestion'],
          summary: 'Refused records with their reasons, newest first',
          querystring: Type.Composite([
            FailedFilter,
            Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }), cursor: Type.Optional(Type.String()) }),
          ]),
        },
      },
      async (req) => {
        const { limit, cursor, ...filter } = req.query;
        const items = await ctx.failed.list(principal(req).sandboxId, filter, { limit, cursor });
        return { items, next: items.length === limit ? items.at(-1)?.id : undefined };
      },
    );

    app.get(
      '/failed-records/download',
      { schema: { tags: ['ingestion'], summary: 'Every matching failed record as JSON Lines', querystring: FailedFilter } },
      async (req, reply) => {
        const rows = ctx.failed.all(principal(req).sandboxId, req.query);
        const lines = (async function* () {
          for await (const r of rows) yield `${JSON.stringify(r)}\n`;
        })();
        return reply
          .header('content-type', 'application/x-ndjson')
          .header('content-disposition', 'attachment; filename="failed-records.jsonl"')
          .send(Readable.from(lines));
      },
    );

    app.post(
      '/failed-records/replay',
      {
        schema: {
          tags: ['ingestion'],
          summary: 'Ingest failed records again (after fixing the schema), or corrected versions of them',
          body: Type.Object(
            {
              ids: Type.Array(Type.String(), { minItems: 1, maxItems: 1000 }),
              fixes: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'failed record id → corrected record' })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req) => ({ results: await ctx.failed.replay(requireWrite(req).sandboxId, req.body.ids, req.body.fixes ?? {}) }),
    );
  };
}
