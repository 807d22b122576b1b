/**
 * Identity namespaces: the standard ones, custom ones, and the per-namespace normalisation that
 * makes `John.Doe@ACME.com ` and `john.doe@acme.com` the same person.
 */
import { sha256Hex } from './sha256.js';

/**
 * How long-lived and how personal an identity is. Drives graph eviction: cookie identities are
 * evicted before device ones, device before person (cross-device) ones.
 */
export type NamespaceType = 'cookie' | 'device' | 'person';

/** A namespace definition. `code` is matched case-insensitively. */
export interface NamespaceDef {
  code: string;
  name: string;
  type: NamespaceType;
  /** Optional regular expression every (normalised) id must match. */
  pattern?: string;
  standard: boolean;
}

/** The standard namespaces every sandbox has. */
export const STANDARD_NAMESPACES: readonly NamespaceDef[] = [
  { code: 'ECID', name: 'Experience Cloud ID', type: 'cookie', standard: true },
  { code: 'email', name: 'Email', type: 'person', standard: true },
  { code: 'email_lc_sha256', name: 'Emails (SHA256, lowercased)', type: 'person', standard: true },
  { code: 'phone', name: 'Phone (E.164)', type: 'person', standard: true },
  { code: 'crmId', name: 'CRM ID', type: 'person', standard: true },
  { code: 'user_id', name: 'User ID', type: 'person', standard: true },
  { code: 'anonymous_id', name: 'Anonymous ID', type: 'cookie', standard: true },
];

/** The key used for a namespace everywhere inside Audient and in exported identity maps. */
export function namespaceKey(code: string): string {
  return code.toLowerCase();
}

/** Result of normalising one identity value. */
export type NormalizeResult = { ok: true; id: string } | { ok: false; reason: string };

const ECID_RE = /^\d{38}$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const HEX_RE = /^[0-9a-f]{16,128}$/;
const E164_RE = /^\+[1-9]\d{6,14}$/;
const CODE_RE = /^[A-Za-z][A-Za-z0-9_.-]{1,63}$/;

/** Normalises a phone number to E.164: separators dropped, a leading `00` becomes `+`. */
export function normalizePhone(raw: string): NormalizeResult {
  let s = raw.trim().replace(/[\s().\-/]/g, '');
  if (s.startsWith('00')) s = `+${s.slice(2)}`;
  if (!s.startsWith('+')) {
    return { ok: false, reason: 'phone numbers must be in E.164 form with a country code, e.g. +33612345678' };
  }
  if (!E164_RE.test(s)) return { ok: false, reason: 'not a valid E.164 phone number (+, country code, up to 15 digits)' };
  return { ok: true, id: s };
}

/** Normalises an email address: trimmed and lower-cased. */
export function normalizeEmail(raw: string): NormalizeResult {
  const s = raw.trim().toLowerCase();
  if (!EMAIL_RE.test(s)) return { ok: false, reason: 'not a valid email address' };
  return { ok: true, id: s };
}

/** The `email_lc_sha256` identity of an email address: SHA-256 of the trimmed, lower-cased address. */
export function deriveEmailSha256(email: string): string {
  return sha256Hex(email.trim().toLowerCase());
}

/** Validates a code for a custom namespace; returns the reason it is refused, if any. */
export function checkNamespaceCode(code: string): string | undefined {
  if (!CODE_RE.test(code)) return 'a namespace code is 2 to 64 characters: a letter, then letters, digits, _ . or -';
  return undefined;
}

/** Normalises an id for its namespace and checks the namespace's format. */
export function normalizeIdentity(ns: NamespaceDef, raw: string): NormalizeResult {
  if (raw.length === 0 || raw.trim().length === 0) return { ok: false, reason: 'identity value is empty' };
  if (raw.length > 1024) return { ok: false, reason: 'identity value is longer than 1024 characters' };
  let result: NormalizeResult;
  switch (namespaceKey(ns.code)) {
    case 'ecid':
      result = ECID_RE.test(raw.trim())
        ? { ok: true, id: raw.trim() }
        : { ok: false, reason: 'an ECID is exactly 38 digits' };
      break;
    case 'email':
      result = normalizeEmail(raw);
      break;
    case 'email_lc_sha256': {
      const s = raw.trim().toLowerCase();
      result = HEX_RE.test(s) ? { ok: true, id: s } : { ok: false, reason: 'email_lc_sha256 ids are hexadecimal digests' };
      break;
    }
    case 'phone':
      result = normalizePhone(raw);
      break;
    default:
      result = { ok: true, id: raw.trim() };
  }
  if (result.ok && ns.pattern !== undefined && !new RegExp(ns.pattern).test(result.id)) {
    return { ok: false, reason: `does not match the ${ns.code} namespace pattern ${ns.pattern}` };
  }
  return result;
}

/** Index of namespaces by lower-cased code, for lookups during ingestion. */
export class NamespaceRegistry {
  private readonly byKey = new Map<string, NamespaceDef>();

  constructor(namespaces: Iterable<NamespaceDef>) {
    for (const ns of STANDARD_NAMESPACES) this.byKey.set(namespaceKey(ns.code), ns);
    for (const ns of namespaces) this.byKey.set(namespaceKey(ns.code), ns);
  }

  /** The namespace for a code, any case. */
  get(code: string): NamespaceDef | undefined {
    return this.byKey.get(namespaceKey(code));
  }

  /** Every namespace, standard first. */
  all(): NamespaceDef[] {
    return [...this.byKey.values()];
  }
}
