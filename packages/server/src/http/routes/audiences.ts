/** Audiences: definitions, validation, preview, explain, batch runs, members and membership events. */
import { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { MembershipEventRow } from '@audient/storage';
import type { AudientContext } from '../../context.js';
import { membershipSubject } from '../../services/segmentation.js';
import { principal, requireWrite } from '../app.js';
import { IdParam, IdentityQuery, Position } from '../schemas.js';

const tags = ['audiences'];
const MergePolicyT = Type.Union([
  Type.Object({ kind: Type.Literal('timestamp') }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('dataset-precedence'), order: Type.Array(Type.String()) }, { additionalProperties: false }),
]);
const AudienceBody = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    name: Type.String({ minLength: 1, maxLength: 256 }),
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    query: Type.String({ minLength: 1, maxLength: 100_000, description: 'Audience language, see docs/audience-language.md' }),
    mergePolicy: Type.Optional(MergePolicyT),
  },
  { additionalProperties: false },
);
const Statuses = Type.Union([Type.Literal('realized'), Type.Literal('existing'), Type.Literal('exited')]);

/** Routes for audiences and memberships. */
export function audienceRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const { audiences, store, inspector } = ctx;

    app.post('/audiences', { schema: { tags, summary: 'Create an audience; the engine picks edge, streaming or batch and says why', body: AudienceBody } }, async (req, reply) =>
      reply.status(201).send(await audiences.create(requireWrite(req).sandboxId, req.body)),
    );
    app.get('/audiences', { schema: { tags, summary: 'List audiences' } }, async (req) => ({ items: await audiences.list(principal(req).sandboxId) }));
    app.get('/audiences/:id', { schema: { tags, summary: 'An audience with its member counts', params: IdParam } }, async (req) => {
      const { sandboxId } = principal(req);
      const row = await audiences.get(sandboxId, req.params.id);
      return { ...row, counts: await store.countMembers(sandboxId, row.id) };
    });
    app.put('/audiences/:id', { schema: { tags, summary: 'Replace an audience definition', params: IdParam, body: AudienceBody } }, async (req) =>
      audiences.update(requireWrite(req).sandboxId, req.params.id, req.body),
    );
    app.delete('/audiences/:id', { schema: { tags, summary: 'Delete an audience and its memberships', params: IdParam } }, async (req, reply) => {
      await audiences.delete(requireWrite(req).sandboxId, req.params.id);
      return reply.status(204).send();
    });

    app.post(
      '/audiences/validate',
      { schema: { tags, summary: 'Check a query: errors with line, column and caret; the method it would get', body: Type.Object({ query: Type.String(), id: Type.Optional(Type.String()) }, { additionalProperties: false }) } },
      async (req) => audiences.validate(principal(req).sandboxId, req.body.query, req.body.id),
    );
    app.post(
      '/audiences/preview',
      {
        schema: {
          tags,
          summary: 'Size estimate and sample members of a query, over a sample of profiles',
          body: Type.Object(
            { query: Type.String(), sampleSize: Type.Integer({ minimum: 1, maximum: 100_000, default: 5000 }), mergePolicy: Type.Optional(MergePolicyT) },
            { additionalProperties: false },
          ),
        },
      },
      async (req) => inspector.preview(principal(req).sandboxId, req.body.query, req.body),
    );
    app.post(
      '/audiences/:id/explain',
      { schema: { tags, summary: 'For one profile: which clauses held and which failed, with the values seen', params: IdParam, body: IdentityQuery } },
      async (req) => {
        const { sandboxId } = principal(req);
        const identity = await ctx.profiles.identity(sandboxId, req.body.ns, req.body.id);
        return inspector.explain(sandboxId, identity, { audienceId: req.params.id });
      },
    );
    app.post(
      '/audiences/explain',
      {
        schema: {
          tags,
          summary: 'Explain an unsaved query for one profile',
          body: Type.Composite([IdentityQuery, Type.Object({ query: Type.String(), mergePolicy: Type.Optional(MergePolicyT) })], { additionalProperties: false }),
        },
      },
      async (req) => {
        const { sandboxId } = principal(req);
        const identity = await ctx.profiles.identity(sandboxId, req.body.ns, req.body.id);
        return inspector.explain(sandboxId, identity, { query: req.body.query, mergePolicy: req.body.mergePolicy });
      },
    );

    app.post(
      '/audiences/batch-jobs',
      {
        schema: {
          tags,
          summary: 'Run batch evaluation now (batch audiences, all audiences, or the ones named); follow it at /v1/jobs/{id}',
          body: Type.Object({ all: Type.Optional(Type.Boolean()), audienceIds: Type.Optional(Type.Array(Type.String(), { minItems: 1 })) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        const { sandboxId } = requireWrite(req);
        for (const id of req.body.audienceIds ?? []) await audiences.get(sandboxId, id);
        return reply.status(202).send(await ctx.batchSegmentation.run(sandboxId, req.body));
      },
    );

    app.get(
      '/audiences/:id/members',
      {
        schema: {
          tags,
          summary: 'Members of an audience, paged by profile id; format=jsonl exports all of them',
          params: IdParam,
          querystring: Type.Object({
            status: Type.Optional(Type.Array(Statuses)),
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
            cursor: Type.Optional(Type.String()),
            format: Type.Union([Type.Literal('json'), Type.Literal('jsonl')], { default: 'json' }),
          }),
        },
      },
      async (req, reply) => {
        const { sandboxId } = principal(req);
        await audiences.get(sandboxId, req.params.id);
        const statuses = req.query.status ?? ['realized', 'existing'];
        if (req.query.format === 'jsonl') {
          const lines = (async function* () {
            let after: string | undefined;
            for (;;) {
              const page = await store.listMembers(sandboxId, req.params.id, { statuses, limit: 1000, after });
              for (const m of page) yield `${JSON.stringify({ profileId: m.profileId, ...m.membership })}\n`;
              if (page.length < 1000) return;
              after = page.at(-1)!.profileId;
            }
          })();
          return reply.header('content-type', 'application/x-ndjson').send(Readable.from(lines));
        }
        const items = await store.listMembers(sandboxId, req.params.id, { statuses, limit: req.query.limit, after: req.query.cursor });
        return {
          items: items.map((m) => ({ profileId: m.profileId, ...m.membership })),
          next: items.length === req.query.limit ? items.at(-1)?.profileId : undefined,
        };
      },
    );
    app.get(
      '/audiences/:id/sizes',
      { schema: { tags, summary: 'Audience size over time (a point per batch run, a daily point for streaming)', params: IdParam } },
      async (req) => {
        const { sandboxId } = principal(req);
        await audiences.get(sandboxId, req.params.id);
        return { items: await store.audienceSizes(sandboxId, req.params.id, 365) };
      },
    );

    app.get(
      '/membership-events',
      {
        schema: {
          tags,
          summary: 'Membership events after a position (replay)',
          querystring: Type.Object({ after: Position({ default: 0 }), limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }) }),
        },
      },
      async (req) => {
        const items = await store.readMembershipEvents(principal(req).sandboxId, req.query.after, req.query.limit);
        return { items, next: items.at(-1)?.seq ?? req.query.after };
      },
    );

    app.get(
      '/membership-events/stream',
      {
        schema: {
          tags,
          summary: 'Server-Sent Events: membership events from a position (after=, or Last-Event-ID), then live',
          querystring: Type.Object({ after: Type.Optional(Position()), audienceId: Type.Optional(Type.String()) }),
        },
      },
      async (req, reply) => {
        const { sandboxId } = principal(req);
        const lastId = Number(req.headers['last-event-id']);
        let cursor = req.query.after ?? (Number.isFinite(lastId) ? lastId : undefined);
        const only = req.query.audienceId;
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        const send = (e: MembershipEventRow): void => {
          if (cursor !== undefined && e.seq <= cursor) return;
          cursor = e.seq;
          if (only && e.audienceId !== only) return;
          res.write(`id: ${e.seq}\nevent: membership\ndata: ${JSON.stringify(e)}\n\n`);
        };
        const live: MembershipEventRow[] = [];
        let replaying = true;
        const unsubscribe = ctx.bus.subscribe<MembershipEventRow>(membershipSubject(sandboxId), `sse-${req.id}`, async (m) => {
          if (replaying) live.push(m.payload);
          else send(m.payload);
        });
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
        req.raw.on('close', () => {
          clearInterval(heartbeat);
          unsubscribe();
        });
        if (cursor !== undefined) {
          for (;;) {
            const page = await store.readMembershipEvents(sandboxId, cursor, 1000);
            page.forEach(send);
            if (page.length < 1000) break;
          }
        } else {
          res.write(': live\n\n');
        }
        replaying = false;
        live.forEach(send);
      },
    );
  };
}
