/**
 * The Web SDK in real Chromium (Debian's, driven by playwright-core) against a listening Audient:
 * a page on another origin loads `/sdk/v1/audient.min.js` from Audient and runs seed 000's page
 * code as written for `alloy`; the test reads the alias-filtered segment ids the page wrote, the
 * cookies, the stored profile and the hits of a URL-sync pixel server.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { SqliteStore } from '@audient/storage';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumMissing, chromiumSkip, launchChromium, seedPurchase } from '../testing/chromium.js';
import { createHarness, okJson, type Harness } from '../testing/harness.js';
import { decodeIdentityCookie } from './ecid.js';
import { SDK_PATH, sdkBundlePath, sdkRoutes } from './sdk-route.js';

const WEB_SDK_DIR = fileURLToPath(new URL('../../../web-sdk/', import.meta.url));
const ORG = 'ACME@AdobeOrg';
const IDENTITY_COOKIE = 'kndctr_ACME_AdobeOrg_identity';

interface PageResult {
  personalization?: string[];
  adServer?: string[];
  error?: string;
}

/** A local HTTP server; `handler` answers, the server is closed by the caller. */
async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/**
 * A page of the shop. `body` is the page's own code: seed 000's, except that the configure call
 * is ours and "code to pass the segment ids" writes them into the DOM for the test to read.
 */
function page(sdkUrl: string, configure: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>shop</title>
<script src="${sdkUrl}"></script>
<script>
${configure}
function show(id, destinations) {
  var ids = [];
  destinations.forEach(function (d) { d.segments.forEach(function (s) { ids.push(s.id); }); });
  document.getElementById(id).textContent = JSON.stringify(ids);
}
function fail(error) { document.getElementById('error').textContent = String(error && error.message || error); }
${body}
</script></head><body><pre id="personalization"></pre><pre id="adServer"></pre><pre id="error"></pre><pre id="done"></pre></body></html>`;
}

/** Seed 000's handler: filters the destinations by integration alias. */
const SEED_HANDLER = `.then(function(result) {
    if(result.destinations) { // Looking to see if the destination results are there

        // Get the destination with a particular alias
        var personalizationDestinations = result.destinations.filter(x => x.alias == "personalizationAlias")
        if(personalizationDestinations.length > 0) {
             // Code to pass the segment IDs into the system that corresponds to personalizationAlias
             show("personalization", personalizationDestinations)
        }
        var adServerDestinations = result.destinations.filter(x => x.alias == "adServerAlias")
        if(adServerDestinations.length > 0) {
            // Code to pass the segment ids into the system that corresponds to adServerAlias
            show("adServer", adServerDestinations)
        }
     }
     document.getElementById("done").textContent = "yes"
   })
  .catch(function(error) {
    // Tracking the event failed.
    fail(error)
    document.getElementById("done").textContent = "yes"
  });`;

/** Seed 000's purchase, verbatim. */
const SEED_PURCHASE = seedPurchase(SEED_HANDLER);

const HOME_VIEW = `alloy("sendEvent", {
  "xdm": { "eventType": "web.webpagedetails.pageViews", "web": { "webPageDetails": { "URL": location.href, "name": "home" } } }
})${SEED_HANDLER}`;

/**
 * What the page wrote. Scripts go to the page as strings: tsx compiles functions with helpers
 * (`__name`) that do not exist in the page.
 */
async function readPage(p: Page): Promise<PageResult> {
  await p.waitForFunction('document.getElementById("done").textContent === "yes"', undefined, { timeout: 15_000 });
  const text = (id: string) => p.evaluate(`document.getElementById(${JSON.stringify(id)}).textContent`) as Promise<string>;
  const [personalization, adServer, error] = await Promise.all([text('personalization'), text('adServer'), text('error')]);
  return {
    ...(personalization ? { personalization: JSON.parse(personalization) as string[] } : {}),
    ...(adServer ? { adServer: JSON.parse(adServer) as string[] } : {}),
    ...(error ? { error } : {}),
  };
}

describe('Web SDK in Chromium', { skip: chromiumSkip }, () => {
  if (chromiumMissing) {
    it('Chromium is installed', () => assert.fail(`CI=true requires Chromium for the Web SDK browser tests: ${chromiumMissing}`));
    return;
  }
  let h: Harness;
  let browser: Browser;
  let context: BrowserContext;
  let sdkApp: FastifyInstance | undefined;
  const servers: Server[] = [];
  const pixelHits: string[] = [];
  let shopOrigin = '';
  let audientBase = '';
  let sdkUrl = '';
  let datastreamId = '';
  let ecid = '';

  const ok = (method: 'POST' | 'PUT', url: string, body: unknown): Promise<Record<string, unknown>> => okJson(h, method, url, body);

  before(async () => {
    // Always test the current sources: rebuild the bundle (esbuild, a few milliseconds).
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: WEB_SDK_DIR, stdio: 'pipe' });

    const store = new SqliteStore(':memory:');
    await store.migrate();
    h = await createHarness(store, { segmentation: { tickMs: 0, batchTime: '' } }, { delivery: { pollMs: 3_600_000 } });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    audientBase = `127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    // Until app.ts registers the SDK route, serve it from a second Fastify beside Audient.
    let sdkHost = audientBase;
    if (!h.app.hasRoute({ method: 'GET', url: SDK_PATH })) {
      sdkApp = Fastify();
      await sdkApp.register(sdkRoutes(h.ctx));
      await sdkApp.listen({ port: 0, host: '127.0.0.1' });
      sdkHost = `127.0.0.1:${(sdkApp.server.address() as AddressInfo).port}`;
    }
    sdkUrl = `http://${sdkHost}${SDK_PATH}`;

    const pixel = await serve((req, res) => {
      pixelHits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'image/gif' }).end(Buffer.from('R0lGODlhAQABAAAAACw=', 'base64'));
    });
    servers.push(pixel.server);

    // The shop: a different origin (localhost vs 127.0.0.1, another port) from Audient.
    const pages = new Map<string, string>();
    const shop = await serve((req, res) => {
      const html = pages.get((req.url ?? '/').split('?')[0] ?? '/');
      if (html === undefined) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    });
    servers.push(shop.server);
    shopOrigin = `http://localhost:${shop.port}`;

    await ok('POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details', 'profile-consents'], fields: {} });
    await ok('POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details', 'event-commerce-details'], fields: {} });
    await ok('POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
    await ok('POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
    const audiences = {
      // Seed 000's purchase carries no eventType: a buyer is whoever placed an order.
      buyers: 'select X from xEvent where X.commerce.order.priceTotal > 0 and X.timestamp occurs < 1 hour before now',
      viewers: 'select X from xEvent where X.eventType = "web.webpagedetails.pageViews" and X.timestamp occurs < 1 hour before now',
      gold: 'loyalty.tier = "gold"',
    };
    for (const [id, query] of Object.entries(audiences)) {
      const a = await ok('POST', '/v1/audiences', { id, name: id, query });
      assert.equal(a['method'], 'edge', `${id} is an edge audience`);
    }
    const ds = await ok('POST', '/v1/datastreams', {
      name: 'Shop',
      allowedOrigins: [shopOrigin],
      eventDatasetId: 'web',
      orgId: ORG,
      urlSyncs: [
        { id: 'partner-pixel', type: 'url', url: `http://127.0.0.1:${pixel.port}/sync?uid={ECID}` },
        { id: 'partner-cookie', type: 'cookie', name: 'partner_uid', value: 'e-{ECID}', ttlDays: 7 },
      ],
    });
    datastreamId = String(ds['id']);
    const connection = async (alias: string) =>
      String((await ok('POST', '/v1/connections', { name: alias, destinationId: 'custom-personalization', settings: { integrationAlias: alias, datastreamId } }))['id']);
    const personalization = await connection('personalizationAlias');
    const adServer = await connection('adServerAlias');
    await ok('POST', '/v1/dataflows', { name: 'home page', connectionId: personalization, audienceIds: ['buyers', 'gold'], mapping: [] });
    await ok('POST', '/v1/dataflows', { name: 'on-site ads', connectionId: adServer, audienceIds: ['viewers', 'gold'], mapping: [] });

    const configure = `alloy("configure", { edgeDomain: "${audientBase}", datastreamId: "${datastreamId}", orgId: "${ORG}" });`;
    pages.set('/home', page(sdkUrl, configure, HOME_VIEW));
    pages.set('/checkout', page(sdkUrl, configure, SEED_PURCHASE));
    // Commands before configure are queued; an edge error rejects with its title and detail.
    pages.set(
      '/bad',
      page(sdkUrl, '', `audient("sendEvent", { xdm: { identityMap: { ECID: [{ id: "123" }] } } })${SEED_HANDLER}\naudient("configure", { edgeDomain: "http://${audientBase}/", datastreamId: "${datastreamId}", orgId: "${ORG}" });`),
    );

    browser = await launchChromium();
    context = await browser.newContext();
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await sdkApp?.close();
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
    await h?.close();
  });

  it('serves a bundle under 10 KB gzipped, cacheable and loadable from any origin', async () => {
    const body = readFileSync(sdkBundlePath());
    assert.ok(gzipSync(body).length < 10 * 1024, `gzipped ${gzipSync(body).length} bytes`);
    const r = await fetch(sdkUrl);
    assert.equal(r.status, 200);
    assert.match(String(r.headers.get('content-type')), /^application\/javascript/);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.match(String(r.headers.get('cache-control')), /max-age=\d{6,}/);
    assert.equal((await r.arrayBuffer()).byteLength, body.length);
    const again = await fetch(sdkUrl, { headers: { 'if-none-match': String(r.headers.get('etag')) } });
    assert.equal(again.status, 304);
  });

  it('first page: mints an ECID, keeps it in a first-party cookie, fires the URL and cookie syncs', async () => {
    const p = await context.newPage();
    await p.goto(`${shopOrigin}/home`);
    const result = await readPage(p);
    assert.equal(result.error, undefined);
    // Same page: the page view qualifies the ad server's viewers audience; nothing for the home page yet.
    assert.deepEqual(result, { personalization: [], adServer: ['viewers'] });

    const cookies = await context.cookies(shopOrigin);
    const identity = cookies.find((c) => c.name === IDENTITY_COOKIE);
    assert.ok(identity, `identity cookie set: ${cookies.map((c) => c.name).join(', ')}`);
    ecid = decodeIdentityCookie(identity.value) ?? '';
    assert.match(ecid, /^\d{38}$/);
    assert.deepEqual(await p.evaluate('alloy("getIdentity")'), { identity: { ECID: ecid } });
    assert.equal(cookies.find((c) => c.name === 'partner_uid')?.value, encodeURIComponent(`e-${ecid}`));

    for (let i = 0; i < 50 && !pixelHits.length; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(pixelHits, [`/sync?uid=${ecid}`]);
    await p.close();
  });

  it('next page: seed 000 purchase sends the same ECID; the purchase qualifies this page for the personalization alias only', async () => {
    assert.ok(ecid, 'the first-page test ran');
    // Between the pages the CRM makes the visitor gold (attribute audience, next-page).
    await ok('POST', '/v1/datasets/crm/records', { identityMap: { ECID: [{ id: ecid, primary: true }] }, loyalty: { tier: 'gold' } });
    await h.ctx.feed.flush();
    await h.ctx.bus.drain();

    const p = await context.newPage();
    const sent: string[] = [];
    p.on('request', (req) => {
      if (req.url().includes('/ee/v1/interact')) sent.push(req.postData() ?? '');
    });
    await p.goto(`${shopOrigin}/checkout`);
    const result = await readPage(p);
    assert.equal(result.error, undefined);
    assert.deepEqual(result.personalization, ['buyers', 'gold'], 'same-page purchase and the CRM attribute');
    assert.deepEqual(result.adServer, ['gold', 'viewers'], 'the ad server is not mapped to buyers');

    assert.equal(sent.length, 1);
    const entries = (JSON.parse(sent[0] ?? '{}') as { meta: { state: { entries: Array<{ key: string; value: string }> } } }).meta.state.entries;
    assert.equal(decodeIdentityCookie(entries.find((e) => e.key === IDENTITY_COOKIE)?.value ?? ''), ecid, 'the next page sends the same ECID');

    // The event landed in the profile through the normal pipeline.
    const profile = await h.call('GET', `/v1/profiles?ns=ecid&id=${ecid}`);
    assert.equal(profile.statusCode, 200, profile.body);
    const events = profile.json().events.items as Array<Record<string, unknown>>;
    const orders = events.map((e) => (e['commerce'] as { order?: { purchaseID?: string } } | undefined)?.order?.purchaseID).filter(Boolean);
    assert.deepEqual(orders, ['a8g784hjq1mnp3']);
    assert.ok(events.some((e) => e['eventType'] === 'web.webpagedetails.pageViews'));
    // The URL sync fired once per TTL: the second page did not fire it again.
    assert.equal(pixelHits.length, 1);
    await p.close();
  });

  it('queues commands issued before configure and rejects with the edge error', async () => {
    const p = await context.newPage();
    await p.goto(`${shopOrigin}/bad`);
    const result = await readPage(p);
    assert.match(result.error ?? '', /Invalid ECID: an ECID is exactly 38 digits/);
    await p.close();
  });
});

describe('Web SDK route', () => {
  it('answers 503 with how to build the bundle when it is missing', async () => {
    const app = Fastify();
    await app.register(sdkRoutes({ log: { warn: () => undefined } } as unknown as Parameters<typeof sdkRoutes>[0], { file: '/nonexistent/audient.min.js' }));
    const r = await app.inject({ method: 'GET', url: SDK_PATH });
    assert.equal(r.statusCode, 503);
    assert.equal(r.json().error.code, 'UNAVAILABLE');
    assert.match(r.json().error.message, /npm run build/);
    await app.close();
  });
});
