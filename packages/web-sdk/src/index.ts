/// <reference lib="dom" />
// (The repo-wide type check has no DOM lib; this brings it in for the SDK's files.)
/**
 * The bundle's entry: installs the global `audient` command function and, when the page has no
 * Adobe Web SDK of its own, `alloy` as the same function, so pages written for alloy (seed 000)
 * run unchanged. Commands queued by an Adobe-style base-code stub (`window.alloy.q`, entries
 * `[resolve, reject, arguments]`) are replayed in order.
 */
import { createClient, type Command } from './client.js';

type Queued = [(value: unknown) => void, (reason: unknown) => void, ArrayLike<unknown>];
type Installed = Command & { q?: Queued[] };

const globals = window as unknown as Record<string, Installed | undefined>;
const client = createClient();

for (const name of ['audient', 'alloy']) {
  const existing = globals[name];
  // A real instance (alloy.js loaded itself) is left alone; a base-code stub is taken over.
  if (existing && !Array.isArray(existing.q)) continue;
  globals[name] = client;
  for (const [resolve, reject, args] of existing?.q ?? []) client(String(args[0]), args[1]).then(resolve, reject);
}
