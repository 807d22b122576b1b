/**
 * Summarises a V8 `.cpuprofile` (written by `BENCH_CPU_PROF=<dir> npm run bench -- <id>`): the
 * functions with the most self time, the most total (inclusive) time, and self time by package.
 *
 *   node --import tsx bench/cpu-profile.ts <file.cpuprofile> [top=25] [--window=<startUs>,<endUs>]
 *
 * `--window` keeps the samples of one phase (profile-read logs the window of its timed reads).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
/** The V8 CPU profile format (the parts used here). */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** One row of a summary: a function or a package, with its time in ms and share of all samples. */
export interface Row {
  name: string;
  ms: number;
  pct: number;
}

/** What a profile says, by function and by package. */
export interface ProfileSummary {
  totalMs: number;
  self: Row[];
  inclusive: Row[];
  packages: Row[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function where(f: CallFrame): string {
  if (!f.url) return '';
  const path = f.url.startsWith('file://') ? fileURLToPath(f.url) : f.url;
  return `${path.startsWith(ROOT) ? path.slice(ROOT.length) : path}:${f.lineNumber + 1}`;
}

function label(f: CallFrame): string {
  const at = where(f);
  return `${f.functionName || '(anonymous)'}${at ? ` ${at}` : ''}`;
}

/** Which package a frame belongs to: an npm dependency, one of ours, Node's internals or V8's. */
function packageOf(f: CallFrame): string {
  const url = f.url;
  if (!url) return f.functionName.startsWith('(') ? f.functionName : '(native / V8 builtins)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ours = /packages\/([^/]+)\/src\/(?:([^/]+)\/)?/.exec(url);
  if (ours) return `@audient/${ours[1]}${ours[2] && !ours[2].endsWith('.ts') ? `/${ours[2]}` : ''}`;
  if (url.startsWith('node:')) return 'node: internals';
  if (url.includes('/bench/')) return 'bench';
  return url;
}

function rows(map: Map<string, number>, totalMs: number, top: number): Row[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: Math.round((us / 1000 / totalMs) * 1000) / 10 }));
}

/** Summarises a profile; `top` rows per table; `window` keeps samples taken within [start, end] µs. */
export function summarise(profile: CpuProfile, top = 25, window?: [number, number]): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const packages = new Map<string, number>();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (window && (at < window[0] || at > window[1])) return;
    const node = byId.get(id);
    if (!node) return;
    total += dt;
    const name = label(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + dt);
    const pkg = packageOf(node.callFrame);
    packages.set(pkg, (packages.get(pkg) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const l = label(n.callFrame);
      if (seen.has(l) || l === '(root)') continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
    }
  });
  const totalMs = total / 1000;
  return { totalMs, self: rows(self, totalMs, top), inclusive: rows(inclusive, totalMs, top), packages: rows(packages, totalMs, top) };
}

function print(title: string, r: Row[]): void {
  console.log(`\n${title}`);
  for (const x of r) console.log(`${x.pct.toFixed(1).padStart(6)} %  ${String(x.ms).padStart(7)} ms  ${x.name}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const args = process.argv.slice(2);
  const windowArg = args.find((a) => a.startsWith('--window='));
  const window = windowArg ? (windowArg.slice('--window='.length).split(',').map(Number) as [number, number]) : undefined;
  const [file, topArg] = args.filter((a) => !a.startsWith('--'));
  if (!file) {
    console.error('usage: node --import tsx bench/cpu-profile.ts <file.cpuprofile> [top] [--window=<startUs>,<endUs>]');
    process.exit(2);
  }
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(topArg ?? 25), window);
  console.log(`${file}: ${Math.round(s.totalMs)} ms sampled`);
  print('self time by package', s.packages);
  print('self time by function', s.self);
  print('total (inclusive) time by function', s.inclusive);
}
