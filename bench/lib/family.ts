/** What a benchmark family is to the runner: the ids it can measure and how to measure some. */
import type { Results } from './results.js';

/** Settings of one `npm run bench` run, shared by every family. */
export interface RunEnv {
  /** A scratch directory under os.tmpdir(), removed by the runner at the end. */
  tmp: string;
  /** When set (BENCH_CPU_PROF=<dir>), processes under test write V8 CPU profiles there. */
  cpuProfDir: string | undefined;
  /**
   * 1 for real figures. `BENCH_SMOKE=1` sets a small fraction to check that everything runs; the
   * runner then writes nothing to results.json or RESULTS.md.
   */
  scale: number;
  log(line: string): void;
}

/** A family of benchmarks sharing set-up (servers, a loaded store). */
export interface Family {
  name: string;
  /** Every benchmark id this family measures. */
  ids: readonly string[];
  /** Measures the `selected` ids (a subset of `ids`) and returns their entries. */
  run(selected: ReadonlySet<string>, env: RunEnv): Promise<Results>;
}

/** The command that reproduces one benchmark id. */
export const commandFor = (id: string): string => `npm run bench -- ${id}`;
