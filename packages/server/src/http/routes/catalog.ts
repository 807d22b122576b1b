/** Field groups, schemas, datasets and identity namespaces. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { STANDARD_FIELD_GROUPS, resolveSchema, type FieldDef } from '@audient/core';
import type { FastifyInstance } from 'fastify';
import type { AudientContext } from '../../context.js';
import { principal, requireWrite } from '../app.js';
import { DatasetInput, DatasetPatch, IdParam, NamespaceInput, SchemaInput, SchemaUpdate } from '../schemas.js';

/** Routes for the data model. */
export function catalogRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const { catalog } = ctx;

    app.get('/field-groups', { schema: { tags: ['schemas'], summary: 'Standard field groups (XDM-compatible paths)' } }, async () => ({
      items: STANDARD_FIELD_GROUPS,
    }));

    app.post('/schemas', { schema: { tags: ['schemas'], summary: 'Create a schema', body: SchemaInput } }, async (req, reply) =>
      reply.status(201).send(await catalog.createSchema(requireWrite(req).sandboxId, { ...req.body, fields: req.body.fields as Record<string, FieldDef> })),
    );
    app.get('/schemas', { schema: { tags: ['schemas'], summary: 'List schemas' } }, async (req) => ({
      items: await catalog.listSchemas(principal(req).sandboxId),
    }));
    app.get('/schemas/:id', { schema: { tags: ['schemas'], summary: 'A schema, with its resolved fields', params: IdParam } }, async (req) => {
      const schema = await catalog.getSchema(principal(req).sandboxId, req.params.id);
      const resolved = resolveSchema(schema);
      return { ...schema, resolved: { root: resolved.root, identityFields: resolved.identityFields } };
    });
    app.put(
      '/schemas/:id',
      { schema: { tags: ['schemas'], summary: 'Evolve a schema (additive changes only)', params: IdParam, body: SchemaUpdate } },
      async (req) => catalog.evolveSchema(requireWrite(req).sandboxId, req.params.id, { ...req.body, fields: req.body.fields as Record<string, FieldDef> }),
    );

    app.post('/datasets', { schema: { tags: ['datasets'], summary: 'Create a dataset of one schema', body: DatasetInput } }, async (req, reply) =>
      reply.status(201).send(await catalog.createDataset(requireWrite(req).sandboxId, req.body)),
    );
    app.get('/datasets', { schema: { tags: ['datasets'], summary: 'List datasets' } }, async (req) => ({
      items: await catalog.listDatasets(principal(req).sandboxId),
    }));
    app.get('/datasets/:id', { schema: { tags: ['datasets'], summary: 'A dataset', params: IdParam } }, async (req) =>
      catalog.getDataset(principal(req).sandboxId, req.params.id),
    );
    app.patch(
      '/datasets/:id',
      { schema: { tags: ['datasets'], summary: 'Rename or enable/disable for profile', params: IdParam, body: DatasetPatch } },
      async (req) => catalog.updateDataset(requireWrite(req).sandboxId, req.params.id, req.body),
    );

    app.get('/namespaces', { schema: { tags: ['identity'], summary: 'Standard and custom identity namespaces' } }, async (req) => ({
      items: await catalog.listNamespaces(principal(req).sandboxId),
    }));
    app.post('/namespaces', { schema: { tags: ['identity'], summary: 'Create a custom namespace', body: NamespaceInput } }, async (req, reply) =>
      reply.status(201).send(await catalog.createNamespace(requireWrite(req).sandboxId, req.body)),
    );
  };
}
