/** Destinations catalogue, connections, dataflows, runs, dead letters and dry runs. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AudientError, type MappingEntry } from '@audient/core';
import { destinationList } from '@audient/destinations';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { hourOf } from '../../activation/activation.js';
import type { AudientContext } from '../../context.js';
import { principal, requireWrite } from '../app.js';
import { IdParam, IdentityQuery, Position } from '../schemas.js';

const tags = ['activation'];
const Mapping = Type.Array(
  Type.Object(
    {
      source: Type.String({ minLength: 1, description: 'A profile attribute path, or identity:<namespace>' }),
      target: Type.Union([
        Type.Object({ kind: Type.Literal('attribute'), name: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
        Type.Object({ kind: Type.Literal('identity'), name: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
      ]),
    },
    { additionalProperties: false },
  ),
  { maxItems: 500 },
);
const DataflowBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256 }),
    connectionId: Type.String(),
    audienceIds: Type.Array(Type.String(), { minItems: 1, maxItems: 1000 }),
    mapping: Mapping,
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('paused')])),
    rateLimitPerSecond: Type.Optional(Type.Number({ minimum: 0, maximum: 100_000 })),
  },
  { additionalProperties: false },
);

/** Routes for activation. */
export function activationRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const { connections, dataflows, store } = ctx;

    app.get('/destinations', { schema: { tags, summary: 'The destination catalogue: settings, authentication, identities, delivery' } }, async () => ({
      items: destinationList.map((d) => ({
        id: d.id, name: d.name, description: d.description, category: d.category, settings: d.settings,
        auth: d.auth.kind, identities: d.identities, marketingActions: d.marketingActions, delivery: d.delivery,
        allowsAttributes: d.allowsAttributes, timeoutMs: d.timeoutMs,
      })),
    }));

    app.post(
      '/connections',
      {
        schema: {
          tags,
          summary: 'Connect a destination; secret settings are encrypted and never returned',
          body: Type.Object({ name: Type.String({ minLength: 1 }), destinationId: Type.String(), settings: Type.Record(Type.String(), Type.Unknown()) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => reply.status(201).send(await connections.create(requireWrite(req).sandboxId, req.body)),
    );
    app.get('/connections', { schema: { tags, summary: 'Connections (secrets shown as {set: true})' } }, async (req) => ({ items: await connections.list(principal(req).sandboxId) }));
    app.get('/connections/:id', { schema: { tags, summary: 'A connection', params: IdParam } }, async (req) => connections.get(principal(req).sandboxId, req.params.id));
    app.patch(
      '/connections/:id',
      {
        schema: {
          tags,
          summary: 'Change settings (secrets left out keep their value)',
          params: IdParam,
          body: Type.Object({ name: Type.Optional(Type.String({ minLength: 1 })), settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }, { additionalProperties: false }),
        },
      },
      async (req) => {
        const { sandboxId } = requireWrite(req);
        const view = await connections.update(sandboxId, req.params.id, req.body);
        ctx.delivery.tokens.invalidate(req.params.id);
        return view;
      },
    );
    app.delete('/connections/:id', { schema: { tags, summary: 'Remove a connection', params: IdParam } }, async (req, reply) => {
      const { sandboxId } = requireWrite(req);
      const users = (await dataflows.list(sandboxId)).filter((f) => f.connectionId === req.params.id);
      if (users.length) throw new AudientError('CONFLICT', `connection is used by dataflows ${users.map((u) => u.id).join(', ')}`);
      await connections.delete(sandboxId, req.params.id);
      return reply.status(204).send();
    });

    app.post('/dataflows', { schema: { tags, summary: 'Send audiences to a connection with a mapping; newly mapped audiences are backfilled', body: DataflowBody } }, async (req, reply) =>
      reply.status(201).send(await dataflows.create(requireWrite(req).sandboxId, { ...req.body, mapping: req.body.mapping as MappingEntry[] })),
    );
    app.get('/dataflows', { schema: { tags, summary: 'Dataflows' } }, async (req) => ({ items: await dataflows.list(principal(req).sandboxId) }));
    app.get('/dataflows/:id', { schema: { tags, summary: 'A dataflow with its outbox counts', params: IdParam } }, async (req) => {
      const { sandboxId } = principal(req);
      const flow = await dataflows.get(sandboxId, req.params.id);
      return { ...flow, outbox: await store.outboxCounts(sandboxId, flow.id) };
    });
    app.put('/dataflows/:id', { schema: { tags, summary: 'Replace a dataflow', params: IdParam, body: DataflowBody } }, async (req) =>
      dataflows.update(requireWrite(req).sandboxId, req.params.id, { ...req.body, mapping: req.body.mapping as MappingEntry[] }),
    );
    app.post('/dataflows/:id/pause', { schema: { tags, summary: 'Pause delivery (exports wait in the outbox)', params: IdParam } }, async (req) =>
      dataflows.setStatus(requireWrite(req).sandboxId, req.params.id, 'paused'),
    );
    app.post('/dataflows/:id/resume', { schema: { tags, summary: 'Resume delivery', params: IdParam } }, async (req) => {
      const flow = await dataflows.setStatus(requireWrite(req).sandboxId, req.params.id, 'active');
      ctx.delivery.poke();
      return flow;
    });
    app.delete('/dataflows/:id', { schema: { tags, summary: 'Remove a dataflow', params: IdParam } }, async (req, reply) => {
      await dataflows.delete(requireWrite(req).sandboxId, req.params.id);
      return reply.status(204).send();
    });

    app.get(
      '/dataflows/:id/runs',
      {
        schema: {
          tags,
          summary: 'Per hour: profiles received, activated, excluded (by reason), failed, retried, delivery latency',
          params: IdParam,
          querystring: Type.Object({ hours: Type.Integer({ minimum: 1, maximum: 24 * 90, default: 24 }) }),
        },
      },
      async (req) => {
        const { sandboxId } = principal(req);
        await dataflows.get(sandboxId, req.params.id);
        const since = hourOf(ctx.now()) - (req.query.hours - 1) * 3_600_000;
        const rows = await store.activationStats(sandboxId, req.params.id, since);
        return {
          items: rows.map(({ hour, metrics: m }) => {
            const excluded: Record<string, number> = {};
            for (const [k, v] of Object.entries(m)) if (k.startsWith('excluded:')) excluded[k.slice(9)] = v;
            const count = m['latency_count'] ?? 0;
            return {
              hour: new Date(hour).toISOString(),
              received: m['received'] ?? 0,
              activated: m['activated'] ?? 0,
              excluded,
              failed: m['failed'] ?? 0,
              retried: m['retried'] ?? 0,
              latencyMs: { avg: count ? (m['latency_sum_ms'] ?? 0) / count : null, max: m['max:latency_ms'] ?? null },
            };
          }),
        };
      },
    );

    app.get(
      '/dataflows/:id/dead-letters',
      {
        schema: {
          tags,
          summary: 'Exports that could not be delivered, with the full reason',
          params: IdParam,
          querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }), after: Type.Optional(Position()) }),
        },
      },
      async (req) => {
        const { sandboxId } = principal(req);
        await dataflows.get(sandboxId, req.params.id);
        const items = await store.listOutbox(sandboxId, { dataflowId: req.params.id, status: 'dead' }, { limit: req.query.limit, after: req.query.after });
        return { items, next: items.length === req.query.limit ? items.at(-1)?.id : undefined };
      },
    );
    app.post(
      '/dataflows/:id/dead-letters/replay',
      {
        schema: {
          tags,
          summary: 'Queue dead letters again (all of the dataflow, or the given ids)',
          params: IdParam,
          body: Type.Object({ ids: Type.Optional(Type.Array(Position({ minimum: 1 }), { minItems: 1, maxItems: 10_000 })) }, { additionalProperties: false }),
        },
      },
      async (req) => {
        const { sandboxId } = requireWrite(req);
        await dataflows.get(sandboxId, req.params.id);
        const requeued = await store.requeueDeadLetters(sandboxId, req.body.ids ? { ids: req.body.ids } : { dataflowId: req.params.id }, ctx.now());
        ctx.delivery.poke();
        return { requeued };
      },
    );
    app.post(
      '/alerts',
      {
        schema: {
          tags,
          summary: 'Subscribe a URL to dataflow alerts (signed like webhooks; the secret is returned once)',
          body: Type.Object(
            {
              url: Type.String({ maxLength: 2048 }),
              kinds: Type.Array(Type.Union([Type.Literal('failure-rate'), Type.Literal('delay'), Type.Literal('dead-letters'), Type.Literal('paused')]), { minItems: 1 }),
              dataflowIds: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
              failureRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
              minFailures: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
              delayMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: Number.MAX_SAFE_INTEGER })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req, reply) => reply.status(201).send(await ctx.alerts.create(requireWrite(req).sandboxId, req.body)),
    );
    app.get('/alerts', { schema: { tags, summary: 'Alert subscriptions and what is firing' } }, async (req) => ({ items: await ctx.alerts.list(principal(req).sandboxId) }));
    app.delete('/alerts/:id', { schema: { tags, summary: 'Remove an alert subscription', params: IdParam } }, async (req, reply) => {
      await ctx.alerts.delete(requireWrite(req).sandboxId, req.params.id);
      return reply.status(204).send();
    });

    app.post(
      '/dataflows/:id/dry-run',
      { schema: { tags, summary: 'The exact requests that would be sent for one profile, secrets masked', params: IdParam, body: IdentityQuery } },
      async (req) => {
        const { sandboxId } = principal(req);
        const identity = await ctx.profiles.identity(sandboxId, req.body.ns, req.body.id);
        return ctx.activation.dryRun(sandboxId, req.params.id, identity);
      },
    );
  };
}
