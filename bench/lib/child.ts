/**
 * Child processes of a benchmark: the process under test and the load generator run apart from
 * the orchestrator, so each has its own core, its own heap and its own peak-memory figure.
 * TypeScript children run through tsx with the `development` condition, like `npm run bench`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every IPC message carries a type. */
export interface Message {
  type: string;
}

/** A forked child speaking typed messages. */
export interface ChildHandle<In extends Message, Out extends Message> {
  readonly pid: number;
  send(msg: In): void;
  /** The next message of `type` (queued ones first); rejects on timeout or if the child exits first. */
  receive<T extends Out['type']>(type: T, timeoutMs: number): Promise<Extract<Out, { type: T }>>;
  /** Resolves with the exit code once the child has exited (SIGKILL after `timeoutMs`). */
  exited(timeoutMs: number): Promise<number | null>;
}

/** Path of a file next to `importMetaUrl`. */
export function beside(importMetaUrl: string, relative: string): string {
  return fileURLToPath(new URL(relative, importMetaUrl));
}

/**
 * The node flags `npm start` runs Audient's server with (the root package.json's start script,
 * e.g. `--max-semi-space-size=64`): processes that stand for the server take them too, so a
 * benchmark measures the server as users start it. `root` is the checkout (default: this one).
 */
export function serverNodeFlags(root = fileURLToPath(new URL('../..', import.meta.url))): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const start = pkg.scripts?.['start'] ?? '';
  const m = /(?:^|&&\s*)node\s+((?:--\S+\s+)*)\S+\/cli\.js\b/.exec(start);
  if (!m) throw new Error(`the start script does not run the CLI with node: ${start}`);
  return m[1]!.trim().split(/\s+/).filter(Boolean);
}

/** Forks `file` (a .ts module) with tsx; extra node flags (e.g. `--cpu-prof`) go in `nodeArgs`. */
export function forkTs<In extends Message, Out extends Message>(
  file: string,
  opts: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): ChildHandle<In, Out> {
  // The `development` condition resolves @audient/* to their sources; BENCH_DIST keeps the built
  // `dist` (profiles with line numbers, see README).
  const conditions = process.env['BENCH_DIST'] ? [] : ['--conditions=development'];
  const child: ChildProcess = fork(file, [], {
    execArgv: [...conditions, '--import', 'tsx', ...(opts.nodeArgs ?? [])],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const queue: Out[] = [];
  const waiters: Array<() => void> = [];
  let exitCode: number | null | undefined;
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  child.on('message', (m) => {
    queue.push(m as Out);
    wake();
  });
  child.on('exit', (code, signal) => {
    exitCode = code ?? (signal ? -1 : null);
    wake();
  });
  child.on('error', () => {
    exitCode ??= -1;
    wake();
  });

  return {
    pid: child.pid ?? -1,
    send(msg) {
      child.send(msg);
    },
    receive(type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const i = queue.findIndex((m) => m.type === type);
          if (i >= 0) {
            clearTimeout(timer);
            resolve(queue.splice(i, 1)[0] as Extract<Out, { type: typeof type }>);
            return;
          }
          const failed = queue.find((m) => m.type === 'error') as (Out & { message?: string }) | undefined;
          if (failed) {
            clearTimeout(timer);
            reject(new Error(`child ${file} failed: ${failed.message ?? 'unknown error'}`));
            return;
          }
          if (exitCode !== undefined) {
            clearTimeout(timer);
            reject(new Error(`child ${file} exited (${exitCode}) before sending ${type}`));
            return;
          }
          waiters.push(check);
        };
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`child ${file} sent no ${type} within ${Math.round(timeoutMs / 1000)} s; killed`));
        }, timeoutMs);
        check();
      });
    },
    exited(timeoutMs) {
      if (exitCode !== undefined) return Promise.resolve(exitCode);
      return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
    },
  };
}

/** In a child: sends a message to the parent (no-op when not forked). */
export function toParent<T extends Message>(msg: T): void {
  process.send?.(msg);
}

/** In a child: the next message from the parent of one of `types` (others are left to other listeners). */
export function fromParent<T extends Message>(...types: Array<T['type']>): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (!types.includes((m as Message).type)) return;
      process.off('message', on);
      resolve(m as T);
    };
    process.on('message', on);
  });
}

/** In a child: runs `main`, reporting a failure to the parent as an `error` message. */
export function runChild(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    console.error(message);
    toParent({ type: 'error', message } as Message);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 500).unref();
  });
}
