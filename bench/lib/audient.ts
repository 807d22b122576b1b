/**
 * Audient in a benchmark process: the sandbox the benchmarks load, and what the server reports
 * of a run from its own metrics.
 */
import type { AudientContext } from '@audient/server';
import { EVENT_SCHEMA } from './workload.js';

/**
 * Creates the benchmarks' sandbox `sandboxId` (instance admin): with `crmFieldGroups`, the `crm`
 * profile schema of those field groups and its dataset; always the `web` dataset of experience
 * events. Returns the sandbox's admin key.
 */
export async function createBenchSandbox(ctx: AudientContext, sandboxId: string, opts: { crmFieldGroups?: string[] } = {}): Promise<string> {
  const { apiKey } = await ctx.tenancy.createSandbox({ id: sandboxId, instanceAdmin: true });
  if (opts.crmFieldGroups) {
    await ctx.catalog.createSchema(sandboxId, { id: 'crm', name: 'CRM profiles', class: 'profile', fieldGroups: opts.crmFieldGroups, fields: {} });
    await ctx.catalog.createDataset(sandboxId, { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
  }
  await ctx.catalog.createSchema(sandboxId, EVENT_SCHEMA);
  await ctx.catalog.createDataset(sandboxId, { id: 'web', name: 'Web', schemaId: EVENT_SCHEMA.id, profileEnabled: true });
  return apiKey;
}

/** Records accepted and rejected by ingestion, and changes the feed published, so far. */
export async function ingestCounts(ctx: AudientContext): Promise<{ accepted: number; rejected: number; changesPublished: number }> {
  const ingested = (await ctx.metrics.recordsIngested.get()).values;
  const count = (status: string): number => ingested.filter((v) => v.labels['status'] === status).reduce((n, v) => n + v.value, 0);
  const changesPublished = (await ctx.metrics.changesPublished.get()).values.reduce((n, v) => n + v.value, 0);
  return { accepted: count('accepted'), rejected: count('rejected'), changesPublished };
}
