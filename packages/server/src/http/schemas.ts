/** TypeBox schemas of API bodies: one declaration gives validation, types and the OpenAPI document. */
import type { FieldDef } from '@audient/core';
import { Type, type Static } from '@sinclair/typebox';

/**
 * A position in a log (change, membership event, outbox id), as a query or body field: an
 * integer JavaScript holds exactly, so PostgreSQL's BIGINT takes it (1e30 failed there with a 500)
 * and no position is rounded to its neighbour.
 */
export const Position = (opts: { default?: number; description?: string; minimum?: number } = {}) =>
  Type.Integer({ minimum: 0, ...opts, maximum: Number.MAX_SAFE_INTEGER });

/** The error body every failing call returns. */
export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String(),
          reason: Type.String(),
          message: Type.String(),
          expected: Type.Optional(Type.String()),
          received: Type.Optional(Type.String()),
        }),
      ),
    ),
  }),
});

/** Field definitions are checked deeply by the core when a schema resolves. */
const FieldDefT = Type.Unsafe<FieldDef>({
  type: 'object',
  description: 'A field: {type, properties?, items?, values?, enum?, required?, identity?: {namespace, primary?}, labels?}',
});

export const SchemaInput = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128 }),
    name: Type.String({ minLength: 1, maxLength: 256 }),
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    class: Type.Union([Type.Literal('profile'), Type.Literal('event')]),
    fieldGroups: Type.Array(Type.String(), { default: [] }),
    fields: Type.Record(Type.String(), FieldDefT, { default: {} }),
  },
  { additionalProperties: false },
);
export type SchemaInput = Static<typeof SchemaInput>;

export const SchemaUpdate = Type.Omit(SchemaInput, ['id'], { additionalProperties: false });

export const DatasetInput = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128 }),
    name: Type.String({ minLength: 1, maxLength: 256 }),
    schemaId: Type.String({ minLength: 1 }),
    profileEnabled: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export const DatasetPatch = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })), profileEnabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

export const NamespaceInput = Type.Object(
  {
    code: Type.String({ minLength: 2, maxLength: 64 }),
    name: Type.String({ minLength: 1, maxLength: 256 }),
    type: Type.Union([Type.Literal('cookie'), Type.Literal('device'), Type.Literal('person')]),
    pattern: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

export const IdentityQuery = Type.Object(
  {
    ns: Type.String({ description: 'Namespace code, any case (email, ECID, crmId, ...)' }),
    id: Type.String({ description: 'The identity value; normalised as its namespace requires' }),
  },
  { additionalProperties: false },
);

export const IdParam = Type.Object({ id: Type.String() });
