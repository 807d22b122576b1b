/**
 * Which code a figure was measured on: the commit, whether the packages had uncommitted changes,
 * and a digest of every file under packages/{name}/src (the code the benchmarks load through tsx).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function files(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** e.g. `7af9665 + uncommitted changes; src sha256 0a1b2c3d4e5f`. */
export function sourceRevision(): string {
  const hash = createHash('sha256');
  const packages = join(ROOT, 'packages');
  for (const pkg of readdirSync(packages).sort()) {
    const src = join(packages, pkg, 'src');
    try {
      statSync(src);
    } catch {
      continue;
    }
    for (const f of files(src, [])) hash.update(f.slice(ROOT.length)).update('\0').update(readFileSync(f));
  }
  const head = git(['rev-parse', '--short', 'HEAD']) || 'unknown commit';
  const dirty = git(['status', '--porcelain', '--', 'packages']) !== '';
  return `${head}${dirty ? ' + uncommitted changes' : ''}; packages/*/src sha256 ${hash.digest('hex').slice(0, 12)}`;
}
