/**
 * Seeded synthetic profiles and experience events for the segmentation benchmarks: XDM-shaped
 * CRM attributes (names, birth dates, addresses, e-mail, loyalty) and 0–20 events per person in
 * one to three browsing sessions (page views, product views, cart adds, purchases) within the
 * 30 days before a fixed `NOW`, sorted by timestamp as the evaluators require.
 */
import { prng } from '../lib/workload.js';

/** The benchmarks' "now": 2024-06-15T12:00:00Z. */
export const NOW = Date.UTC(2024, 5, 15, 12, 0, 0);
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A generated profile (the merged attributes). */
export interface Profile {
  person: { name: { firstName: string; lastName: string }; birthDate: string; gender?: string };
  homeAddress: { city: string; countryCode?: string; postalCode: string };
  personalEmail?: { address: string };
  mobilePhone?: { number: string };
  loyalty: { tier?: string; points: number; joinDate: string };
}

/** A generated experience event. */
export interface BenchEvent {
  _id: string;
  timestamp: string;
  eventType: string;
  web?: { webPageDetails: { URL: string; name: string; siteSection: string } };
  commerce?: { order?: { priceTotal: number; currencyCode: string }; purchases?: { value: number }; productViews?: { value: number }; productListAdds?: { value: number } };
  productListItems?: Array<{ SKU: string; quantity: number; priceTotal: number }>;
}

const FIRST = ['Ada', 'Ben', 'Chloé', 'Dmitri', 'Elif', 'Farah', 'Gus', 'Hana', 'Ines', 'Jon', 'Marta', 'Noah'];
const LAST = ['Okafor', 'Martin', 'Novak', 'Haddad', 'Kowalski', 'Lindqvist', 'Moreau', 'Tanaka', 'Marchetti', 'Dubois', 'Müller', 'Garcia'];
const CITIES: ReadonlyArray<[string, string, string]> = [
  ['Paris', 'FR', '75'], ['Lyon', 'FR', '69'], ['Saint-Étienne', 'FR', '42'], ['Brussels', 'BE', '10'], ['Berlin', 'DE', '10'],
  ['Munich', 'DE', '80'], ['Madrid', 'ES', '28'], ['Milan', 'IT', '20'], ['London', 'GB', 'SW'], ['Sankt Gallen', 'CH', '90'],
  ['Luxembourg', 'LU', '14'], ['Amsterdam', 'NL', '10'], ['Saint-Denis', 'FR', '93'], ['Lisbon', 'PT', '11'],
];
const DOMAINS = ['example.com', 'example.fr', 'example.de', 'mail.example.org'];
const TIERS = ['bronze', 'silver', 'gold', 'platinum'];
const GENDERS = ['male', 'female', 'not_specified', 'non_specific'];
const SECTIONS = ['home', 'women', 'men', 'kids', 'sale', 'stores', 'help'];

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** Profile `i` of the population (deterministic from `seed` and `i`). */
export function makeProfile(i: number, seed: number): Profile {
  const rand = prng(seed * 7_919 + i * 31 + 1);
  const [city, countryCode, postal] = pick(rand, CITIES);
  const first = pick(rand, FIRST);
  const last = pick(rand, LAST);
  const year = 1950 + Math.floor(rand() * 60);
  const month = 1 + Math.floor(rand() * 12);
  const day = 1 + Math.floor(rand() * 28);
  const p: Profile = {
    person: { name: { firstName: first, lastName: last }, birthDate: `${year}-${pad(month, 2)}-${pad(day, 2)}` },
    homeAddress: { city, postalCode: `${postal}${pad(Math.floor(rand() * 1000), 3)}` },
    loyalty: { points: Math.floor(rand() * 10_000), joinDate: new Date(NOW - Math.floor(rand() * 400 * DAY)).toISOString() },
  };
  if (rand() < 0.95) p.homeAddress.countryCode = countryCode;
  if (rand() < 0.8) p.person.gender = pick(rand, GENDERS);
  if (rand() < 0.85) p.personalEmail = { address: `${first.toLowerCase()}.${i}@${pick(rand, DOMAINS)}` };
  if (rand() < 0.5) p.mobilePhone = { number: `+33 6 ${pad(Math.floor(rand() * 1e8), 8)}` };
  if (rand() < 0.7) p.loyalty.tier = pick(rand, TIERS);
  return p;
}

/** The events of person `i`: 0–20, in 1–3 sessions of events a few minutes apart, sorted. */
export function makeEvents(i: number, seed: number): BenchEvent[] {
  const rand = prng(seed * 104_729 + i * 17 + 3);
  const count = Math.floor(rand() * 21);
  const sessions = 1 + Math.floor(rand() * 3);
  const starts = Array.from({ length: sessions }, () => NOW - Math.floor(rand() * 29 * DAY) - HOUR);
  const out: BenchEvent[] = [];
  const cursor = [...starts];
  for (let k = 0; k < count; k++) {
    const s = k % sessions;
    cursor[s]! += MINUTE + Math.floor(rand() * 25 * MINUTE);
    const timestamp = new Date(Math.min(cursor[s]!, NOW)).toISOString();
    const _id = `e-${seed}-${i}-${k}`;
    const r = rand();
    const sku = `sku-${Math.floor(rand() * 200)}`;
    if (r < 0.6) {
      const section = pick(rand, SECTIONS);
      const page = Math.floor(rand() * 500);
      out.push({ _id, timestamp, eventType: 'web.webpagedetails.pageViews', web: { webPageDetails: { URL: `https://shop.example.com/${section}/p/${page}`, name: `${section} product ${page}`, siteSection: section } } });
    } else if (r < 0.75) {
      out.push({ _id, timestamp, eventType: 'commerce.productViews', commerce: { productViews: { value: 1 } }, productListItems: [{ SKU: sku, quantity: 1, priceTotal: 0 }] });
    } else if (r < 0.85) {
      out.push({ _id, timestamp, eventType: 'commerce.productListAdds', commerce: { productListAdds: { value: 1 } }, productListItems: [{ SKU: sku, quantity: 1 + Math.floor(rand() * 3), priceTotal: 0 }] });
    } else {
      const price = Math.round(rand() * 40_000) / 100;
      out.push({
        _id, timestamp, eventType: 'commerce.purchases',
        commerce: { order: { priceTotal: price, currencyCode: 'EUR' }, purchases: { value: 1 } },
        productListItems: [{ SKU: sku, quantity: 1, priceTotal: price }],
      });
    }
  }
  return out.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
}

/** The profile and event schemas (standard XDM field groups) the data conforms to. */
export const PROFILE_SCHEMA = {
  id: 'crm',
  name: 'CRM profiles',
  class: 'profile' as const,
  fieldGroups: ['profile-person-details', 'profile-personal-contact-details', 'profile-loyalty-details'],
  fields: {},
};
export const EVENT_SCHEMA = {
  id: 'web-events',
  name: 'Web and commerce events',
  class: 'event' as const,
  fieldGroups: ['event-web-details', 'event-commerce-details'],
  fields: {},
};
