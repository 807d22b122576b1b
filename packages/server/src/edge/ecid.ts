/**
 * Experience Cloud IDs (ECIDs) and the identity cookie the Web SDK keeps them in.
 *
 * An ECID is 38 digits: two unsigned 64-bit numbers, each written as 19 zero-padded digits.
 * The cookie (`kndctr_<orgId with @ as _>_identity`) holds the ECID the way Adobe's edge writes
 * it, so the Adobe Web SDK can read it back without a request: base64 of a one-field protobuf
 * message, field 1 (tag 0x0a) = the ECID as a length-prefixed string. Nothing else is stored in
 * it; the cookie is only a carrier of the visitor id, never of profile data.
 */
import { randomBytes } from 'node:crypto';

const ECID_RE = /^\d{38}$/;
const TEN_19 = 10n ** 19n;

/** Whether `id` has the shape of an ECID. */
export function isEcid(id: string): boolean {
  return ECID_RE.test(id);
}

/** A new random ECID (38 digits, about 126 bits of randomness). */
export function mintEcid(): string {
  const bytes = randomBytes(16);
  const half = (offset: number): string => (bytes.readBigUInt64BE(offset) % TEN_19).toString().padStart(19, '0');
  return half(0) + half(8);
}

/** The identity cookie's name for an organisation id (`@` is not allowed in cookie names). */
export function identityCookieName(orgId: string): string {
  return `kndctr_${orgId.replace(/@/g, '_')}_identity`;
}

/** The identity cookie's value for an ECID. */
export function encodeIdentityCookie(ecid: string): string {
  const text = Buffer.from(ecid, 'utf8');
  return Buffer.concat([Buffer.from([0x0a, text.length]), text]).toString('base64');
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
