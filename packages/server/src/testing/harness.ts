/**
 * Test harness: an Audient app over a given store, driven in-process through Fastify's inject,
 * with a first sandbox and its admin key ready.
 */
import assert from 'node:assert/strict';
import type { Store } from '@audient/storage';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type ConfigOverrides } from '../config.js';
import { createContext, type AudientContext } from '../context.js';
import { buildApp } from '../http/app.js';
import type { DeliveryConfig } from '../activation/delivery.js';

/** A running in-process Audient for tests. */
export interface Harness {
  ctx: AudientContext;
  app: FastifyInstance;
  apiKey: string;
  /** Calls the API with the harness key (or `key`), JSON in and out. */
  call(method: InjectOptions['method'], url: string, body?: unknown, key?: string): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** Builds a harness over `store` (already migrated). */
export async function createHarness(
  store: Store,
  overrides: ConfigOverrides = {},
  opts: { now?: () => number; delivery?: Partial<DeliveryConfig> } = {},
): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'audient-test-'));
  const config = loadConfig({ dataDir, databaseUrl: ':memory:', logLevel: 'silent', ...overrides }, {});
  const ctx = await createContext(config, { store, log: pino({ level: 'silent' }), ...opts });
  const { apiKey } = await ctx.tenancy.createSandbox({ id: 'prod', instanceAdmin: true });
  const app = (await buildApp(ctx)) as unknown as FastifyInstance;
  await app.ready();
  return {
    ctx,
    app,
    apiKey,
    call(method, url, body, key = apiKey) {
      return app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${key}` },
        ...(body === undefined ? {} : { payload: body as InjectOptions['payload'] }),
      });
    },
    async close() {
      await app.close();
      await ctx.close();
    },
  };
}

/**
 * Calls the API through `h` (with its key, or `key`), asserts a 2xx answer and returns the JSON
 * body (`{}` for a 204).
 */
export async function okJson(
  h: Harness,
  method: InjectOptions['method'],
  url: string,
  body?: unknown,
  key?: string,
): Promise<Record<string, unknown>> {
  const r = await h.call(method, url, body, key);
  assert.ok(r.statusCode < 300, `${String(method)} ${url}: ${r.statusCode} ${r.body}`);
  return r.statusCode === 204 ? {} : r.json();
}

/** Runs delivery now and waits for it (background passes included). */
export async function deliverNow(h: Harness): Promise<void> {
  h.ctx.delivery.poke();
  await h.ctx.delivery.idle();
}

/**
 * Lets every stage run, three rounds: change feed, bus (streaming segmentation), activation, then
 * (with `jobs`) the job runner, and delivery.
 */
export async function settle(h: Harness, opts: { jobs?: boolean } = {}): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await h.ctx.feed.flush();
    await h.ctx.bus.drain();
    await h.ctx.activation.flush();
    if (opts.jobs) await h.ctx.jobs.idle();
    await deliverNow(h);
  }
  // What is written behind: membership confirmations, and the durable cursors (as a restart would read them).
  await h.ctx.segmentation.flushConfirmations();
  await h.ctx.feed.cursorWritten();
  await h.ctx.activation.cursorsWritten();
}

/** The store's reads of profiles for evaluations: the profile of an identity, its fragments, events and memberships. */
const PROFILE_READS = ['findProfileId', 'loadProfiles', 'loadEvents', 'memberships', 'profileFragments'] as const;

/**
 * Records the names of the store's profile reads (PROFILE_READS) while `fn` runs, then puts the
 * store back: for tests that check what an evaluation reads back.
 */
export async function recordProfileReads<T>(store: Store, fn: (reads: string[]) => Promise<T>): Promise<T> {
  const reads: string[] = [];
  const target = store as unknown as Record<string, unknown>;
  const saved = PROFILE_READS.map((name) => [name, target[name], Object.hasOwn(target, name)] as const);
  for (const [name, method] of saved) {
    if (typeof method !== 'function') continue;
    target[name] = (...args: unknown[]) => {
      reads.push(name);
      return (method as (...a: unknown[]) => unknown).apply(store, args);
    };
  }
  try {
    return await fn(reads);
  } finally {
    for (const [name, method, own] of saved) {
      if (own) target[name] = method;
      else delete target[name];
    }
  }
}
