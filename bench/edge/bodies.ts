/**
 * Interact request bodies of the edge benchmark: one page view of a known visitor (the ECID of
 * profile `i` of the seeded store), as the Web SDK sends it on a page load, with a query for the
 * identity. Deterministic; ours and the peer get byte-identical bodies.
 */
import { prng, profileIdentity } from '../lib/workload.js';

const SECTIONS = ['home', 'women', 'men', 'kids', 'sale', 'stores', 'help'];

/** The interact body of a page view by profile `i`. */
export function interactBody(i: number, seed: number): string {
  return pageView(i, profileIdentity(i, seed).ecid);
}

/**
 * The interact body of a new visitor's page view (page `i`): no identity at all, as the Web SDK's
 * first request from a browser without the identity cookie, so the edge mints an ECID and the
 * event creates the profile.
 */
export function newVisitorBody(i: number): string {
  return pageView(i, undefined);
}

function pageView(i: number, ecid: string | undefined): string {
  const section = SECTIONS[i % SECTIONS.length]!;
  const page = i % 2000;
  return JSON.stringify({
    events: [
      {
        xdm: {
          eventType: 'web.webpagedetails.pageViews',
          ...(ecid ? { identityMap: { ECID: [{ id: ecid, primary: true, authenticatedState: 'ambiguous' }] } } : {}),
          web: {
            webPageDetails: { URL: `https://shop.example.com/${section}/p/${page}`, name: `${section} product ${page}`, siteSection: section, pageViews: { value: 1 } },
            webReferrer: { URL: 'https://www.example.org/search?q=shoes', type: 'search_engine' },
          },
        },
      },
    ],
    query: { identity: { fetch: ['ECID'] } },
  });
}

/** `count` bodies of uniformly random profiles among `profiles` (keys drawn from `seed + 13`). */
export function interactBodies(count: number, profiles: number, seed: number): Buffer[] {
  const pick = prng(seed + 13);
  return Array.from({ length: count }, () => Buffer.from(interactBody(Math.floor(pick() * profiles), seed)));
}

/** `count` new visitors' bodies (pages of every section). */
export function newVisitorBodies(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.from(newVisitorBody(i)));
}
