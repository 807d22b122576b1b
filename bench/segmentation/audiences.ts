/**
 * 100 audiences for the store-backed benchmarks: the evaluator suite plus parameterised variants
 * of the same shapes (thresholds, countries, tiers, windows). `streamingAudiences` keeps to shapes
 * the classifier puts on the streaming path (attributes, and event clauses with windows that fit
 * the 30-day retention horizon); its first audience holds for every profile with a city, so each
 * change yields at least one membership event.
 */
import { SUITE } from './queries.js';

const COUNTRIES = ['FR', 'BE', 'DE', 'ES', 'IT', 'GB', 'CH', 'LU', 'NL', 'PT'];
const TIERS = ['bronze', 'silver', 'gold', 'platinum'];

/** Audience definitions `{id, query}` for the batch job (every method). */
export function batchAudiences(count = 100): Array<{ id: string; query: string }> {
  const out = SUITE.map((q) => ({ id: `q-${q.name}`, query: q.text }));
  for (let k = 0; out.length < count; k++) {
    const c = COUNTRIES[k % COUNTRIES.length]!;
    const t = TIERS[k % TIERS.length]!;
    switch (k % 6) {
      case 0: out.push({ id: `v${k}-country-points`, query: `homeAddress.countryCode = "${c}" and loyalty.points >= ${(k * 137) % 9000}` }); break;
      case 1: out.push({ id: `v${k}-tier-adult`, query: `loyalty.tier = "${t}" and person.birthDate occurs > ${18 + (k % 40)} years before now` }); break;
      case 2: out.push({ id: `v${k}-spend`, query: `xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal) > ${100 + k * 20}` }); break;
      case 3: out.push({ id: `v${k}-views`, query: `xEvent[eventType = "web.webpagedetails.pageViews" and timestamp occurs < ${1 + (k % 14)} days before now].count() >= ${1 + (k % 5)}` }); break;
      case 4: out.push({ id: `v${k}-buyer`, query: `homeAddress.countryCode in ["${c}", "FR"] and (select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs < ${1 + (k % 20)} days before now)` }); break;
      default: out.push({ id: `v${k}-email`, query: `personalEmail.address like "%@example.${k % 2 ? 'fr' : 'de'}" and loyalty.points between ${k * 50} and ${k * 50 + 4000}` });
    }
  }
  return out.slice(0, count);
}

/** Audience definitions for the streaming benchmark (streaming or edge by the classifier). */
export function streamingAudiences(count = 100): Array<{ id: string; query: string }> {
  const out: Array<{ id: string; query: string }> = [{ id: 's-has-city', query: 'homeAddress.city exists' }];
  for (let k = 0; out.length < count; k++) {
    const c = COUNTRIES[k % COUNTRIES.length]!;
    const t = TIERS[k % TIERS.length]!;
    switch (k % 5) {
      case 0: out.push({ id: `s${k}-country-points`, query: `homeAddress.countryCode = "${c}" and loyalty.points >= ${(k * 137) % 9000}` }); break;
      case 1: out.push({ id: `s${k}-tier-adult`, query: `loyalty.tier = "${t}" and person.birthDate occurs > ${18 + (k % 40)} years before now` }); break;
      case 2: out.push({ id: `s${k}-spend-30d`, query: `xEvent[eventType = "commerce.purchases" and timestamp occurs < 30 days before now].sum(commerce.order.priceTotal) > ${100 + k * 20}` }); break;
      case 3: out.push({ id: `s${k}-views`, query: `xEvent[eventType = "web.webpagedetails.pageViews" and timestamp occurs < ${1 + (k % 14)} days before now].count() >= ${1 + (k % 5)}` }); break;
      default: out.push({ id: `s${k}-email-city`, query: `personalEmail.address.endsWith(".${k % 2 ? 'fr' : 'de'}") and homeAddress.city.contains("${k % 3 ? 'saint' : 'lon'}", false)` });
    }
  }
  return out.slice(0, count);
}
