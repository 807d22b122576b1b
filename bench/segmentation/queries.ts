/**
 * The evaluator suite: each query in the audience language with its equivalent as a hand-written
 * TypeScript predicate, a sift (Mongo-style) query over `{profile, events}` where sift can express
 * it, and a json-rules-engine rule. json-rules-engine has no event aggregation, so event clauses
 * use custom operators whose bodies are plain loops (the figure then measures its overhead).
 */
import type { BenchEvent, Profile } from './data.js';
import { DAY, HOUR, NOW } from './data.js';

/** What a hand-written predicate sees: the profile, its sorted events and their epoch-ms times. */
export type Hand = (p: Profile, events: readonly BenchEvent[], times: Float64Array, now: number) => boolean;

/** A json-rules-engine condition tree (`all` / `any` / `not` / leaf). */
export type JreCondition =
  | { all: JreCondition[] }
  | { any: JreCondition[] }
  | { not: JreCondition }
  | { fact: 'profile' | 'events'; path?: string; operator: string; value: unknown };

/** One query of the suite. */
export interface SuiteQuery {
  name: string;
  text: string;
  hand: Hand;
  /** Mongo-style query over `{profile, events}`; undefined when sift cannot express it (reason given). */
  sift: Record<string, unknown> | undefined;
  siftSkip?: string;
  jre: JreCondition;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const DAYS_IN = (y: number, m: number): number => new Date(Date.UTC(y, m + 1, 0)).getUTCDate();

/** `t` plus `years` calendar years (UTC, the day clamped to the month's length). */
export function addYears(t: number, years: number): number {
  const d = new Date(t);
  const y = d.getUTCFullYear() + years;
  const m = d.getUTCMonth();
  return Date.UTC(y, m, Math.min(d.getUTCDate(), DAYS_IN(y, m)), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
}

/** Events of `type` with time in (now − window, now]; scans newest first. */
function anyWithin(events: readonly BenchEvent[], times: Float64Array, now: number, type: string, windowMs: number): boolean {
  for (let i = events.length - 1; i >= 0; i--) {
    const t = times[i]!;
    if (t > now) continue;
    if (t <= now - windowMs) return false;
    if (events[i]!.eventType === type) return true;
  }
  return false;
}

function countWithin(events: readonly BenchEvent[], times: Float64Array, now: number, windowMs: number, keep: (e: BenchEvent) => boolean): number {
  let n = 0;
  for (let i = events.length - 1; i >= 0; i--) {
    const t = times[i]!;
    if (t > now) continue;
    if (t <= now - windowMs) break;
    if (keep(events[i]!)) n++;
  }
  return n;
}

function sumPurchases(events: readonly BenchEvent[], times: Float64Array, now: number, windowMs: number): number {
  let s = 0;
  for (let i = 0; i < events.length; i++) {
    const t = times[i]!;
    if (windowMs !== Infinity && !(t <= now && t > now - windowMs)) continue;
    const e = events[i]!;
    if (e.eventType === 'commerce.purchases' && typeof e.commerce?.order?.priceTotal === 'number') s += e.commerce.order.priceTotal;
  }
  return s;
}

/** A product view followed (later position, non-decreasing time) by a purchase less than `gapMs` after it. */
function viewThenPurchase(events: readonly BenchEvent[], times: Float64Array, gapMs: number): boolean {
  let lastView = -Infinity;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.eventType === 'commerce.purchases' && times[i]! - lastView < gapMs && times[i]! >= lastView) return true;
    if (e.eventType === 'commerce.productViews') lastView = times[i]!;
  }
  return false;
}

const isAdult = (p: Profile, now: number): boolean => now > addYears(Date.parse(p.person.birthDate), 18);
const aged25to34 = (p: Profile, now: number): boolean => {
  const b = Date.parse(p.person.birthDate);
  return addYears(b, 25) <= now && now <= addYears(b, 34);
};
const isPageView = (e: BenchEvent): boolean => e.eventType === 'web.webpagedetails.pageViews';
const isSalePageView = (e: BenchEvent): boolean => isPageView(e) && e.web?.webPageDetails.siteSection === 'sale';

// Sift's view of the same windows: ISO strings of one format compare as instants.
const within = (ms: number): Record<string, string> => ({ $gt: iso(NOW - ms), $lte: iso(NOW) });
const PURCHASE_7D = { events: { $elemMatch: { eventType: 'commerce.purchases', timestamp: within(7 * DAY) } } };
const exists = (path: string): JreCondition => ({ fact: 'profile', path, operator: 'exists', value: true });
const attr = (path: string, operator: string, value: unknown): JreCondition => ({ fact: 'profile', path, operator, value });
const ev = (operator: string, value: unknown): JreCondition => ({ fact: 'events', operator, value });

/** The suite, ≥ 20 queries. Sift age cut-offs are the birth dates equivalent at NOW (checked by the agreement counts). */
export const SUITE: readonly SuiteQuery[] = [
  {
    name: 'attr-equals',
    text: 'homeAddress.countryCode = "FR"',
    hand: (p) => p.homeAddress.countryCode === 'FR',
    sift: { 'profile.homeAddress.countryCode': 'FR' },
    jre: attr('$.homeAddress.countryCode', 'equal', 'FR'),
  },
  {
    name: 'attr-in',
    text: 'homeAddress.countryCode in ["FR", "BE", "LU", "CH"]',
    hand: (p) => ['FR', 'BE', 'LU', 'CH'].includes(p.homeAddress.countryCode ?? ''),
    sift: { 'profile.homeAddress.countryCode': { $in: ['FR', 'BE', 'LU', 'CH'] } },
    jre: attr('$.homeAddress.countryCode', 'in', ['FR', 'BE', 'LU', 'CH']),
  },
  {
    name: 'attr-notIn',
    text: 'loyalty.tier notIn ["gold", "platinum"]',
    hand: (p) => p.loyalty.tier !== undefined && p.loyalty.tier !== 'gold' && p.loyalty.tier !== 'platinum',
    sift: { 'profile.loyalty.tier': { $exists: true, $nin: ['gold', 'platinum'] } },
    jre: { all: [exists('$.loyalty.tier'), attr('$.loyalty.tier', 'notIn', ['gold', 'platinum'])] },
  },
  {
    name: 'nested-and',
    text: 'loyalty.tier = "gold" and loyalty.points >= 5000',
    hand: (p) => p.loyalty.tier === 'gold' && p.loyalty.points >= 5000,
    sift: { 'profile.loyalty.tier': 'gold', 'profile.loyalty.points': { $gte: 5000 } },
    jre: { all: [attr('$.loyalty.tier', 'equal', 'gold'), attr('$.loyalty.points', 'greaterThanInclusive', 5000)] },
  },
  {
    name: 'between',
    text: 'loyalty.points between 1000 and 2000',
    hand: (p) => p.loyalty.points >= 1000 && p.loyalty.points <= 2000,
    sift: { 'profile.loyalty.points': { $gte: 1000, $lte: 2000 } },
    jre: { all: [attr('$.loyalty.points', 'greaterThanInclusive', 1000), attr('$.loyalty.points', 'lessThanInclusive', 2000)] },
  },
  {
    name: 'like',
    text: 'personalEmail.address like "%@example.fr"',
    hand: (p) => p.personalEmail?.address.endsWith('@example.fr') ?? false,
    sift: { 'profile.personalEmail.address': { $regex: '^[\\s\\S]*@example\\.fr$' } },
    jre: attr('$.personalEmail.address', 'like', '%@example.fr'),
  },
  {
    name: 'exists',
    text: 'mobilePhone.number exists',
    hand: (p) => p.mobilePhone?.number !== undefined,
    sift: { 'profile.mobilePhone.number': { $exists: true, $ne: null } },
    jre: exists('$.mobilePhone.number'),
  },
  {
    name: 'not-exists',
    text: 'not (personalEmail.address exists)',
    hand: (p) => p.personalEmail?.address === undefined,
    sift: { $nor: [{ 'profile.personalEmail.address': { $exists: true, $ne: null } }] },
    jre: { not: exists('$.personalEmail.address') },
  },
  {
    name: 'startsWith',
    text: 'person.name.lastName.startsWith("Mar")',
    hand: (p) => p.person.name.lastName.startsWith('Mar'),
    sift: { 'profile.person.name.lastName': { $regex: '^Mar' } },
    jre: attr('$.person.name.lastName', 'startsWith', 'Mar'),
  },
  {
    name: 'endsWith',
    text: 'personalEmail.address.endsWith(".de")',
    hand: (p) => p.personalEmail?.address.endsWith('.de') ?? false,
    sift: { 'profile.personalEmail.address': { $regex: '\\.de$' } },
    jre: attr('$.personalEmail.address', 'endsWith', '.de'),
  },
  {
    name: 'contains-ci',
    text: 'homeAddress.city.contains("saint", false)',
    hand: (p) => p.homeAddress.city.toLowerCase().includes('saint'),
    sift: { 'profile.homeAddress.city': { $regex: 'saint', $options: 'i' } },
    jre: attr('$.homeAddress.city', 'containsCi', 'saint'),
  },
  {
    name: 'matches',
    text: 'homeAddress.postalCode.matches("^75\\\\d{3}$")',
    hand: (p) => /^75\d{3}$/u.test(p.homeAddress.postalCode),
    sift: { 'profile.homeAddress.postalCode': { $regex: '^75\\d{3}$' } },
    jre: attr('$.homeAddress.postalCode', 'matchesRe', '^75\\d{3}$'),
  },
  {
    name: 'age-adult',
    text: 'person.birthDate occurs > 18 years before now',
    hand: (p, _e, _t, now) => isAdult(p, now),
    sift: { 'profile.person.birthDate': { $lte: '2006-06-15' } },
    jre: attr('$.person.birthDate', 'olderThanYears', 18),
  },
  {
    name: 'age-range-and-country',
    text: 'person.birthDate occurs between 25 and 34 years before now and homeAddress.countryCode = "DE"',
    hand: (p, _e, _t, now) => aged25to34(p, now) && p.homeAddress.countryCode === 'DE',
    sift: { 'profile.person.birthDate': { $gte: '1990-06-16', $lte: '1999-06-15' }, 'profile.homeAddress.countryCode': 'DE' },
    jre: { all: [attr('$.person.birthDate', 'agedBetweenYears', [25, 34]), attr('$.homeAddress.countryCode', 'equal', 'DE')] },
  },
  {
    name: 'joined-30d',
    text: 'loyalty.joinDate occurs < 30 days before now',
    hand: (p, _e, _t, now) => {
      const t = Date.parse(p.loyalty.joinDate);
      return t <= now && now < t + 30 * DAY;
    },
    sift: { 'profile.loyalty.joinDate': within(30 * DAY) },
    jre: attr('$.loyalty.joinDate', 'withinMs', 30 * DAY),
  },
  {
    name: 'purchase-7d',
    text: 'select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 7 days before now',
    hand: (_p, e, t, now) => anyWithin(e, t, now, 'commerce.purchases', 7 * DAY),
    sift: PURCHASE_7D,
    jre: ev('anyEventWithin', { type: 'commerce.purchases', windowMs: 7 * DAY }),
  },
  {
    name: 'sku-any',
    text: 'select X from xEvent where X.productListItems.SKU = "sku-42"',
    hand: (_p, e) => e.some((x) => x.productListItems?.some((i) => i.SKU === 'sku-42') ?? false),
    sift: { events: { $elemMatch: { 'productListItems.SKU': 'sku-42' } } },
    jre: ev('anySku', 'sku-42'),
  },
  {
    name: 'pageviews-1d-count3',
    text: 'xEvent[eventType = "web.webpagedetails.pageViews" and timestamp occurs < 1 day before now].count() >= 3',
    hand: (_p, e, t, now) => countWithin(e, t, now, DAY, isPageView) >= 3,
    sift: undefined,
    siftSkip: 'sift has no count of matching array elements',
    jre: ev('countWithinAtLeast', { type: 'web.webpagedetails.pageViews', windowMs: DAY, min: 3 }),
  },
  {
    name: 'filtered-count3-1d',
    text: 'xEvent[eventType = "web.webpagedetails.pageViews" and web.webPageDetails.siteSection = "sale" and timestamp occurs < 1 day before now].count() >= 3',
    hand: (_p, e, t, now) => countWithin(e, t, now, DAY, isSalePageView) >= 3,
    sift: undefined,
    siftSkip: 'sift has no count of matching array elements',
    jre: ev('countWithinAtLeast', { type: 'web.webpagedetails.pageViews', section: 'sale', windowMs: DAY, min: 3 }),
  },
  {
    name: 'sum-purchases-500',
    text: 'xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal) > 500',
    hand: (_p, e, t, now) => sumPurchases(e, t, now, Infinity) > 500,
    sift: undefined,
    siftSkip: 'sift has no sum over array elements',
    jre: ev('sumPurchasesAbove', { windowMs: null, min: 500 }),
  },
  {
    name: 'chain-view-purchase-1h',
    text: 'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.productViews"), B: WHAT(eventType = "commerce.purchases") WHEN(< 1 hour after A)])',
    hand: (_p, e, t) => viewThenPurchase(e, t, HOUR),
    sift: undefined,
    siftSkip: 'sift cannot express ordered sequences',
    jre: ev('viewThenPurchaseWithin', HOUR),
  },
  {
    name: 'combo-country-adult-spend',
    text: 'homeAddress.countryCode in ["FR", "BE"] and person.birthDate occurs > 18 years before now and xEvent[eventType = "commerce.purchases" and timestamp occurs < 30 days before now].sum(commerce.order.priceTotal) > 500',
    hand: (p, e, t, now) => (p.homeAddress.countryCode === 'FR' || p.homeAddress.countryCode === 'BE') && isAdult(p, now) && sumPurchases(e, t, now, 30 * DAY) > 500,
    sift: undefined,
    siftSkip: 'sift has no sum over array elements',
    jre: { all: [attr('$.homeAddress.countryCode', 'in', ['FR', 'BE']), attr('$.person.birthDate', 'olderThanYears', 18), ev('sumPurchasesAbove', { windowMs: 30 * DAY, min: 500 })] },
  },
  {
    name: 'combo-loyal-no-recent-purchase',
    text: '(loyalty.tier = "gold" or loyalty.points > 8000) and not (select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < 7 days before now)',
    hand: (p, e, t, now) => (p.loyalty.tier === 'gold' || p.loyalty.points > 8000) && !anyWithin(e, t, now, 'commerce.purchases', 7 * DAY),
    sift: { $and: [{ $or: [{ 'profile.loyalty.tier': 'gold' }, { 'profile.loyalty.points': { $gt: 8000 } }] }, { $nor: [PURCHASE_7D] }] },
    jre: {
      all: [
        { any: [attr('$.loyalty.tier', 'equal', 'gold'), attr('$.loyalty.points', 'greaterThan', 8000)] },
        { not: ev('anyEventWithin', { type: 'commerce.purchases', windowMs: 7 * DAY }) },
      ],
    },
  },
  {
    name: 'combo-email-city-cart',
    text: 'personalEmail.address exists and (homeAddress.city = "Paris" or homeAddress.city = "Lyon") and xEvent[eventType = "commerce.productListAdds"].count() >= 1',
    hand: (p, e) => p.personalEmail?.address !== undefined && (p.homeAddress.city === 'Paris' || p.homeAddress.city === 'Lyon') && e.some((x) => x.eventType === 'commerce.productListAdds'),
    sift: {
      'profile.personalEmail.address': { $exists: true, $ne: null },
      'profile.homeAddress.city': { $in: ['Paris', 'Lyon'] },
      events: { $elemMatch: { eventType: 'commerce.productListAdds' } },
    },
    jre: { all: [exists('$.personalEmail.address'), attr('$.homeAddress.city', 'in', ['Paris', 'Lyon']), ev('anyEventOfType', 'commerce.productListAdds')] },
  },
];

/** Custom json-rules-engine operators the suite's rules use (plain loops, like the hand-written code). */
export function jreOperators(now: number): Array<[string, (fact: unknown, value: never) => boolean]> {
  const evs = (f: unknown): BenchEvent[] => (Array.isArray(f) ? (f as BenchEvent[]) : []);
  const timesOf = (es: BenchEvent[]): Float64Array => Float64Array.from(es, (e) => Date.parse(e.timestamp));
  const likeRe = (pattern: string): RegExp => new RegExp(`^${pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '[\\s\\S]*').replace(/_/g, '[\\s\\S]')}$`);
  return [
    ['exists', (f) => f !== undefined && f !== null],
    ['like', (f, v: string) => typeof f === 'string' && likeRe(v).test(f)],
    ['startsWith', (f, v: string) => typeof f === 'string' && f.startsWith(v)],
    ['endsWith', (f, v: string) => typeof f === 'string' && f.endsWith(v)],
    ['containsCi', (f, v: string) => typeof f === 'string' && f.toLowerCase().includes(v)],
    ['matchesRe', (f, v: string) => typeof f === 'string' && new RegExp(v, 'u').test(f)],
    ['olderThanYears', (f, v: number) => typeof f === 'string' && now > addYears(Date.parse(f), v)],
    ['agedBetweenYears', (f, v: [number, number]) => typeof f === 'string' && addYears(Date.parse(f), v[0]) <= now && now <= addYears(Date.parse(f), v[1])],
    ['withinMs', (f, v: number) => typeof f === 'string' && Date.parse(f) <= now && now < Date.parse(f) + v],
    ['anyEventWithin', (f, v: { type: string; windowMs: number }) => { const e = evs(f); return anyWithin(e, timesOf(e), now, v.type, v.windowMs); }],
    ['anyEventOfType', (f, v: string) => evs(f).some((e) => e.eventType === v)],
    ['anySku', (f, v: string) => evs(f).some((e) => e.productListItems?.some((i) => i.SKU === v) ?? false)],
    ['countWithinAtLeast', (f, v: { type: string; section?: string; windowMs: number; min: number }) => {
      const e = evs(f);
      return countWithin(e, timesOf(e), now, v.windowMs, (x) => x.eventType === v.type && (v.section === undefined || x.web?.webPageDetails.siteSection === v.section)) >= v.min;
    }],
    ['sumPurchasesAbove', (f, v: { windowMs: number | null; min: number }) => { const e = evs(f); return sumPurchases(e, timesOf(e), now, v.windowMs ?? Infinity) > v.min; }],
    ['viewThenPurchaseWithin', (f, v: number) => { const e = evs(f); return viewThenPurchase(e, timesOf(e), v); }],
  ];
}
