/** A context over a fresh store with the benchmark schemas and datasets (`crm` profiles, `web` events). */
import { createContext, loadConfig, type AudientContext } from '@audient/server';
import { EVENT_SCHEMA, PROFILE_SCHEMA } from './data.js';

export const SANDBOX = 'bench';

/** Opens a context on `databaseUrl` (no background tick), with the sandbox, schemas and datasets. */
export async function benchContext(opts: { dir: string; databaseUrl: string; now?: () => number }): Promise<AudientContext> {
  const config = loadConfig({ dataDir: opts.dir, databaseUrl: opts.databaseUrl, logLevel: 'warn', segmentation: { tickMs: 0 } }, {});
  const ctx = await createContext(config, opts.now ? { now: opts.now } : {});
  await ctx.tenancy.createSandbox({ id: SANDBOX, instanceAdmin: true });
  await ctx.catalog.createSchema(SANDBOX, PROFILE_SCHEMA);
  await ctx.catalog.createDataset(SANDBOX, { id: 'crm', name: 'CRM', schemaId: PROFILE_SCHEMA.id, profileEnabled: true });
  await ctx.catalog.createSchema(SANDBOX, EVENT_SCHEMA);
  await ctx.catalog.createDataset(SANDBOX, { id: 'web', name: 'Web', schemaId: EVENT_SCHEMA.id, profileEnabled: true });
  return ctx;
}
