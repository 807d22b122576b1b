/** Signed webhooks of membership events. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AudientContext } from '../../context.js';
import { principal, requireWrite } from '../app.js';
import { IdParam, Position } from '../schemas.js';

const tags = ['audiences'];

/** Routes for membership webhooks. */
export function webhookRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    app.post(
      '/webhooks',
      {
        schema: {
          tags,
          summary: 'Subscribe a URL to membership events (signed with HMAC-SHA256; the secret is returned once)',
          body: Type.Object(
            {
              url: Type.String({ maxLength: 2048 }),
              audienceIds: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
              fromPosition: Type.Optional(Position({ description: 'Deliver events after this position (default: from now)' })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req, reply) => reply.status(201).send(await ctx.webhooks.create(requireWrite(req).sandboxId, req.body)),
    );
    app.get('/webhooks', { schema: { tags, summary: 'Webhook subscriptions with their position and last error' } }, async (req) => ({
      items: await ctx.webhooks.list(principal(req).sandboxId),
    }));
    app.delete('/webhooks/:id', { schema: { tags, summary: 'Remove a subscription', params: IdParam } }, async (req, reply) => {
      await ctx.webhooks.delete(requireWrite(req).sandboxId, req.params.id);
      return reply.status(204).send();
    });
    app.post(
      '/webhooks/:id/replay',
      {
        schema: {
          tags,
          summary: 'Deliver again from a position (also resumes a paused subscription)',
          params: IdParam,
          body: Type.Object({ position: Position() }, { additionalProperties: false }),
        },
      },
      async (req) => ctx.webhooks.replay(requireWrite(req).sandboxId, req.params.id, req.body.position),
    );
  };
}
