/** Schemas, builders and a clock shared by the segmentation tests (not used by production code). */
import type { FieldDef } from '../schema/types.js';
import type { AudienceSchemas } from './check.js';
import type { AudienceContext } from './runtime.js';

const str: FieldDef = { type: 'string' };
const num: FieldDef = { type: 'number' };
const obj = (properties: Record<string, FieldDef>): FieldDef => ({ type: 'object', properties });

/** A profile and an event union schema shaped like XDM. */
export const SCHEMAS: AudienceSchemas = {
  profile: obj({
    person: obj({
      name: obj({ firstName: str, lastName: str }),
      birthDate: { type: 'date' },
      gender: { type: 'enum', enum: ['male', 'female', 'non_specified'] },
    }),
    homeAddress: obj({ city: str, countryCode: str, postalCode: str }),
    personalEmail: obj({ address: str }),
    loyalty: obj({ points: { type: 'integer' }, tier: str, joinDate: { type: 'date-time' } }),
    isVip: { type: 'boolean' },
    tags: { type: 'array', items: str },
    subscriptions: { type: 'array', items: obj({ plan: str, renewalDate: { type: 'date' }, price: num }) },
    attributes: { type: 'map', values: str },
    nested: { type: 'map', values: { type: 'map', values: str } },
  }),
  event: obj({
    _id: str,
    timestamp: { type: 'date-time' },
    eventType: str,
    web: obj({ webPageDetails: obj({ name: str, URL: str, pageViews: obj({ value: num }) }) }),
    commerce: obj({ order: obj({ priceTotal: num, currencyCode: str }), purchases: obj({ value: num }) }),
    productListItems: { type: 'array', items: obj({ SKU: str, name: str, quantity: num, priceTotal: num }) },
  }),
};

/** 2024-06-15T12:00:00Z, the tests' "now". */
export const NOW = Date.UTC(2024, 5, 15, 12, 0, 0);
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const MINUTE = 60_000;

/** ISO text of `NOW - ms`. */
export function ago(ms: number): string {
  return new Date(NOW - ms).toISOString();
}

let seq = 0;

/** An event of `eventType` at `timestamp`, with extra fields. */
export function ev(eventType: string, timestamp: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  seq++;
  return { _id: `e${seq}`, eventType, timestamp, ...extra };
}

/** A context; events are sorted by timestamp as the contract requires. */
export function ctx(
  profile: Record<string, unknown>,
  events: Array<Record<string, unknown>> = [],
  now = NOW,
  segments: readonly string[] = [],
): AudienceContext {
  const sorted = [...events].sort((a, b) => Date.parse(String(a['timestamp'])) - Date.parse(String(b['timestamp'])));
  return { profile, events: sorted, now, inSegment: (id) => segments.includes(id) };
}
