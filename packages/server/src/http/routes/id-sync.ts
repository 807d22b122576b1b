/**
 * ID-sync routes (seed 002): how a partner's user ids reach the ID-sync table.
 *
 * - `GET /ee/v1/id-sync?configId=<datastream id>&partner=<connection id>&puid=<partner uid>&ecid=<ECID>`
 *   (no API key, like the rest of `/ee`): the sync pixel. A datastream's URL sync sends the
 *   browser to the partner with our ECID (`{ECID}`); the partner redirects it here with its own
 *   uid. The ECID is taken from `ecid`, else from the datastream's identity cookie when the
 *   browser sends it. Answers a 1×1 transparent GIF, never cached.
 * - `POST /v1/connections/:id/id-syncs` `{syncs: [{ecid, partnerUid}]}` (API key, write): the
 *   server-to-server sync, e.g. from the partner's match file or API.
 * - `GET /v1/connections/:id/id-syncs?ecid=<ECID>` (API key): the partner id synced to an ECID.
 * - `DELETE /v1/connections/:id/id-syncs?ecid=<ECID>` (API key, write): forgets it (opt-out).
 *
 * Register `idSyncPixelRoutes` with prefix `/ee` and `idSyncRoutes` with prefix `/v1`.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AudientError } from '@audient/core';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { IdSyncs } from '../../activation/id-sync.js';
import type { AudientContext } from '../../context.js';
import { decodeIdentityCookie, identityCookieName } from '../../edge/ecid.js';
import { principal, refuseUnstorableText, requireWrite } from '../app.js';
import { IdParam } from '../schemas.js';

const tags = ['activation'];
/** A 1×1 transparent GIF. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

const PixelQuery = Type.Object({
  configId: Type.String({ minLength: 1, maxLength: 128, description: 'The datastream id (it names the sandbox)' }),
  partner: Type.String({ minLength: 1, maxLength: 128, description: 'The connection id of the partner' }),
  puid: Type.String({ minLength: 1, maxLength: 256, description: "The partner's user id" }),
  ecid: Type.Optional(Type.String({ maxLength: 64, description: 'Our ECID; else read from the identity cookie' })),
});
const SyncBody = Type.Object(
  {
    syncs: Type.Array(
      Type.Object({ ecid: Type.String(), partnerUid: Type.String() }, { additionalProperties: false }),
      { minItems: 1, maxItems: 1000 },
    ),
  },
  { additionalProperties: false },
);
const EcidQuery = Type.Object({ ecid: Type.String({ minLength: 1 }) });

/** The value of one cookie of a request. */
function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

const service = (ctx: AudientContext): IdSyncs => new IdSyncs({ store: ctx.store, connections: ctx.connections, now: ctx.now });

/** The sync pixel (register with prefix `/ee`). */
export function idSyncPixelRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const syncs = service(ctx);
    refuseUnstorableText(app);
    app.get('/v1/id-sync', { schema: { tags, summary: "ID-sync pixel: stores the partner's uid for the visitor's ECID", querystring: PixelQuery } }, async (req, reply) => {
      const q = req.query;
      const target = await ctx.datastreams.resolve(q.configId);
      if (!target || !target.datastream.enabled) throw new AudientError('NOT_FOUND', `no enabled datastream ${q.configId}`);
      const fromCookie = target.datastream.orgId ? cookie(req, identityCookieName(target.datastream.orgId)) : undefined;
      const ecid = q.ecid ?? (fromCookie !== undefined ? decodeIdentityCookie(fromCookie) : undefined);
      if (!ecid) throw new AudientError('BAD_REQUEST', 'no ECID: pass ?ecid=<ECID> or send the identity cookie');
      await syncs.sync(target.sandboxId, q.partner, [{ ecid, partnerUid: q.puid }]);
      return reply
        .header('content-type', 'image/gif')
        .header('cache-control', 'no-store, max-age=0')
        .send(PIXEL);
    });
  };
}

/** The sync API (register with prefix `/v1`). */
export function idSyncRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const syncs = service(ctx);
    app.post('/connections/:id/id-syncs', { schema: { tags, summary: "Store partner user ids for ECIDs (the partner's ID syncs)", params: IdParam, body: SyncBody } }, async (req) =>
      syncs.sync(requireWrite(req).sandboxId, req.params.id, req.body.syncs),
    );
    app.get('/connections/:id/id-syncs', { schema: { tags, summary: 'The partner user id synced to an ECID', params: IdParam, querystring: EcidQuery } }, async (req) => {
      const [row] = await syncs.lookup(principal(req).sandboxId, req.params.id, [req.query.ecid]);
      if (!row) throw new AudientError('NOT_FOUND', `no partner id is synced to ECID ${req.query.ecid} for connection ${req.params.id}`);
      return { ecid: row.ecid, partnerUid: row.partnerUid, syncedAt: new Date(row.syncedAt).toISOString() };
    });
    app.delete('/connections/:id/id-syncs', { schema: { tags, summary: 'Forget the partner user id synced to an ECID', params: IdParam, querystring: EcidQuery } }, async (req, reply) => {
      const n = await syncs.forget(requireWrite(req).sandboxId, req.params.id, [req.query.ecid]);
      if (!n) throw new AudientError('NOT_FOUND', `no partner id is synced to ECID ${req.query.ecid} for connection ${req.params.id}`);
      return reply.status(204).send();
    });
  };
}
