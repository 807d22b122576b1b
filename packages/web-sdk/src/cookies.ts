/**
 * First-party cookies: the identity cookie (`kndctr_<org>_identity`) the edge asks the browser
 * to keep through `state:store`, echoed back in `meta.state.entries` on every request so the
 * next page keeps the same ECID; and the partner cookies of cookie syncs.
 */
import type { StateEntry } from './protocol.js';

/** Prefix of the cookies the edge owns (Adobe's name, so alloy and Audient share them). */
export const STATE_PREFIX = 'kndctr_';

/** Cookies whose name starts with `prefix`, as state entries (values left encoded). */
export function readCookies(prefix: string): StateEntry[] {
  const out: StateEntry[] = [];
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    if (eq > 0 && key.startsWith(prefix)) out.push({ key, value: part.slice(eq + 1).trim() });
  }
  return out;
}

/**
 * Sets a cookie for the page's host. `SameSite=None; Secure` (what the edge asks for) only
 * works on https pages, so on plain http the cookie is written `SameSite=Lax` without `Secure`
 * rather than silently dropped.
 */
export function writeCookie(cookie: { name: string; value: string; maxAgeSeconds: number; domain?: string | undefined; sameSite?: string | undefined; secure?: boolean | undefined }): void {
  const https = location.protocol === 'https:';
  const parts = [`${cookie.name}=${cookie.value}`, `max-age=${Math.floor(cookie.maxAgeSeconds)}`, 'path=/'];
  if (cookie.domain) parts.push(`domain=${cookie.domain}`);
  const sameSite = cookie.sameSite ?? 'Lax';
  if (https) {
    parts.push(`SameSite=${sameSite}`);
    if (cookie.secure || sameSite === 'None') parts.push('Secure');
  } else {
    parts.push(`SameSite=${sameSite === 'None' ? 'Lax' : sameSite}`);
  }
  document.cookie = parts.join('; ');
}
