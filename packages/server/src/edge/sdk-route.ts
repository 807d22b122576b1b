/**
 * Serves the Web SDK bundle (`@audient/web-sdk`, built to `dist/audient.min.js`) at a
 * versioned public path, so a page needs nothing but Audient: `<script src="https://cdp/sdk/v1/audient.min.js">`.
 * The bundle is read from disk on first use and again whenever its file changes (a rebuild is
 * picked up without a restart); until it is built the route answers 503 saying how to build it.
 */
import { AudientError } from '@audient/core';
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AudientContext } from '../context.js';

/** Public path of the current major version of the SDK (no API key). */
export const SDK_PATH = '/sdk/v1/audient.min.js';

/** Browsers and CDNs may keep the bundle a week; the ETag revalidates it after a rebuild. */
const CACHE_CONTROL = 'public, max-age=604800, stale-while-revalidate=86400';

/** Where the built bundle is: through the workspace package, else beside this package in the repo. */
export function sdkBundlePath(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@audient/web-sdk/package.json')), 'dist', 'audient.min.js');
  } catch {
    // From src/edge or dist/edge of packages/server alike, the web-sdk package is three levels up.
    return fileURLToPath(new URL('../../../web-sdk/dist/audient.min.js', import.meta.url));
  }
}

interface Bundle {
  mtimeMs: number;
  body: Buffer;
  etag: string;
}

/** Routes serving the Web SDK bundle (register without prefix). */
export function sdkRoutes(ctx: AudientContext, opts: { file?: string } = {}) {
  const file = opts.file ?? sdkBundlePath();
  let cached: Bundle | undefined;

  const load = async (): Promise<Bundle | undefined> => {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(file)).mtimeMs;
    } catch {
      return undefined;
    }
    if (cached?.mtimeMs === mtimeMs) return cached;
    const body = await readFile(file);
    cached = { mtimeMs, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    return cached;
  };

  return async (app: FastifyInstance): Promise<void> => {
    app.get(SDK_PATH, { schema: { hide: true } }, async (req, reply) => {
      const bundle = await load();
      if (!bundle) {
        ctx.log.warn({ file }, 'web SDK bundle missing');
        // Answered here, not thrown, so the 503 holds whatever error handler the app has.
        const e = new AudientError('UNAVAILABLE', `the Web SDK is not built (${file} is missing): run "npm run build -w @audient/web-sdk" (or "npm run build") and retry`);
        return reply.status(503).header('retry-after', '60').send(e.toJSON());
      }
      reply
        .header('access-control-allow-origin', '*')
        .header('cross-origin-resource-policy', 'cross-origin')
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', CACHE_CONTROL)
        .header('etag', bundle.etag);
      if (req.headers['if-none-match'] === bundle.etag) return reply.status(304).send();
      return reply.header('content-type', 'application/javascript; charset=utf-8').send(bundle.body);
    });
  };
}
