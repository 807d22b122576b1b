/**
 * A local, strict stand-in for one MoEngage data centre's Bulk Import API (`contract.ts` has the
 * documented contract and its sources). Loopback only, port 0. Point the destination at it with
 * the `baseUrl` setting (`server.url`), which replaces `https://api-<dc>.moengage.com`.
 *
 * It refuses, with MoEngage's error shape `{"status":"fail","error":{…}}`, everything the
 * documentation says MoEngage refuses — and a little more, so our destination cannot drift:
 * wrong method or path (404/405), missing or wrong Basic credentials or a Basic username other
 * than the path's workspace (401), a missing or different `MOE-APPKEY` (400), a content type
 * other than JSON (415), a body over 100 kB (413), malformed JSON, `type` other than
 * `transition`, empty `elements`, element `type` other than customer/event/device, a missing or
 * refused `customer_id`, refused attribute names, dictionary values, arrays over 50 elements or
 * of mixed types (400), more users per minute than the workspace's limit (429). Strings are cut
 * to 512 characters as MoEngage documents. It records what it accepted, per workspace and
 * customer_id (attributes merged, as MoEngage updates profiles), and can be told to fail.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  MOENGAGE_LIMITS,
  MOENGAGE_MAX_BODY_BYTES,
  MOENGAGE_SUCCESS_BODY,
  MOENGAGE_USERS_PER_MINUTE,
  moengageAttributeNameProblem,
  moengageCustomerIdAccepted,
  type MoEngageErrorBody,
} from '../contract.js';

/** A workspace the server knows. */
export interface MoEngageWorkspace {
  id: string;
  dataApiKey: string;
}

/** Options of the test server. */
export interface MoEngageServerOptions {
  workspaces: readonly MoEngageWorkspace[];
  /** Users accepted per workspace per sliding minute (default: the documented 10,000). */
  usersPerMinute?: number;
  /** Clock for the rate limit (default `Date.now`). */
  now?: () => number;
}

/** One request as the server saw it. */
export interface MoEngageSeenRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
}

/** A running server. */
export interface MoEngageServer {
  /** Base URL to use as the destination's `baseUrl` setting. */
  url: string;
  /** Every request, in arrival order. */
  requests: MoEngageSeenRequest[];
  /** Accepted customers of a workspace: customer_id → merged attributes. */
  customers(workspaceId: string): Record<string, Record<string, unknown>>;
  /** The next `times` requests get `status` with MoEngage's error body (after routing). */
  failNext(status: number, times?: number): void;
  close(): Promise<void>;
}

type Failure = { status: number; type: string; message: string; attribute?: string };

const ERROR_TYPES: Record<number, string> = {
  400: 'BadRequest',
  401: 'Authentication required',
  403: 'BlockedClient',
  413: 'PayloadTooLarge',
  415: 'MediaTypeError',
  429: 'RateLimitError',
  500: 'Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

const bad = (message: string, attribute?: string, type = 'AttributeError'): Failure => ({ status: 400, type, message, ...(attribute ? { attribute } : {}) });

/** Checks one customer's attributes; cuts strings as MoEngage does. */
function checkAttributes(attributes: unknown): { failure: Failure } | { attributes: Record<string, unknown> } {
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) return { failure: bad('attributes must be a dictionary', 'attributes') };
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(attributes as Record<string, unknown>)) {
    const problem = moengageAttributeNameProblem(name);
    if (problem) return { failure: bad(problem, name) };
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return { failure: bad(`${name}: dictionary values are not accepted`, name) };
    if (Array.isArray(value)) {
      if (value.length > MOENGAGE_LIMITS.arrayElements) return { failure: bad(`${name}: arrays hold at most ${MOENGAGE_LIMITS.arrayElements} elements`, name) };
      const kinds = new Set(value.map((v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)));
      if (kinds.size > 1) return { failure: bad(`${name}: array elements must all be of one type`, name) };
      if (value.some((v) => typeof v === 'string' && Array.from(v).length > MOENGAGE_LIMITS.valueChars)) {
        return { failure: bad(`${name}: array elements are at most ${MOENGAGE_LIMITS.valueChars} characters`, name) };
      }
      out[name] = value;
    } else {
      out[name] = typeof value === 'string' ? Array.from(value).slice(0, MOENGAGE_LIMITS.valueChars).join('') : value;
    }
  }
  return { attributes: out };
}

/** Checks a parsed bulk body; returns the customers to record. */
function checkBody(body: unknown): { failure: Failure } | { customers: Array<{ id: string; attributes: Record<string, unknown> }> } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { failure: bad("'Could not decode the request body. The JSON was incorrect or not encoded as UTF-8.", undefined, 'Malformed JSON') };
  const b = body as Record<string, unknown>;
  if (b['type'] !== 'transition') return { failure: bad("'type should be transition", 'type') };
  const elements = b['elements'];
  if (!Array.isArray(elements) || elements.length === 0) return { failure: bad("'elements cannot be empty array", 'elements', 'MissingAttributeError') };
  const customers: Array<{ id: string; attributes: Record<string, unknown> }> = [];
  for (const el of elements) {
    if (typeof el !== 'object' || el === null || Array.isArray(el)) return { failure: bad("'type in elements should be customer/event/device", 'type') };
    const e = el as Record<string, unknown>;
    if (e['type'] !== 'customer' && e['type'] !== 'event' && e['type'] !== 'device') return { failure: bad("'type in elements should be customer/event/device", 'type') };
    const id = e['customer_id'];
    if (typeof id !== 'string' || id === '') return { failure: bad("'customer_id not found in the payload", 'customer_id', 'MissingAttributeError') };
    if (!moengageCustomerIdAccepted(id)) return { failure: bad(`'customer_id ${JSON.stringify(id)} is not allowed`, 'customer_id') };
    if (e['type'] !== 'customer') continue;
    const checked = checkAttributes(e['attributes'] ?? {});
    if ('failure' in checked) return checked;
    customers.push({ id, attributes: checked.attributes });
  }
  return { customers };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Starts the server on 127.0.0.1, port 0. */
export async function startMoEngageServer(options: MoEngageServerOptions): Promise<MoEngageServer> {
  const now = options.now ?? Date.now;
  const limit = options.usersPerMinute ?? MOENGAGE_USERS_PER_MINUTE;
  const workspaces = new Map(options.workspaces.map((w) => [w.id, w]));
  const accepted = new Map<string, Map<string, Record<string, unknown>>>();
  const window = new Map<string, number[]>();
  const requests: MoEngageSeenRequest[] = [];
  let failures: number[] = [];
  let counter = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readBody(req);
    const body = raw.toString('utf8');
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const answer = (status: number, payload: unknown): void => {
      requests.push({ method: req.method ?? '', path, headers: { ...req.headers }, body, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const fail = (f: Failure): void => {
      counter += 1;
      const err: MoEngageErrorBody = { status: 'fail', error: { ...(f.attribute ? { attribute: f.attribute } : {}), message: f.message, type: f.type, request_id: `req${String(counter).padStart(5, '0')}` } };
      answer(f.status, err);
    };

    const match = /^\/v1\/transition\/([^/]+)$/.exec(path);
    if (!match) return fail({ status: 404, type: 'NotFound', message: `no API at ${path}` });
    if (req.method !== 'POST') return fail({ status: 405, type: 'MethodNotAllowed', message: 'use POST' });
    const injected = failures.shift();
    if (injected !== undefined) return fail({ status: injected, type: ERROR_TYPES[injected] ?? 'Error', message: `injected failure ${injected}` });

    const workspaceId = decodeURIComponent(match[1] ?? '');
    const auth = req.headers.authorization;
    if (!auth) return fail({ status: 401, type: 'Authentication required', message: 'Authentication Header Required' });
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(auth);
    const decoded = basic ? Buffer.from(basic[1] ?? '', 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const user = colon >= 0 ? decoded.slice(0, colon) : '';
    const key = colon >= 0 ? decoded.slice(colon + 1) : '';
    const ws = workspaces.get(workspaceId);
    if (!ws || user !== workspaceId || key !== ws.dataApiKey) {
      return fail({ status: 401, type: 'Authentication required', message: 'App Secret key mismatch. Please login to the dashboard to verify key' });
    }
    const appKey = req.headers['moe-appkey'];
    if (appKey !== workspaceId) return fail(bad('MOE-APPKEY header must be the Workspace ID', 'MOE-APPKEY', 'MissingAttributeError'));
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return fail({ status: 415, type: 'MediaTypeError', message: 'Unsupported Media Type' });
    if (raw.length > MOENGAGE_MAX_BODY_BYTES) return fail({ status: 413, type: 'PayloadTooLarge', message: `Payload size exceeds ${MOENGAGE_MAX_BODY_BYTES / 1000} KB` });

    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return fail(bad("'Could not decode the request body. The JSON was incorrect or not encoded as UTF-8.", undefined, 'Malformed JSON'));
    }
    const checked = checkBody(parsed);
    if ('failure' in checked) return fail(checked.failure);

    const t = now();
    const recent = (window.get(workspaceId) ?? []).filter((at) => t - at < 60_000);
    if (recent.length + checked.customers.length > limit) {
      window.set(workspaceId, recent);
      return fail({ status: 429, type: 'RateLimitError', message: 'Rate limit exceeded' });
    }
    window.set(workspaceId, [...recent, ...checked.customers.map(() => t)]);
    const store = accepted.get(workspaceId) ?? new Map<string, Record<string, unknown>>();
    accepted.set(workspaceId, store);
    for (const c of checked.customers) store.set(c.id, { ...(store.get(c.id) ?? {}), ...c.attributes });
    answer(200, MOENGAGE_SUCCESS_BODY);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'fail', error: { message: String(e), type: 'Server Error', request_id: 'internal' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    customers: (workspaceId) => Object.fromEntries(accepted.get(workspaceId) ?? []),
    failNext(status, times = 1) {
      failures = [...failures, ...Array.from({ length: times }, () => status)];
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
