/**
 * One SDK instance: the Adobe Web SDK command style (`configure`, `sendEvent`, `getIdentity`)
 * over Audient's edge. Commands issued before `configure` wait for it; `sendEvent` resolves with
 * seed 000's `destinations` (the `activation:pull` payload) or rejects with the edge's error.
 */
import { readCookies, STATE_PREFIX, writeCookie } from './cookies.js';
import type { EdgeErrorBody, EdgeEvent, InteractRequest, InteractResponse, ProfileLookup, StateEntry } from './protocol.js';
import { fireSyncs } from './syncs.js';

/** Options of `configure`. */
export interface ConfigureOptions {
  /** Audient's host (`cdp.example.com`, `127.0.0.1:8080`) or base URL (`https://cdp.example.com`). */
  edgeDomain: string;
  /** The datastream id (the edge's `configId`). */
  datastreamId: string;
  /** The organisation id of the datastream; names the identity cookie. */
  orgId?: string;
  /** Path of the edge under the domain; `ee` as Adobe's. */
  edgeBasePath?: string;
}

/** Options of `sendEvent`. */
export interface SendEventOptions {
  xdm?: Record<string, unknown>;
  data?: Record<string, unknown>;
  /** Accepted for Adobe compatibility; Audient renders nothing. */
  renderDecisions?: boolean;
}

/** What `sendEvent` resolves with (Adobe's shape; Audient has no propositions or inferences). */
export interface SendEventResult {
  destinations: ProfileLookup[];
  propositions: never[];
  inferences: never[];
}

/** An edge answer that was not a success, with the edge's title and detail. */
export class EdgeRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly type?: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'EdgeRequestError';
  }
}

/** The command function a page calls: `audient(name, options)`. */
export type Command = (name: string, options?: unknown) => Promise<unknown>;

interface Config {
  url: string;
  /** Prefix of the state cookies of this organisation. */
  prefix: string;
  identityKey: string | undefined;
}

const noop = (): void => undefined;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function resolveConfig(options: unknown): Config {
  if (!isObject(options) || typeof options['edgeDomain'] !== 'string' || !options['edgeDomain'] || typeof options['datastreamId'] !== 'string' || !options['datastreamId']) {
    throw new TypeError('audient("configure", {edgeDomain, datastreamId, orgId?}): edgeDomain and datastreamId are required strings');
  }
  const o = options as unknown as ConfigureOptions;
  const domain = o.edgeDomain.replace(/\/+$/, '');
  const origin = /^https?:\/\//i.test(domain) ? domain : `${location.protocol === 'http:' ? 'http' : 'https'}://${domain}`;
  const basePath = (o.edgeBasePath ?? 'ee').replace(/^\/+|\/+$/g, '');
  const org = o.orgId ? o.orgId.replace(/@/g, '_') : undefined;
  return {
    url: `${origin}/${basePath}/v1/interact?configId=${encodeURIComponent(o.datastreamId)}`,
    prefix: org ? `${STATE_PREFIX}${org}_` : STATE_PREFIX,
    identityKey: org ? `${STATE_PREFIX}${org}_identity` : undefined,
  };
}

/** The ECID in an identity cookie value (base64 of protobuf field 1), if it holds one. */
function ecidOfCookie(value: string): string | undefined {
  try {
    const raw = atob(decodeURIComponent(value).replace(/-/g, '+').replace(/_/g, '/'));
    const ecid = raw.slice(2, 40);
    return raw.charCodeAt(0) === 0x0a && raw.charCodeAt(1) === 38 && /^\d{38}$/.test(ecid) ? ecid : undefined;
  } catch {
    return undefined;
  }
}

async function post(url: string, body: InteractRequest): Promise<InteractResponse> {
  let res: Response;
  try {
    // text/plain keeps this a CORS "simple" request: no preflight round trip.
    res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain; charset=UTF-8' }, credentials: 'omit' });
  } catch (err) {
    throw new EdgeRequestError(`Audient edge unreachable at ${url}: ${(err as Error).message}`, 0);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok || !isObject(json)) {
    const e: EdgeErrorBody = isObject(json) ? json : {};
    const what = e.title ? `${e.title}: ${e.detail ?? ''}` : `HTTP ${res.status} ${text.slice(0, 200)}`;
    throw new EdgeRequestError(`Audient edge: ${what}`, e.status ?? res.status, e.type, e.report?.requestId);
  }
  return json as unknown as InteractResponse;
}

/** A new SDK instance. */
export function createClient(): Command {
  let config: Config | undefined;
  let configured: (c: Config) => void = noop;
  const ready = new Promise<Config>((resolve) => (configured = resolve));
  /** State the edge asked to keep, also held here in case the page refuses cookies. */
  const memory = new Map<string, string>();
  let ecid: string | undefined;
  /** The request minting the ECID: the others wait for it so one visitor gets one ECID. */
  let minting: Promise<void> | undefined;

  const entries = (c: Config): StateEntry[] => {
    const cookies = readCookies(c.prefix);
    for (const [key, value] of memory) if (!cookies.some((e) => e.key === key)) cookies.push({ key, value });
    return cookies;
  };
  const hasIdentity = (c: Config): boolean => ecid !== undefined || entries(c).some((e) => (c.identityKey ? e.key === c.identityKey : /_identity$/.test(e.key)));

  function apply(answer: InteractResponse): ProfileLookup[] {
    const destinations: ProfileLookup[] = [];
    for (const h of Array.isArray(answer.handle) ? answer.handle : []) {
      switch (h.type) {
        case 'identity:result':
          ecid = h.payload.find((p) => p.namespace.code === 'ECID')?.id ?? ecid;
          break;
        case 'state:store':
          for (const s of h.payload) {
            memory.set(s.key, s.value);
            const sameSite = s.attrs?.['SameSite'];
            writeCookie({ name: s.key, value: s.value, maxAgeSeconds: s.maxAge ?? 34_128_000, sameSite: typeof sameSite === 'string' ? sameSite : undefined, secure: s.attrs?.['Secure'] === true });
          }
          break;
        case 'activation:pull':
          destinations.push(...h.payload);
          break;
        case 'activation:push':
          fireSyncs(h.payload, Date.now());
          break;
        default:
          break;
      }
    }
    return destinations;
  }

  async function sendEvent(options: unknown): Promise<SendEventResult> {
    const o: SendEventOptions = isObject(options) ? options : {};
    const c = await ready;
    if (!hasIdentity(c) && minting) await minting;
    const mints = !hasIdentity(c);
    const event: EdgeEvent = { xdm: o.xdm ?? {}, ...(o.data ? { data: o.data } : {}) };
    const request = post(c.url, { events: [event], meta: { state: { domain: location.hostname, cookiesEnabled: navigator.cookieEnabled, entries: entries(c) } } });
    if (mints) {
      const gate: Promise<void> = request.then(noop, noop).then(() => {
        if (minting === gate) minting = undefined;
      });
      minting = gate;
    }
    return { destinations: apply(await request), propositions: [], inferences: [] };
  }

  async function getIdentity(): Promise<{ identity: { ECID: string } }> {
    const c = await ready;
    if (minting) await minting;
    const id = ecid ?? entries(c).map((e) => (/_identity$/.test(e.key) ? ecidOfCookie(e.value) : undefined)).find((x) => x !== undefined);
    if (!id) throw new Error('audient("getIdentity"): no ECID yet; send an event first');
    return { identity: { ECID: id } };
  }

  return async (name, options) => {
    switch (name) {
      case 'configure':
        if (config) throw new Error('audient("configure") was already called');
        config = resolveConfig(options);
        configured(config);
        return undefined;
      case 'sendEvent':
        return sendEvent(options);
      case 'getIdentity':
        return getIdentity();
      default:
        throw new Error(`audient: unknown command "${name}" (configure, sendEvent, getIdentity)`);
    }
  };
}
