/**
 * The HTTP API (Fastify): authentication by API key, one error format from the error catalogue,
 * request schemas that validate and produce the OpenAPI document served at /openapi.json,
 * Prometheus metrics at /metrics and a health check at /healthz.
 */
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AudientError, unstorableText, type ErrorDetail } from '@audient/core';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { AudientContext } from '../context.js';
import type { Principal } from '../services/tenancy.js';
import { SDK_PATH, sdkRoutes } from '../edge/sdk-route.js';
import { activationRoutes } from './routes/activation.js';
import { adminRoutes } from './routes/admin.js';
import { audienceRoutes } from './routes/audiences.js';
import { catalogRoutes } from './routes/catalog.js';
import { datastreamRoutes, edgeRoutes, isEdgePath } from './routes/edge.js';
import { idSyncPixelRoutes, idSyncRoutes } from './routes/id-sync.js';
import { ingestRoutes } from './routes/ingest.js';
import { profileRoutes } from './routes/profiles.js';
import { webhookRoutes } from './routes/webhooks.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

const PUBLIC = new Set(['/healthz', '/metrics', '/openapi.json', SDK_PATH]);

/** The authenticated principal of a request (routes under /v1 always have one). */
export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw new AudientError('UNAUTHENTICATED', 'missing API key');
  return req.principal;
}

/** Refuses the request unless the key's role may write. */
export function requireWrite(req: FastifyRequest): Principal {
  const p = principal(req);
  if (p.role === 'reader') throw new AudientError('FORBIDDEN', 'this API key is read-only');
  return p;
}

/** Refuses the request unless the key is a sandbox admin. */
export function requireAdmin(req: FastifyRequest): Principal {
  const p = principal(req);
  if (p.role !== 'admin') throw new AudientError('FORBIDDEN', 'this call needs an admin API key of the sandbox');
  return p;
}

function validationDetails(err: FastifyError): ErrorDetail[] {
  return (err.validation ?? []).map((v) => {
    const missing = (v.params as { missingProperty?: string }).missingProperty;
    const extra = (v.params as { additionalProperty?: string }).additionalProperty;
    const base = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const path = [err.validationContext, base, missing ?? extra].filter(Boolean).join('.');
    return {
      path,
      reason: v.keyword,
      message: extra ? `unknown property ${extra}` : (v.message ?? 'invalid'),
    };
  });
}

/** Route config of routes whose body is records: ingestion refuses a bad one by itself, keeping the others. */
export const RECORDS_BODY = { recordsInBody: true } as const;

/**
 * Refuses a request whose path parameters, query or body hold text no store keeps (the NUL
 * character U+0000, an unpaired surrogate; see unstorableText in the core), on every store alike,
 * with where it is, instead of failing the write with an internal error. Routes whose body is
 * records (RECORDS_BODY) are checked record by record by ingestion: one bad record costs only itself.
 */
export function refuseUnstorableText(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    // Copies: the query parser's objects have a prototype of their own, which the check does not look into.
    const parts: Array<[string, unknown]> = [['params', { ...(req.params as object) }], ['query', { ...(req.query as object) }]];
    if (!(req.routeOptions.config as { recordsInBody?: boolean }).recordsInBody) parts.push(['body', req.body]);
    const details: ErrorDetail[] = [];
    for (const [where, value] of parts) for (const d of unstorableText(value)) details.push({ ...d, path: d.path ? `${where}.${d.path}` : where });
    if (details.length) throw new AudientError('VALIDATION_FAILED', 'the request holds text no store keeps (U+0000 or an unpaired surrogate)', details);
  });
}

/** Maps any error to the catalogue's format and status. */
function toAudientError(err: FastifyError | AudientError | Error): AudientError {
  if (err instanceof AudientError) return err;
  const f = err as FastifyError;
  if (f.validation) return new AudientError('VALIDATION_FAILED', 'request does not match the API schema', validationDetails(f));
  switch (f.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AudientError('BODY_TOO_LARGE', 'request body is larger than this endpoint accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AudientError('UNSUPPORTED_MEDIA_TYPE', `unsupported content type; ${f.message}`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AudientError('BAD_REQUEST', 'the body is empty; send a JSON document');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AudientError('MALFORMED_JSON', `body is not valid JSON: ${f.message}`);
    default:
      break;
  }
  if (err instanceof SyntaxError || f.statusCode === 400) return new AudientError('MALFORMED_JSON', `body is not valid JSON: ${err.message}`);
  if (f.statusCode && f.statusCode >= 400 && f.statusCode < 500) return new AudientError('BAD_REQUEST', err.message);
  return new AudientError('INTERNAL', 'internal error; it has been logged');
}

/** Builds the Fastify app over a context. */
export async function buildApp(ctx: AudientContext) {
  // HTTPS when configured (AUDIENT_TLS_CERT / AUDIENT_TLS_KEY): the same app on a TLS server.
  const { tls } = ctx.config;
  const https = tls ? { https: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } } : {};
  const app = Fastify({
    loggerInstance: ctx.log,
    bodyLimit: ctx.config.maxBodyBytes,
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
    ...https,
  } as FastifyServerOptions).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Audient API', version: '0.1.0', description: 'Self-hosted real-time customer data platform' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An Audient API key' } } },
      security: [{ apiKey: [] }],
    },
  });

  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0] ?? '';
    if (PUBLIC.has(path) || isEdgePath(path)) return;
    const header = req.headers.authorization;
    const key = header?.startsWith('Bearer ') ? header.slice(7).trim() : (req.headers['x-api-key'] as string | undefined);
    if (!key) throw new AudientError('UNAUTHENTICATED', 'send an API key as "Authorization: Bearer <key>" or "x-api-key: <key>"');
    const p = await ctx.tenancy.authenticate(key);
    if (!p) throw new AudientError('UNAUTHENTICATED', 'the API key is unknown or revoked');
    req.principal = p;
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  app.setErrorHandler(async (err, req, reply) => {
    const e = toAudientError(err as FastifyError);
    if (e.status >= 500) req.log.error({ err, sandboxId: req.principal?.sandboxId }, 'request failed');
    return reply.status(e.status).send(e.toJSON());
  });
  app.setNotFoundHandler(async (req, reply) => {
    const e = new AudientError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
    return reply.status(404).send(e.toJSON());
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok', store: ctx.store.kind }));
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    return reply.header('content-type', ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // The API, behind the unstorable-text guard (the edge's interact path is not: its events are records).
  await app.register(
    async (v1) => {
      refuseUnstorableText(v1);
      for (const routes of [adminRoutes, catalogRoutes, ingestRoutes, profileRoutes, audienceRoutes, webhookRoutes, activationRoutes, idSyncRoutes, datastreamRoutes]) {
        await v1.register(routes(ctx));
      }
    },
    { prefix: '/v1' },
  );
  await app.register(idSyncPixelRoutes(ctx), { prefix: '/ee' });
  await app.register(sdkRoutes(ctx));
  await app.register(edgeRoutes(ctx), { prefix: '/ee' });
  return app;
}
