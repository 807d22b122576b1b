/** Peak resident memory of the current process, for the `peakRssMB` of entries. */
import { readFileSync } from 'node:fs';

const MB = 1024 * 1024;

/** Peak RSS so far in MB: the kernel's high-water mark (VmHWM) when /proc has it, else maxRSS. */
export function peakRssMB(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Math.round(Number(m[1]) / 1024);
  } catch {
    // Not Linux: fall through to what Node reports.
  }
  return Math.round((process.resourceUsage().maxRSS * 1024) / MB);
}

/** Current RSS in MB. */
export function rssMB(): number {
  return Math.round(process.memoryUsage.rss() / MB);
}
