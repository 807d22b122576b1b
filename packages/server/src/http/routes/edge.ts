/**
 * Edge routes.
 * - `/v1/datastreams` (API key): datastream CRUD.
 * - `/ee/v1/interact?configId=<datastream id>` and `/ee/v1/collect?configId=…` (no API key: the
 *   datastream id and its CORS allow-list are the gate), speaking the Experience Edge protocol so
 *   Adobe Web SDK pages can point their edge domain at Audient; `/ee/v1/identity/acquire`
 *   (getIdentity) and `/ee/v1/privacy/set-consent` (setConsent). Every path also answers with a
 *   region (location hint) in it, `/ee/<region>/v1/…`, as Experience Edge does. Errors use the edge format
 *   `{type, status, title, detail, report?}`, never the API's.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AudientContext } from '../../context.js';
import type { Datastream } from '../../edge/datastreams.js';
import { stateEntriesFromCookieHeader } from '../../edge/ecid.js';
import { EdgeError } from '../../edge/edge-errors.js';
import { interactJson } from '../../edge/answer-json.js';
import type { ConsentRequestBody, EdgeRequestBody, InteractResponse } from '../../edge/edge-service.js';
import { newUuid } from '../../ids.js';
import { principal, requireWrite } from '../app.js';
import { IdParam } from '../schemas.js';

/** Largest interact / collect body, bytes. */
export const EDGE_MAX_BODY_BYTES = 256 * 1024;

/** Whether a path is served by the edge (no API key; datastream id and CORS instead). */
export function isEdgePath(path: string): boolean {
  return path.startsWith('/ee/');
}

const tags = ['edge'];
const SyncBody = Type.Union([
  Type.Object(
    {
      id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      type: Type.Literal('url'),
      url: Type.String({ minLength: 1, maxLength: 2048, description: 'URL template; {ECID} is replaced by the visitor ECID' }),
      hideReferrer: Type.Optional(Type.Boolean()),
      ttlMinutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 525_600 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      type: Type.Literal('cookie'),
      name: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,128}$' }),
      value: Type.String({ maxLength: 1024, description: 'Cookie value template; {ECID} is replaced' }),
      domain: Type.Optional(Type.String({ maxLength: 253 })),
      ttlDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 400 })),
    },
    { additionalProperties: false },
  ),
]);
const DatastreamBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256 }),
    enabled: Type.Optional(Type.Boolean()),
    allowedOrigins: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { maxItems: 100, description: 'Origins allowed by CORS, or *' })),
    eventDatasetId: Type.Optional(Type.String({ minLength: 1, description: 'Event dataset page events are ingested into' })),
    profileDatasetId: Type.Optional(Type.String({ minLength: 1, description: 'Profile dataset (with consents) that set-consent preferences are stored into' })),
    orgId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9@_-]{1,128}$', description: 'Names the identity cookie kndctr_<orgId>_identity' })),
    urlSyncs: Type.Optional(Type.Array(SyncBody, { maxItems: 50 })),
  },
  { additionalProperties: false },
);
const Open = { additionalProperties: true } as const;
const EdgeBody = Type.Object(
  {
    events: Type.Array(
      Type.Object({ xdm: Type.Record(Type.String(), Type.Unknown()), data: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }, Open),
      { minItems: 1, maxItems: 100 },
    ),
    meta: Type.Optional(
      Type.Object(
        { state: Type.Optional(Type.Object({ entries: Type.Optional(Type.Array(Type.Object({ key: Type.String(), value: Type.String() }, Open), { maxItems: 100 })) }, Open)) },
        Open,
      ),
    ),
  },
  Open,
);

const Meta = Type.Optional(
  Type.Object(
    { state: Type.Optional(Type.Object({ entries: Type.Optional(Type.Array(Type.Object({ key: Type.String(), value: Type.String() }, Open), { maxItems: 100 })) }, Open)) },
    Open,
  ),
);
/** identity/acquire (getIdentity): no events, only the identity query and the cookies. */
const AcquireBody = Type.Object({ meta: Meta }, Open);
/** privacy/set-consent (setConsent): Adobe 1.0 / 2.0 or IAB TCF 2.0 preferences. */
const ConsentBody = Type.Object(
  {
    consent: Type.Array(Type.Object({ standard: Type.String({ minLength: 1, maxLength: 32 }), version: Type.String({ minLength: 1, maxLength: 16 }), value: Type.Unknown() }, Open), {
      minItems: 1,
      maxItems: 10,
    }),
    identityMap: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    meta: Meta,
  },
  Open,
);
/**
 * The interact answer (edge-service.ts `InteractResponse`), for the API's description: the
 * routes send it as text they write themselves (see answer-json.ts).
 */
const InteractAnswer = Type.Object({
  requestId: Type.String(),
  handle: Type.Array(Type.Object({ type: Type.String(), payload: Type.Array(Type.Unknown()) })),
  warnings: Type.Optional(Type.Array(Type.Unknown())),
});
/** Sends an interact answer as the JSON text answer-json.ts writes (Fastify sends a string it is given as it is). */
function answer(reply: FastifyReply, res: InteractResponse): FastifyReply {
  return reply.header('content-type', 'application/json; charset=utf-8').send(interactJson(res));
}
/** A region (location hint) in an edge path, `/ee/<region>/v1/…`: `irl1`, `va6`, `t35`. */
const REGION_RE = /^[A-Za-z0-9]{1,32}$/;

/** Routes for datastream management (API key). */
export function datastreamRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const { datastreams } = ctx;
    app.post('/datastreams', { schema: { tags, summary: 'Create a datastream (its id is global: edge requests name it as configId)', body: DatastreamBody } }, async (req, reply) =>
      reply.status(201).send(await datastreams.create(requireWrite(req).sandboxId, req.body)),
    );
    app.get('/datastreams', { schema: { tags, summary: 'Datastreams' } }, async (req) => ({ items: await datastreams.list(principal(req).sandboxId) }));
    app.get('/datastreams/:id', { schema: { tags, summary: 'A datastream', params: IdParam } }, async (req) => datastreams.get(principal(req).sandboxId, req.params.id));
    app.put('/datastreams/:id', { schema: { tags, summary: 'Replace a datastream', params: IdParam, body: DatastreamBody } }, async (req) =>
      datastreams.update(requireWrite(req).sandboxId, req.params.id, req.body),
    );
    app.delete('/datastreams/:id', { schema: { tags, summary: 'Remove a datastream', params: IdParam } }, async (req, reply) => {
      await datastreams.delete(requireWrite(req).sandboxId, req.params.id);
      return reply.status(204).send();
    });
  };
}

/** Whether a browser origin may call a datastream. */
function originAllowed(datastream: Datastream, origin: string): boolean {
  return datastream.allowedOrigins.includes('*') || datastream.allowedOrigins.includes(origin);
}

/** Maps anything thrown in the edge scope to an edge error. */
function toEdgeError(err: FastifyError | Error): EdgeError {
  if (err instanceof EdgeError) return err;
  const f = err as FastifyError;
  if (f.validation) {
    const details = f.validation.map((v) => ({ path: v.instancePath.replace(/^\//, '').replace(/\//g, '.') || 'body', message: v.message ?? 'invalid' }));
    return new EdgeError('MALFORMED_REQUEST', 'the request does not match the interact protocol: {events: [{xdm, data?}], meta?}', details);
  }
  switch (f.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new EdgeError('REQUEST_TOO_LARGE', `an edge request may be at most ${EDGE_MAX_BODY_BYTES} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new EdgeError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json or text/plain JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new EdgeError('MALFORMED_REQUEST', 'the body is empty; send {events: [...]}');
    default:
      break;
  }
  if (err instanceof SyntaxError || (f.statusCode !== undefined && f.statusCode >= 400 && f.statusCode < 500)) {
    return new EdgeError('MALFORMED_REQUEST', `the body is not valid JSON: ${err.message}`);
  }
  return new EdgeError('INTERNAL', 'internal error; it has been logged');
}

/** What the edge's onRequest hook settled for a request. */
interface EdgeRequestState {
  requestId: string;
  target?: { sandboxId: string; datastream: Datastream };
}
const EDGE_STATE = 'audientEdge';
type EdgeFastifyRequest = FastifyRequest & { [EDGE_STATE]: EdgeRequestState | null };

/** Routes of the edge endpoint (register with prefix `/ee`). */
export function edgeRoutes(ctx: AudientContext) {
  return async (base: FastifyInstance): Promise<void> => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    // Each request's id and datastream, on the request itself (a WeakMap entry per request cost
    // more: ephemeron bookkeeping on every set and collection).
    app.decorateRequest(EDGE_STATE, null);
    const stateOf = (req: FastifyRequest): EdgeRequestState | null => (req as EdgeFastifyRequest)[EDGE_STATE];

    // The Web SDK sends JSON as text/plain (sendBeacon, and fetch without a CORS preflight).
    app.removeContentTypeParser('text/plain');
    app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, text, done) => {
      try {
        done(null, JSON.parse(text as string));
      } catch (err) {
        done(new EdgeError('MALFORMED_REQUEST', `the body is not valid JSON: ${(err as Error).message}`), undefined);
      }
    });

    app.setErrorHandler(async (err, req, reply) => {
      const e = toEdgeError(err as FastifyError);
      // When no datastream was resolved (unknown or disabled configId), let the page read why:
      // the error body carries no data, so reflecting the origin exposes nothing.
      const origin = req.headers.origin;
      if (origin && !stateOf(req)?.target) reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
      if (e.status >= 500) req.log.error({ err, sandboxId: stateOf(req)?.target?.sandboxId }, 'edge request failed');
      return reply.status(e.status).header('content-type', 'application/json').send(e.toBody(stateOf(req)?.requestId));
    });
    app.setNotFoundHandler(async (req, reply) => {
      const e = new EdgeError('NOT_FOUND', `no edge route ${req.method} ${req.url.split('?')[0]}`);
      return reply.status(404).send(e.toBody());
    });

    // Before the body is read: find the datastream and apply its CORS allow-list, so even
    // parse errors reach an allowed page readable.
    app.addHook('onRequest', async (req, reply) => {
      if (!req.routeOptions.url) return; // unknown route: the not-found handler answers
      const query = req.query as { configId?: string; requestId?: string };
      const requestId = query.requestId && /^[A-Za-z0-9-]{1,64}$/.test(query.requestId) ? query.requestId : newUuid();
      const state: EdgeRequestState = { requestId };
      (req as EdgeFastifyRequest)[EDGE_STATE] = state;
      const { region } = req.params as { region?: string };
      if (region !== undefined && !REGION_RE.test(region)) throw new EdgeError('NOT_FOUND', `no edge region ${region}: a region is letters and digits, e.g. /ee/irl1/v1/interact`);
      state.target = await ctx.edge.datastream(query.configId);
      const origin = req.headers.origin;
      if (origin === undefined) return;
      if (!originAllowed(state.target.datastream, origin)) throw new EdgeError('ORIGIN_NOT_ALLOWED', `origin ${origin} is not allowed by datastream ${state.target.datastream.id}`);
      reply.header('access-control-allow-origin', origin).header('access-control-allow-credentials', 'true').header('vary', 'Origin');
    });

    const preflight = async (req: FastifyRequest, reply: FastifyReply) => {
      const asked = req.headers['access-control-request-headers'];
      return reply
        .status(204)
        .header('access-control-allow-methods', 'POST, OPTIONS')
        .header('access-control-allow-headers', typeof asked === 'string' && asked ? asked : 'content-type')
        .header('access-control-max-age', '600')
        .send();
    };
    const target = (req: FastifyRequest) => {
      const state = stateOf(req);
      if (!state?.target) throw new EdgeError('MISSING_CONFIG_ID', 'pass the datastream id as ?configId=<datastream id>');
      const { region } = req.params as { region?: string };
      return { requestId: state.requestId, target: state.target, region };
    };
    /** The body's state entries, plus the `kndctr_*` cookies the browser sent that the body does not carry (first-party edge domain). */
    const withCookies = <T extends { meta?: EdgeRequestBody['meta'] }>(req: FastifyRequest, body: T): T => {
      const cookies = stateEntriesFromCookieHeader(req.headers.cookie);
      if (!cookies.length) return body;
      const entries = body.meta?.state?.entries ?? [];
      const extra = cookies.filter((c) => !entries.some((e) => e.key === c.key));
      return extra.length ? { ...body, meta: { ...body.meta, state: { ...body.meta?.state, entries: [...entries, ...extra] } } } : body;
    };
    // Each path with and without a region: /ee/v1/interact and /ee/irl1/v1/interact.
    for (const prefix of ['', '/:region']) {
      const hide = prefix !== '';
      for (const path of ['interact', 'collect', 'identity/acquire', 'privacy/set-consent']) {
        app.options(`${prefix}/v1/${path}`, { schema: { hide: true } }, preflight);
      }
      app.post(
        `${prefix}/v1/interact`,
        {
          bodyLimit: EDGE_MAX_BODY_BYTES,
          schema: {
            tags,
            hide,
            summary: 'Experience Edge interact: ingest the events and answer identity, profile lookups and syncs',
            body: EdgeBody,
            response: { 200: InteractAnswer },
            security: [],
          },
        },
        async (req, reply) => {
          const t = target(req);
          return answer(reply, await ctx.edge.handle(t.target, withCookies(req, req.body as EdgeRequestBody), { requestId: t.requestId, mode: 'interact', region: t.region }));
        },
      );
      app.post(
        `${prefix}/v1/collect`,
        { bodyLimit: EDGE_MAX_BODY_BYTES, schema: { tags, hide, summary: 'Experience Edge collect: ingest the events, answer nothing (204)', body: EdgeBody, security: [] } },
        async (req, reply) => {
          const t = target(req);
          await ctx.edge.handle(t.target, withCookies(req, req.body as EdgeRequestBody), { requestId: t.requestId, mode: 'collect', region: t.region });
          return reply.status(204).send();
        },
      );
      app.post(
        `${prefix}/v1/identity/acquire`,
        { bodyLimit: EDGE_MAX_BODY_BYTES, schema: { tags, hide, summary: "Experience Edge identity acquire (the Web SDK's getIdentity): the visitor's ECID and cookies", body: AcquireBody, security: [] } },
        async (req, reply) => {
          const t = target(req);
          const body = { ...(req.body as Omit<EdgeRequestBody, 'events'>), events: [] };
          return answer(reply, await ctx.edge.handle(t.target, withCookies(req, body), { requestId: t.requestId, mode: 'acquire', region: t.region }));
        },
      );
      app.post(
        `${prefix}/v1/privacy/set-consent`,
        {
          bodyLimit: EDGE_MAX_BODY_BYTES,
          schema: { tags, hide, summary: "Experience Edge set-consent (the Web SDK's setConsent): store the visitor's consent on its profile", body: ConsentBody, security: [] },
        },
        async (req, reply) => {
          const t = target(req);
          return answer(reply, await ctx.edge.setConsent(t.target, withCookies(req, req.body as ConsentRequestBody), { requestId: t.requestId, region: t.region }));
        },
      );
    }
  };
}
