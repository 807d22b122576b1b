/** Sandboxes and API keys. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AudientError } from '@audient/core';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AudientContext } from '../../context.js';
import { ROLES } from '../../services/tenancy.js';
import { principal, requireAdmin } from '../app.js';
import { IdParam } from '../schemas.js';

const tags = ['access'];

/** Routes for sandboxes and keys. */
export function adminRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    app.get('/sandbox', { schema: { tags, summary: 'The sandbox of the calling key' } }, async (req) => {
      const p = principal(req);
      return { sandbox: await ctx.tenancy.getSandbox(p.sandboxId), role: p.role, instanceAdmin: p.instanceAdmin };
    });

    app.post(
      '/sandboxes',
      {
        schema: {
          tags,
          summary: 'Create a sandbox (instance admins only); returns its first admin key, once',
          body: Type.Object({ id: Type.String(), name: Type.Optional(Type.String()) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        if (!principal(req).instanceAdmin) throw new AudientError('FORBIDDEN', 'only an instance admin key may create sandboxes');
        const created = await ctx.tenancy.createSandbox({ id: req.body.id, name: req.body.name });
        return reply.status(201).send(created);
      },
    );

    app.get('/api-keys', { schema: { tags, summary: 'Keys of this sandbox (never the secrets)' } }, async (req) => ({
      items: await ctx.tenancy.listKeys(requireAdmin(req).sandboxId),
    }));

    app.post(
      '/api-keys',
      {
        schema: {
          tags,
          summary: 'Create a key in this sandbox; the key is returned once',
          body: Type.Object(
            { name: Type.String({ minLength: 1, maxLength: 128 }), role: Type.Union(ROLES.map((r) => Type.Literal(r))) },
            { additionalProperties: false },
          ),
        },
      },
      async (req, reply) => reply.status(201).send(await ctx.tenancy.createKey(requireAdmin(req).sandboxId, req.body)),
    );

    app.delete('/api-keys/:id', { schema: { tags, summary: 'Revoke a key', params: IdParam } }, async (req, reply) => {
      await ctx.tenancy.revokeKey(requireAdmin(req).sandboxId, req.params.id);
      return reply.status(204).send();
    });
  };
}
