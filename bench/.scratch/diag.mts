import Database from 'better-sqlite3';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext, loadConfig } from '@audient/server';
import { experienceEvents, EVENT_SCHEMA } from '../lib/workload.js';

const times = new Map<string, { n: number; ms: number }>();
const acc = (k: string, ms: number) => { const e = times.get(k) ?? { n: 0, ms: 0 }; e.n++; e.ms += ms; times.set(k, e); };
const D = Database.prototype as any;
const exec0 = D.exec;
let commitCpu = 0;
D.exec = function (sql: string) { const t = performance.now(); const c = process.cpuUsage(); try { return exec0.call(this, sql); } finally { if (sql === 'COMMIT') { const u = process.cpuUsage(c); commitCpu += (u.user + u.system) / 1000; } acc('EXEC ' + sql.slice(0, 60), performance.now() - t); } };
const prep0 = D.prepare;
D.prepare = function (sql: string) {
  const s = prep0.call(this, sql);
  const S = Object.getPrototypeOf(s);
  if (!S.__patched) {
    S.__patched = true;
    for (const m of ['run', 'get', 'all']) {
      const f = S[m];
      S[m] = function (...a: unknown[]) { const t = performance.now(); try { return f.apply(this, a); } finally { acc(m + ' ' + this.source.replace(/\s+/g, ' ').slice(0, 90), performance.now() - t); } };
    }
  }
  return s;
};
const dir = mkdtempSync(join(tmpdir(), 'diag-'));
const N = Number(process.argv[2] ?? 200000), B = Number(process.argv[3] ?? 100);
const ctx = await createContext(loadConfig({ dataDir: dir, logLevel: 'warn' }, {}));
await ctx.tenancy.createSandbox({ id: 'bench', instanceAdmin: true });
await ctx.catalog.createSchema('bench', EVENT_SCHEMA);
await ctx.catalog.createDataset('bench', { id: 'web', name: 'Web', schemaId: EVENT_SCHEMA.id, profileEnabled: true });
const events = experienceEvents(N, { people: 50000, seed: 20240601 });
const t = performance.now();
for (let i = 0; i < N; i += B) await ctx.ingestion.ingest('bench', 'web', events.slice(i, i + B));
const ingestMs = performance.now() - t;
await ctx.feed.flush();
const total = performance.now() - t;
console.log(`ingest ${N} in ${Math.round(ingestMs)} ms = ${Math.round(N / ingestMs * 1000)}/s; with feed flush ${Math.round(total)} ms`);
console.log('commit cpu ms', Math.round(commitCpu)); console.log(require('node:fs').readFileSync('/proc/self/io','utf8'));
let sum = 0; for (const v of times.values()) sum += v.ms;
console.log('sql total ms', Math.round(sum));
for (const [k, v] of [...times].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) console.log(String(Math.round(v.ms)).padStart(7), String(v.n).padStart(8), (v.ms / v.n * 1000).toFixed(0).padStart(6) + 'us', k);
await ctx.bus.drain(); await ctx.close(); rmSync(dir, { recursive: true, force: true });
