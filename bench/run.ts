/**
 * `npm run bench [-- <prefix>…]`: runs every benchmark whose id starts with one of the prefixes
 * (all of them without one), merges the figures into bench/results.json and regenerates
 * bench/RESULTS.md. `BENCH_CPU_PROF=<dir>` makes the processes under test write CPU profiles
 * (summarise one with `node --import tsx bench/cpu-profile.ts <file>`); with it, or with
 * `BENCH_SMOKE=1` (tiny counts, to check that everything runs), nothing is written.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { delivery } from './delivery.js';
import { edge } from './edge.js';
import { ingestHttp } from './ingest-http.js';
import type { Family, RunEnv } from './lib/family.js';
import { mergeResults, renderResultsMd, type Results } from './lib/results.js';
import { profileRead } from './profile-read.js';
import { segmentation } from './segmentation.js';
import { storeProcesses } from './store-processes.js';

const FAMILIES: readonly Family[] = [ingestHttp, profileRead, segmentation, delivery, edge, storeProcesses];
const HERE = fileURLToPath(new URL('.', import.meta.url));

async function main(): Promise<number> {
  const prefixes = process.argv.slice(2).filter((a) => a.trim() !== '');
  const all = FAMILIES.flatMap((f) => f.ids);
  const selected = new Set(all.filter((id) => prefixes.length === 0 || prefixes.some((p) => id.startsWith(p))));
  if (selected.size === 0) {
    console.error(`no benchmark id starts with ${prefixes.join(' or ')}; ids:\n  ${all.join('\n  ')}`);
    return 1;
  }
  const smoke = process.env['BENCH_SMOKE'] === '1';
  const cpuProfDir = process.env['BENCH_CPU_PROF'] ? resolve(process.env['BENCH_CPU_PROF']) : undefined;
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'audient-bench-'));
  const env: RunEnv = { tmp, cpuProfDir, scale: smoke ? 0.02 : 1, log: (line) => console.log(line) };
  const started = Date.now();
  const results: Results = {};
  let failures = 0;
  try {
    for (const family of FAMILIES) {
      const mine = new Set(family.ids.filter((id) => selected.has(id)));
      if (!mine.size) continue;
      console.log(`== ${family.name}: ${[...mine].join(', ')}`);
      try {
        Object.assign(results, await family.run(mine, env));
      } catch (err) {
        failures++;
        console.error(`${family.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`\nfinished in ${Math.round((Date.now() - started) / 1000)} s`);
  for (const [id, e] of Object.entries(results)) {
    console.log(`${id}: ${e.value} ${e.unit} (goal ${e.goal}); peer ${e.peer.name} ${e.peer.value}; ratio ${e.ratio}`);
  }
  if (smoke || cpuProfDir) {
    console.log(`${smoke ? 'BENCH_SMOKE=1' : 'BENCH_CPU_PROF (figures under a profiler are not comparable)'}: nothing written`);
  } else if (Object.keys(results).length) {
    const merged = mergeResults(join(HERE, 'results.json'), results);
    writeFileSync(join(HERE, 'RESULTS.md'), renderResultsMd(merged));
    console.log('wrote bench/results.json and bench/RESULTS.md');
  }
  return failures ? 1 : 0;
}

process.exitCode = await main();
