/**
 * Consent over the edge, as the Adobe Web SDK's `setConsent` speaks it
 * (`POST /ee/v1/privacy/set-consent`): `{consent: [{standard, version, value}], identityMap?}`.
 *
 * - Adobe 1.0: `value: {general: "in" | "out"}` — one switch for every purpose.
 * - Adobe 2.0: `value` is the XDM consents object (`collect.val`, `personalize.content.val`,
 *   `share.val`, `adID.val`, `marketing.*`, `idSpecific`, `metadata.time`).
 * - IAB TCF 2.0 strings are accepted but not interpreted (a warning says so).
 *
 * The preferences become XDM `consents` on the profile (field group `profile-consents`), stored
 * through the normal ingestion path; the browser keeps `general=in|out` in the
 * `kndctr_<orgId>_consent` cookie the SDK reads before sending events.
 */
import { EdgeError } from './edge-errors.js';

/** One consent value: yes, no, pending, legitimate interest, contract, default yes/no, vital interest, unknown. */
export type ConsentValue = 'y' | 'n' | 'p' | 'LI' | 'CT' | 'dy' | 'dn' | 'VI' | 'u';
const VALUES: ReadonlySet<string> = new Set(['y', 'n', 'p', 'LI', 'CT', 'dy', 'dn', 'VI', 'u']);
/** Purposes of the Adobe 2.0 standard with a single `{val}`. */
const SIMPLE_PURPOSES = ['collect', 'share', 'adID'] as const;
const MARKETING_CHANNELS = ['any', 'email', 'sms', 'push', 'call', 'postalMail'] as const;

/** A purpose's value as stored. */
export interface ConsentField {
  val: ConsentValue;
  time?: string;
}

/** XDM `consents` as stored on the profile. */
export interface XdmConsents {
  collect?: ConsentField;
  share?: ConsentField;
  adID?: ConsentField;
  personalize?: { content?: ConsentField };
  marketing?: Partial<Record<(typeof MARKETING_CHANNELS)[number], ConsentField>>;
}

/** One entry of a set-consent request. */
export interface ConsentEntry {
  standard: string;
  version: string;
  value: unknown;
  gdprApplies?: boolean;
}

/** The parsed request: the XDM consents to store (none when nothing interpretable) and what was ignored. */
export interface ParsedConsent {
  consents: XdmConsents | undefined;
  ignored: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function field(value: unknown, path: string, time: string): ConsentField {
  const val = isObject(value) ? value['val'] : undefined;
  if (typeof val !== 'string' || !VALUES.has(val)) {
    throw new EdgeError('MALFORMED_REQUEST', `${path}.val must be one of ${[...VALUES].join(', ')}`, [{ path: `${path}.val`, message: 'not a consent value' }]);
  }
  const own = isObject(value) ? value['time'] : undefined;
  return { val: val as ConsentValue, time: typeof own === 'string' ? own : time };
}

/** Adobe 2.0's value → XDM consents (unknown purposes are refused, so a typo does not pass silently). */
function fromAdobe2(value: unknown, path: string, now: string): XdmConsents {
  if (!isObject(value)) throw new EdgeError('MALFORMED_REQUEST', `${path} must be an object of purposes`, [{ path, message: 'not an object' }]);
  const metadata = value['metadata'];
  const time = isObject(metadata) && typeof metadata['time'] === 'string' ? metadata['time'] : now;
  const out: XdmConsents = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'metadata') continue;
    if ((SIMPLE_PURPOSES as readonly string[]).includes(key)) out[key as (typeof SIMPLE_PURPOSES)[number]] = field(v, `${path}.${key}`, time);
    else if (key === 'personalize') {
      const content = isObject(v) ? v['content'] : undefined;
      out.personalize = { content: field(content, `${path}.personalize.content`, time) };
    } else if (key === 'marketing' && isObject(v)) {
      const marketing: NonNullable<XdmConsents['marketing']> = {};
      for (const [channel, c] of Object.entries(v)) {
        if (!(MARKETING_CHANNELS as readonly string[]).includes(channel)) {
          throw new EdgeError('MALFORMED_REQUEST', `unknown marketing channel ${channel}`, [{ path: `${path}.marketing.${channel}`, message: 'unknown channel' }]);
        }
        marketing[channel as (typeof MARKETING_CHANNELS)[number]] = field(c, `${path}.marketing.${channel}`, time);
      }
      out.marketing = marketing;
    } else {
      throw new EdgeError('MALFORMED_REQUEST', `unknown consent purpose ${key}`, [{ path: `${path}.${key}`, message: 'not a purpose of the Adobe 2.0 standard' }]);
    }
  }
  return out;
}

/** Reads the consent entries of a set-consent request; `now` times purposes that carry no time. */
export function parseConsentRequest(entries: readonly ConsentEntry[], now: string): ParsedConsent {
  let consents: XdmConsents | undefined;
  const ignored: string[] = [];
  entries.forEach((entry, i) => {
    const path = `consent.${i}.value`;
    const standard = `${entry.standard} ${entry.version}`;
    if (entry.standard === 'Adobe' && entry.version === '1.0') {
      const general = isObject(entry.value) ? entry.value['general'] : undefined;
      if (general !== 'in' && general !== 'out') {
        throw new EdgeError('MALFORMED_REQUEST', 'Adobe 1.0 consent is {general: "in" | "out"}', [{ path: `${path}.general`, message: 'not in or out' }]);
      }
      const f = { val: general === 'in' ? 'y' : 'n', time: now } as const;
      consents = { ...consents, collect: f, share: f, personalize: { content: f } };
    } else if (entry.standard === 'Adobe' && entry.version === '2.0') {
      consents = { ...consents, ...fromAdobe2(entry.value, path, now) };
    } else if (entry.standard === 'IAB TCF' && entry.version === '2.0') {
      if (typeof entry.value !== 'string') throw new EdgeError('MALFORMED_REQUEST', 'IAB TCF 2.0 consent is the TC string', [{ path, message: 'not a string' }]);
      ignored.push(standard);
    } else {
      throw new EdgeError('MALFORMED_REQUEST', `unsupported consent standard ${standard}; use Adobe 1.0, Adobe 2.0 or IAB TCF 2.0`, [
        { path: `consent.${i}`, message: 'unsupported standard' },
      ]);
    }
  });
  return { consents, ignored };
}

/** Whether a consent value allows the purpose (yes, default yes, legitimate interest, contract, vital interest). */
function allows(val: unknown): boolean | undefined {
  if (val === 'n' || val === 'dn') return false;
  if (val === 'y' || val === 'dy' || val === 'LI' || val === 'CT' || val === 'VI') return true;
  return undefined;
}

/** What the edge honours of a profile's (merged) consents: false only when explicitly refused. */
export function consentOfProfile(profile: Record<string, unknown>): { collect: boolean; personalize: boolean } {
  const c = profile['consents'] as { collect?: { val?: unknown }; personalize?: { content?: { val?: unknown } } } | undefined;
  return { collect: allows(c?.collect?.val) !== false, personalize: allows(c?.personalize?.content?.val) !== false };
}

/** The consent cookie's value for stored consents, or undefined when collect was not decided. */
export function consentCookieValue(consents: XdmConsents): string | undefined {
  const collect = allows(consents.collect?.val);
  return collect === undefined ? undefined : `general=${collect ? 'in' : 'out'}`;
}

/** Whether a consent cookie value (`general=out;…`) refuses collection. */
export function consentCookieRefuses(value: string): boolean {
  let raw = value;
  try {
    raw = decodeURIComponent(value);
  } catch {
    // keep it as it is
  }
  return raw.split(';').some((pair) => pair.trim() === 'general=out');
}
