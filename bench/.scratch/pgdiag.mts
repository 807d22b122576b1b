import pg from 'pg';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext, loadConfig } from '@audient/server';
import { experienceEvents, EVENT_SCHEMA } from '../lib/workload.js';
import { benchPgUrl, createScratchSchema } from '../lib/postgres.js';
const counts = new Map<string, { n: number; ms: number }>();
const C = pg.Client.prototype as any;
const q0 = C.query;
let counting = false;
C.query = function (...a: any[]) {
  const sql = typeof a[0] === 'string' ? a[0] : a[0]?.text ?? '?';
  const key = sql.replace(/\s+/g, ' ').slice(0, 80);
  const t = performance.now();
  const r = q0.apply(this, a);
  if (counting && r && typeof r.then === 'function') r.then(() => { const e = counts.get(key) ?? { n: 0, ms: 0 }; e.n++; e.ms += performance.now() - t; counts.set(key, e); }, () => {});
  return r;
};
const N = Number(process.argv[2] ?? 2000), B = Number(process.argv[3] ?? 1);
const scratch = await createScratchSchema(benchPgUrl());
try {
  const ctx = await createContext(loadConfig({ dataDir: mkdtempSync(join(tmpdir(), 'pgd-')), databaseUrl: scratch.url, logLevel: 'warn' }, {}));
  await ctx.tenancy.createSandbox({ id: 'bench', instanceAdmin: true });
  await ctx.catalog.createSchema('bench', EVENT_SCHEMA);
  await ctx.catalog.createDataset('bench', { id: 'web', name: 'Web', schemaId: EVENT_SCHEMA.id, profileEnabled: true });
  const events = experienceEvents(N, { people: 50000, seed: 20240601 });
  counting = true;
  const t = performance.now();
  for (let i = 0; i < N; i += B) await ctx.ingestion.ingest('bench', 'web', events.slice(i, i + B));
  await ctx.feed.flush(); await ctx.bus.drain();
  const ms = performance.now() - t;
  counting = false;
  let total = 0; for (const v of counts.values()) total += v.n;
  console.log(`${N} events in batches of ${B}: ${Math.round(N / ms * 1000)}/s; ${total} queries = ${(total / (N / B)).toFixed(1)} per ingest call`);
  for (const [k, v] of [...counts].sort((a, b) => b[1].n - a[1].n).slice(0, 30)) console.log(String(v.n).padStart(7), (v.ms / v.n).toFixed(2).padStart(7) + 'ms', k);
  await ctx.close();
} finally { await scratch.drop(); }
