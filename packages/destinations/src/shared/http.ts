/**
 * Helpers shared by destinations for classifying responses. One rule for every destination
 * (STYLE §5): 2xx ok; 408, 429 and 5xx retried; other 4xx never retried.
 */
import { retryClassForStatus, type ItemOutcome } from '@audient/core';

/** Longest slice of a response body quoted in an outcome message. */
const SNIPPET_CHARS = 200;

/** A response body shortened for a message (bodies may be long; never quote them whole). */
export function snippet(body: string): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS - 1)}…` : flat;
}

/** Parses a JSON body; undefined when it is not JSON (partners answer HTML on errors too). */
export function parseJson(body: string): unknown {
  if (body.trim() === '') return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/** True for a plain JSON object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The outcome a whole response gets from its status. `authRefreshable`: the runtime refreshes
 * the credential on 401 (OAuth2), so a 401 is worth retrying; with static credentials it is not.
 */
export function outcomeForStatus(status: number, message: string, opts: { authRefreshable?: boolean } = {}): ItemOutcome {
  if (status >= 200 && status < 300) return { ok: true };
  const cls = retryClassForStatus(status);
  switch (cls) {
    case 'retry':
    case 'retry-after':
    case 'rate-limited':
      return { ok: false, retry: true, message };
    case 'refresh-auth':
      return { ok: false, retry: opts.authRefreshable === true, message };
    case 'drop':
    case 'fix-config':
      return { ok: false, retry: false, message };
    default: {
      const never: never = cls;
      return never;
    }
  }
}

/** The same outcome for every item of a request. */
export function everyItem(items: readonly number[], outcome: ItemOutcome): ItemOutcome[] {
  return items.map(() => outcome);
}

/** UTF-8 size of a string, in bytes (request size limits are in bytes). */
export function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}
