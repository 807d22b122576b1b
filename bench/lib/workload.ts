/**
 * The synthetic but realistic data the benchmarks send: experience events of a population of
 * people, each with one to three devices (ECIDs, 38 digits) and, for most, an email that some of
 * their events carry, so identity graphs grow and link devices as the stream goes on. Fully
 * deterministic from a seed: our server and its peer receive byte-identical bodies.
 */

/** A seeded PRNG (mulberry32): fast, deterministic, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` random decimal digits. */
function digits(rand: () => number, n: number): string {
  let s = '';
  while (s.length < n) s += Math.floor(rand() * 1e9).toString().padStart(9, '0');
  return s.slice(0, n);
}

/** An ECID: 28 random digits then a 10-digit serial, so ids are unique and spread over the index. */
export function ecid(rand: () => number, serial: number): string {
  return `${digits(rand, 28)}${serial.toString().padStart(10, '0')}`;
}

/** One person of the population. */
export interface Person {
  ecids: string[];
  email: string | undefined;
}

/** Shape of the event population. */
export interface PopulationOptions {
  people: number;
  seed: number;
  /** Share of people with a known email. */
  knownShare?: number;
  /** Chance that an event of a known person carries the email (a logged-in visit). */
  authenticatedShare?: number;
  /** Share of events that are orders (the rest are page views). */
  orderShare?: number;
}

/** The population: 70 % one device, 25 % two, 5 % three; `knownShare` of them with an email. */
export function population(opts: PopulationOptions): Person[] {
  const rand = prng(opts.seed);
  const known = opts.knownShare ?? 0.6;
  const out: Person[] = [];
  let serial = 0;
  for (let p = 0; p < opts.people; p++) {
    const r = rand();
    const devices = r < 0.7 ? 1 : r < 0.95 ? 2 : 3;
    const ecids: string[] = [];
    for (let d = 0; d < devices; d++) ecids.push(ecid(rand, serial++));
    out.push({ ecids, email: rand() < known ? `person${p}@example.com` : undefined });
  }
  return out;
}

const SECTIONS = ['home', 'women', 'men', 'kids', 'sale', 'stores', 'help'];
const START = Date.UTC(2024, 5, 1);

/**
 * `count` experience events from the population, in stream order: a random person, one of their
 * devices, the email on a share of known people's events; page views and orders.
 */
export function experienceEvents(count: number, opts: PopulationOptions): Array<Record<string, unknown>> {
  const people = population(opts);
  const rand = prng(opts.seed ^ 0x5bd1e995);
  const auth = opts.authenticatedShare ?? 0.25;
  const orders = opts.orderShare ?? 0.1;
  const out: Array<Record<string, unknown>> = new Array(count);
  for (let i = 0; i < count; i++) {
    const person = people[Math.floor(rand() * people.length)]!;
    const device = person.ecids[Math.floor(rand() * person.ecids.length)]!;
    const identityMap: Record<string, Array<Record<string, unknown>>> = { ECID: [{ id: device, primary: true }] };
    if (person.email && rand() < auth) identityMap['email'] = [{ id: person.email, authenticatedState: 'authenticated' }];
    const timestamp = new Date(START + i * 250).toISOString();
    const base = { _id: `evt-${opts.seed}-${i}`, timestamp };
    if (rand() < orders) {
      const price = Math.round(rand() * 30_000) / 100;
      out[i] = {
        ...base,
        eventType: 'commerce.purchases',
        commerce: { order: { purchaseID: `ord-${opts.seed}-${i}`, priceTotal: price, currencyCode: 'EUR' }, purchases: { value: 1 } },
        productListItems: [{ SKU: `sku-${Math.floor(rand() * 5000)}`, quantity: 1, priceTotal: price, currencyCode: 'EUR' }],
        identityMap,
      };
    } else {
      const section = SECTIONS[Math.floor(rand() * SECTIONS.length)]!;
      const page = Math.floor(rand() * 2000);
      out[i] = {
        ...base,
        eventType: 'web.webpagedetails.pageViews',
        web: {
          webPageDetails: { URL: `https://shop.example.com/${section}/p/${page}`, name: `${section} product ${page}`, siteSection: section, pageViews: { value: 1 } },
          webReferrer: { URL: 'https://www.example.org/search?q=shoes', type: 'search_engine' },
        },
        identityMap,
      };
    }
  }
  return out;
}

/** The dataset events go to; its schema has the standard web and commerce field groups. */
export const EVENT_SCHEMA = {
  id: 'web-events',
  name: 'Web and commerce events',
  class: 'event' as const,
  fieldGroups: ['event-web-details', 'event-commerce-details'],
  fields: {},
};

/** How events are packed into requests. */
export type BodyShape = 'batch100' | 'single';

/** Request bodies (UTF-8 JSON) for `count` events: arrays of 100, or one object per request. */
export function requestBodies(shape: BodyShape, count: number, opts: PopulationOptions): Buffer[] {
  const events = experienceEvents(count, opts);
  if (shape === 'single') return events.map((e) => Buffer.from(JSON.stringify(e)));
  const out: Buffer[] = [];
  for (let i = 0; i < events.length; i += 100) out.push(Buffer.from(JSON.stringify(events.slice(i, i + 100))));
  return out;
}

/** The identities of profile `i` of the bulk-loaded store (as the API would be asked for them). */
export function profileIdentity(i: number, seed: number): { ecid: string; email: string } {
  return { ecid: ecid(prng(seed * 1_000_003 + i), i), email: `member${i}@example.net` };
}

const FIRST = ['Ada', 'Ben', 'Chloé', 'Dmitri', 'Elif', 'Farah', 'Gus', 'Hana', 'Ines', 'Jon'];
const LAST = ['Okafor', 'Martin', 'Novak', 'Haddad', 'Kowalski', 'Lindqvist', 'Moreau', 'Tanaka'];
const TIERS = ['bronze', 'silver', 'gold', 'platinum'];

/** CRM profile record `i`: name, birth date, email, loyalty, and its ECID and email identities. */
export function profileRecord(i: number, seed: number): Record<string, unknown> {
  const { ecid: id, email } = profileIdentity(i, seed);
  return {
    person: {
      name: { firstName: FIRST[i % FIRST.length], lastName: LAST[(i >> 3) % LAST.length] },
      birthDate: `19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 10}`,
    },
    personalEmail: { address: email },
    loyalty: { tier: TIERS[i % TIERS.length], points: (i * 37) % 10_000 },
    identityMap: { ECID: [{ id }], email: [{ id: email, primary: true }] },
  };
}
