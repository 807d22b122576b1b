/** Starts the HTTP server over a context and stops it cleanly on SIGINT/SIGTERM. */
import type { FastifyInstance } from 'fastify';
import { bootstrap } from './bootstrap.js';
import type { Config } from './config.js';
import { createContext, type AudientContext } from './context.js';
import { buildApp } from './http/app.js';

/** A started server. */
export interface RunningServer {
  ctx: AudientContext;
  app: FastifyInstance;
  url: string;
  adminKey: string | undefined;
  stop(): Promise<void>;
}

/** Opens the store, bootstraps the first sandbox if needed, and listens. */
export async function startServer(config: Config): Promise<RunningServer> {
  const ctx = await createContext(config);
  const { apiKey } = await bootstrap(ctx);
  const app = (await buildApp(ctx)) as unknown as FastifyInstance;
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `${config.tls ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  return {
    ctx,
    app,
    url,
    adminKey: apiKey,
    async stop() {
      await app.close();
      await ctx.close();
    },
  };
}
