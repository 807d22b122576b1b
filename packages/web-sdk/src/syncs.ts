/**
 * Fires the `activation:push` syncs of an interact answer: a URL sync is an image request
 * (no referrer when the edge asks so), a cookie sync a first-party cookie. A URL sync is fired
 * at most once per `ttlMinutes`, remembered in localStorage (when the page allows it).
 */
import { writeCookie } from './cookies.js';
import type { SyncSpec } from './protocol.js';

const FIRED_KEY = 'audient.syncs';
/** Images in flight, kept referenced so they are not collected before they load. */
const pending = new Set<HTMLImageElement>();

function firedSyncs(): Record<string, number> {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(FIRED_KEY) ?? '{}');
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, number>) : {};
  } catch {
    return {};
  }
}

function remember(fired: Record<string, number>): void {
  try {
    localStorage.setItem(FIRED_KEY, JSON.stringify(fired));
  } catch {
    // Storage refused (private mode, quota): the sync fires again next time, which is harmless.
  }
}

/** Fires the syncs that are due; `now` in milliseconds. */
export function fireSyncs(syncs: readonly SyncSpec[], now: number): void {
  const fired = firedSyncs();
  for (const k of Object.keys(fired)) if ((fired[k] ?? 0) <= now) delete fired[k];
  for (const s of syncs) {
    if (s.type === 'cookie') {
      writeCookie({ name: s.spec.name, value: encodeURIComponent(s.spec.value), maxAgeSeconds: s.spec.ttlDays * 86_400, domain: s.spec.domain });
      continue;
    }
    const key = `${s.id}|${s.spec.url}`;
    if (fired[key] !== undefined) continue;
    const img = new Image(1, 1);
    if (s.spec.hideReferrer) img.referrerPolicy = 'no-referrer';
    const done = () => pending.delete(img);
    img.onload = done;
    img.onerror = done;
    pending.add(img);
    img.src = s.spec.url;
    if (s.spec.ttlMinutes > 0) fired[key] = now + s.spec.ttlMinutes * 60_000;
  }
  remember(fired);
}
