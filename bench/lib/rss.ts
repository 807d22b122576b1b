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

/** Samples the current RSS every 100 ms (the timer does not hold the process open). */
export interface RssSampler {
  /** Stops sampling. */
  stop(): void;
  /** The largest RSS seen, the current one included, in MB. */
  peak(): number;
}

/** Starts sampling RSS: a peak without the start-up high-water mark the kernel counter keeps. */
export function sampleRss(): RssSampler {
  let sampled = rssMB();
  const timer = setInterval(() => {
    sampled = Math.max(sampled, rssMB());
  }, 100);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    peak: () => (sampled = Math.max(sampled, rssMB())),
  };
}
