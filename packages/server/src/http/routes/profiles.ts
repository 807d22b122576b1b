/** Unified profiles and privacy deletes. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AudientContext } from '../../context.js';
import { principal, requireWrite } from '../app.js';
import { IdentityQuery } from '../schemas.js';

/** Routes for profiles. */
export function profileRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/profiles',
      {
        schema: {
          tags: ['profiles'],
          summary: 'The unified profile holding an identity: merged attributes, identityMap, segmentMembership, recent events',
          querystring: Type.Composite([
            IdentityQuery,
            Type.Object({
              mergePolicy: Type.Union([Type.Literal('timestamp'), Type.Literal('dataset-precedence')], { default: 'timestamp' }),
              datasetOrder: Type.Optional(Type.String({ description: 'For dataset-precedence: dataset ids, highest priority first, comma-separated' })),
              eventsLimit: Type.Integer({ minimum: 0, maximum: 500, default: 20 }),
              eventsCursor: Type.Optional(Type.String()),
            }),
          ]),
        },
      },
      async (req) => {
        const { sandboxId } = principal(req);
        const q = req.query;
        const identity = await ctx.profiles.identity(sandboxId, q.ns, q.id);
        const policy =
          q.mergePolicy === 'dataset-precedence'
            ? { kind: 'dataset-precedence' as const, order: (q.datasetOrder ?? '').split(',').map((s) => s.trim()).filter(Boolean) }
            : { kind: 'timestamp' as const };
        return ctx.profiles.get(sandboxId, identity, { policy, eventsLimit: q.eventsLimit, eventsCursor: q.eventsCursor });
      },
    );

    app.post(
      '/privacy/deletes',
      {
        schema: {
          tags: ['privacy'],
          summary: 'Delete the person holding an identity everywhere (job)',
          body: Type.Object({ ns: Type.String(), id: Type.String() }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        const { sandboxId } = requireWrite(req);
        const identity = await ctx.profiles.identity(sandboxId, req.body.ns, req.body.id);
        return reply.status(202).send(await ctx.profiles.requestDelete(sandboxId, identity));
      },
    );
  };
}
