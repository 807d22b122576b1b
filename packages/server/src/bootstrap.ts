/**
 * First start: an empty instance gets a `prod` sandbox and an instance-admin API key, written to
 * `<dataDir>/admin.key` (owner-only) so `audient start` can print it again on every start.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AudientContext } from './context.js';

/** Path of the admin key file. */
export const adminKeyPath = (dataDir: string): string => join(dataDir, 'admin.key');

/** Ensures a first sandbox and admin key exist; returns the admin key when this instance knows it. */
export async function bootstrap(ctx: AudientContext): Promise<{ apiKey: string | undefined; created: boolean }> {
  const path = adminKeyPath(ctx.config.dataDir);
  const sandboxes = await ctx.tenancy.listSandboxes();
  if (sandboxes.length === 0) {
    const { apiKey } = await ctx.tenancy.createSandbox({ id: 'prod', name: 'Production', instanceAdmin: true });
    await mkdir(ctx.config.dataDir, { recursive: true, mode: 0o700 });
    await writeFile(path, `${apiKey}\n`, { mode: 0o600 });
    return { apiKey, created: true };
  }
  if (existsSync(path)) {
    const apiKey = (await readFile(path, 'utf8')).trim();
    if (await ctx.tenancy.authenticate(apiKey)) return { apiKey, created: false };
  }
  return { apiKey: undefined, created: false };
}
