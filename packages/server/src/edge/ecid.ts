/**
 * Experience Cloud IDs (ECIDs) and the identity cookie the Web SDK keeps them in.
 *
 * An ECID is 38 digits: two unsigned 64-bit numbers, each written as 19 zero-padded digits.
 * The cookie (`kndctr_<orgId with @ as _>_identity`) holds the ECID the way Adobe's edge writes
 * it, so the Adobe Web SDK can read it back without a request: base64 of a one-field protobuf
 * message, field 1 (tag 0x0a) = the ECID as a length-prefixed string. Nothing else is stored in
 * it; the cookie is only a carrier of the visitor id, never of profile data.
 */
import { randomUint64 } from '../ids.js';

const ECID_RE = /^\d{38}$/;
const TEN_19 = 10n ** 19n;

/** Whether `id` has the shape of an ECID. */
export function isEcid(id: string): boolean {
  return ECID_RE.test(id);
}

/** A new random ECID (38 digits, about 126 bits of randomness). */
export function mintEcid(): string {
  const half = (): string => (randomUint64() % TEN_19).toString().padStart(19, '0');
  return half() + half();
}

/**
 * The name of one of the Web SDK's cookies (`identity`, `consent`, `cluster`; `syncs`, Audient's
 * record of URL syncs fired) for an organisation id, as the SDK names them (`@` is not allowed in
 * cookie names). The SDK sends every `kndctr_<org>_*` cookie back in `meta.state.entries`.
 */
export function namespacedCookieName(orgId: string, key: 'identity' | 'consent' | 'cluster' | 'syncs'): string {
  return `kndctr_${orgId.replace(/@/g, '_')}_${key}`;
}

/** The identity cookie's name for an organisation id. */
export function identityCookieName(orgId: string): string {
  return namespacedCookieName(orgId, 'identity');
}

/** The identity cookie's value for an ECID. */
export function encodeIdentityCookie(ecid: string): string {
  // Written in place (one buffer, no concatenation): this runs on every answer.
  const length = Buffer.byteLength(ecid, 'utf8');
  const bytes = Buffer.allocUnsafe(2 + length);
  bytes[0] = 0x0a;
  bytes[1] = length;
  bytes.write(ecid, 2, 'utf8');
  return bytes.toString('base64');
}

/**
 * The ECID in an identity cookie value (URL-encoded or not, base64 or base64url), or undefined
 * when the value is not one: the first field must be field 1 holding a valid ECID.
 */
export function decodeIdentityCookie(value: string): string | undefined {
  let raw: string;
  try {
    raw = decodeURIComponent(value);
  } catch {
    return undefined;
  }
  const bytes = Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length < 2 || bytes[0] !== 0x0a) return undefined;
  const length = bytes[1] ?? 0;
  if (length !== 38 || bytes.length < 2 + length) return undefined;
  const ecid = bytes.subarray(2, 2 + length).toString('utf8');
  return isEcid(ecid) ? ecid : undefined;
}

/** When each URL sync last fired may fire again (sync id → epoch seconds), from its cookie value; expired ones dropped. */
export function decodeSyncState(value: string | undefined, nowSeconds: number): Record<string, number> {
  if (!value) return {};
  try {
    const parsed: unknown = JSON.parse(Buffer.from(decodeURIComponent(value), 'base64url').toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    const out: Record<string, number> = {};
    for (const [id, until] of Object.entries(parsed)) if (typeof until === 'number' && until > nowSeconds) out[id] = until;
    return out;
  } catch {
    return {};
  }
}

/** The sync-state cookie value (base64url JSON: cookie-safe). */
export function encodeSyncState(state: Record<string, number>): string {
  return Buffer.from(JSON.stringify(state), 'utf8').toString('base64url');
}

/**
 * The Web SDK's state cookies (`kndctr_*`) of a `Cookie` header, as state entries. When the edge
 * domain is first-party (edge.shop.example for www.shop.example) the SDK sends no
 * `meta.state.entries` and relies on the browser sending the cookies instead.
 */
export function stateEntriesFromCookieHeader(header: string | undefined): Array<{ key: string; value: string }> {
  if (!header) return [];
  const out: Array<{ key: string; value: string }> = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    if (key.startsWith('kndctr_') && out.length < 100) out.push({ key, value: part.slice(eq + 1).trim() });
  }
  return out;
}
