#!/usr/bin/env node
/**
 * The `audient` command. `start` runs the server; the other commands call its HTTP API
 * (`--url`, `--api-key`, or AUDIENT_URL / AUDIENT_API_KEY, or the admin key in the data dir).
 * Exit codes: 0 success, 1 error, 2 bad usage, 3 finished but some records were rejected.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { adminKeyPath } from './bootstrap.js';
import { registerAudienceCommands } from './cli/audience-commands.js';
import { ApiError, Client } from './cli/client.js';
import { registerDataCommands } from './cli/data-commands.js';
import { loadConfig } from './config.js';
import { startServer } from './server.js';

const program = new Command('audient')
  .description('Audient: self-hosted real-time customer data platform')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

program
  .command('start')
  .description('start the server on the embedded store (or the database in --database-url)')
  .option('--database-url <url>', 'postgres://… or a SQLite file (AUDIENT_DATABASE_URL)')
  .option('--host <host>', 'listen address (AUDIENT_HOST)')
  .addOption(new Option('--port <port>', 'listen port (AUDIENT_PORT)').argParser((v) => Number(v)))
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (AUDIENT_TLS_CERT; with --tls-key)')
  .option('--tls-key <file>', 'PEM private key of --tls-cert (AUDIENT_TLS_KEY)')
  .action(async (opts: { databaseUrl?: string; host?: string; port?: number; tlsCert?: string; tlsKey?: string }) => {
    const { dataDir } = program.opts<{ dataDir?: string }>();
    const { tlsCert, tlsKey, ...rest } = opts;
    if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new Error('--tls-cert and --tls-key go together');
    const tls = tlsCert && tlsKey ? { tls: { certFile: resolve(tlsCert), keyFile: resolve(tlsKey) } } : {};
    const config = loadConfig({ ...rest, ...tls, ...(dataDir ? { dataDir } : {}) });
    const server = await startServer(config);
    const key = server.adminKey ?? '(set when the instance was created; see the admin.key file of its data directory)';
    process.stdout.write(`Audient is running at ${server.url}\n  store: ${server.ctx.store.kind}\n  admin API key: ${key}\n  OpenAPI: ${server.url}/openapi.json\n`);
    const stop = (): void => {
      server.stop().then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

/** The API client for commands other than start. */
function client(): Client {
  const g = program.opts<{ url?: string; apiKey?: string; dataDir?: string }>();
  const config = loadConfig(g.dataDir ? { dataDir: g.dataDir } : {});
  const url = g.url ?? process.env['AUDIENT_URL'] ?? `${config.tls ? 'https' : 'http'}://${config.host}:${config.port}`;
  const keyFile = adminKeyPath(config.dataDir);
  const apiKey = g.apiKey ?? process.env['AUDIENT_API_KEY'] ?? (existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : undefined);
  if (!apiKey) {
    process.stderr.write('error: no API key: pass --api-key, set AUDIENT_API_KEY, or run where the data directory holds admin.key\n');
    process.exit(2);
  }
  return new Client({ url, apiKey });
}

program
  .option('--url <url>', 'Audient API URL (AUDIENT_URL; default http://127.0.0.1:8080)')
  .option('--api-key <key>', 'API key (AUDIENT_API_KEY; default: the data directory admin.key)')
  .option('--data-dir <dir>', 'data directory holding admin.key (AUDIENT_DATA_DIR)');
registerDataCommands(program, client);
registerAudienceCommands(program, client);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof ApiError || err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
