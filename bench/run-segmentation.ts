/**
 * Runs only the segmentation family and prints its results JSON (writes nothing):
 * `node --conditions=development --import tsx bench/run-segmentation.ts [id-prefix…]`.
 * BENCH_SMOKE=1 uses tiny counts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { segmentation } from './segmentation.js';

const prefixes = process.argv.slice(2);
const selected = new Set(segmentation.ids.filter((id) => !prefixes.length || prefixes.some((p) => id.startsWith(p))));
const tmp = mkdtempSync(join(tmpdir(), 'audient-bench-seg-'));
try {
  const results = await segmentation.run(selected, { tmp, cpuProfDir: process.env['BENCH_CPU_PROF'], scale: process.env['BENCH_SMOKE'] === '1' ? 0.02 : 1, log: (l) => console.log(l) });
  console.log(JSON.stringify(results, null, 2));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
