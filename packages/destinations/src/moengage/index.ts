/**
 * MoEngage destination (seed 004): keeps MoEngage user profiles up to date with mapped
 * attributes and an array attribute listing the NAMES of the audiences the user is in.
 *
 * Documented contract implemented (details and sources in `./contract.ts`):
 * - Endpoint: MoEngage "Bulk Import" API, `POST https://api-<dc>.moengage.com/v1/transition/<Workspace ID>`,
 *   data centre from the `region` setting (DC-01…06, 101 — "Introduction"); `baseUrl` replaces
 *   `https://api-<dc>.moengage.com` for tests and proxies.
 * - Auth ("Data API"): HTTP Basic, username = Data App ID (Workspace ID), password = Data API key
 *   — added by the runtime; we add `MOE-APPKEY: <Workspace ID>` and `Content-Type: application/json`.
 * - Body ("Bulk Import"): `{"type":"transition","elements":[{"type":"customer","customer_id":"…","attributes":{…}}]}`.
 *   `customer_id` is the mapped `user_id`, else the mapped `anonymous_id` (the Data API knows
 *   users only by `customer_id` unless the workspace runs Identity Resolution).
 * - Limits: ≤ 100 kB per call ("Bulk Import") — we split a batch into as many calls as needed;
 *   10,000 users per minute ("Bulk Import Users and Events") — micro-batches of ≤ 100 users
 *   every ≤ 1 s stay under it for one dataflow; the runtime's rate limiter handles the rest
 *   and 429s are retried. Attribute names ≤ 200 chars, not `id`/`_id`/empty, no `moe_` prefix
 *   except MoEngage's standard attributes; values ≤ 512 chars; arrays ≤ 50 elements of one type;
 *   no dictionary values ("Data Tracking Policy", "Track User").
 * - Responses ("Track User", "Bulk Import"): 200 `{"status":"success",…}` for the whole call (no
 *   per-element result), errors `{"status":"fail","error":{"attribute"?,"message","type","request_id"}}`
 *   with 400/401/403/413/415/429/500. So `classify` is per request, by status: 429 and 5xx are
 *   retried; 400, 401 (Basic credentials are static), 403, 413, 415 are not.
 *
 * What we do to keep one bad profile from failing its neighbours (a 400 fails a whole call):
 * attributes MoEngage would refuse by name are left out, nested objects (a dotted mapping target)
 * are flattened back to their dotted names, strings are cut to 512 characters and arrays to 50
 * elements (MoEngage itself cuts strings), and a profile whose ids MoEngage refuses as
 * `customer_id` (`null`, `guest`, …) travels alone.
 */
import type { DestinationDefinition, ExportRecord, RequestDescriptor, ResponseInfo, SettingValues } from '@audient/core';
import { byteLength, everyItem, isObject, outcomeForStatus, parseJson, snippet } from '../shared/http.js';
import {
  MOENGAGE_DATA_CENTRES,
  MOENGAGE_LIMITS,
  MOENGAGE_MAX_BODY_BYTES,
  moengageApiHost,
  moengageAttributeNameProblem,
  moengageBulkPath,
  moengageCustomerIdAccepted,
} from './contract.js';

/** Default name of the audience-names array attribute (as seed 004 shows it). */
export const DEFAULT_AUDIENCE_ATTRIBUTE = 'AEPSegments';

/** Most users per call; with the 100 kB limit checked per call in `toRequests`. */
const MAX_USERS_PER_CALL = 100;

/** One element of a bulk call. */
export interface MoEngageCustomerElement {
  type: 'customer';
  customer_id: string;
  attributes: Record<string, unknown>;
}

/** Cuts a string to MoEngage's value limit, by code points. */
function cut(text: string): string {
  const chars = Array.from(text);
  return chars.length > MOENGAGE_LIMITS.valueChars ? chars.slice(0, MOENGAGE_LIMITS.valueChars).join('') : text;
}

/** A value in the form MoEngage keeps: strings cut, arrays capped. */
function fitValue(value: unknown): unknown {
  if (typeof value === 'string') return cut(value);
  if (Array.isArray(value)) return value.slice(0, MOENGAGE_LIMITS.arrayElements).map((v) => (typeof v === 'string' ? cut(v) : v));
  return value;
}

/** Mapped attributes as MoEngage user attributes: flat names, refused names left out. */
export function moengageAttributes(attributes: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [key, value] of Object.entries(obj)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (value === undefined || value === null) continue;
      if (isObject(value)) walk(value, name);
      else if (moengageAttributeNameProblem(name) === undefined) out[name] = fitValue(value);
    }
  };
  walk(attributes, '');
  return out;
}

/** Names of the audiences the user is in now (realized or existing), deduplicated, capped at 50. */
export function audienceNames(record: ExportRecord): string[] {
  const names = new Set<string>();
  for (const a of record.audiences) if (a.status !== 'exited') names.add(cut(a.name));
  return [...names].slice(0, MOENGAGE_LIMITS.arrayElements);
}

/** The customer id MoEngage will accept, or the first id given (then refused alone) — see module doc. */
function customerId(record: ExportRecord): { id: string; accepted: boolean } {
  const candidates = [...(record.identities['user_id'] ?? []), ...(record.identities['anonymous_id'] ?? [])];
  const good = candidates.find(moengageCustomerIdAccepted);
  if (good !== undefined) return { id: good, accepted: true };
  const first = candidates[0];
  if (first === undefined) throw new Error(`moengage: profile ${record.profileId} has neither user_id nor anonymous_id (the runtime excludes such records)`);
  return { id: first, accepted: false };
}

/** The bulk element for one record. */
export function moengageElement(record: ExportRecord, settings: SettingValues): { element: MoEngageCustomerElement; alone: boolean } {
  const { id, accepted } = customerId(record);
  const attribute = typeof settings['audienceAttribute'] === 'string' ? settings['audienceAttribute'] : DEFAULT_AUDIENCE_ATTRIBUTE;
  const attributes = { ...moengageAttributes(record.attributes), [attribute]: audienceNames(record) };
  return { element: { type: 'customer', customer_id: id, attributes }, alone: !accepted };
}

/** URL of the Bulk Import API for these settings. */
export function moengageUrl(settings: SettingValues): string {
  const override = typeof settings['baseUrl'] === 'string' && settings['baseUrl'] !== '' ? settings['baseUrl'].replace(/\/+$/, '') : undefined;
  return `${override ?? moengageApiHost(String(settings['region'] ?? '01'))}${moengageBulkPath(String(settings['appId']))}`;
}

const ENVELOPE_BYTES = byteLength('{"type":"transition","elements":[]}');

/** Records → bulk calls of ≤ 100 users and ≤ 100 kB each. */
function toRequests(records: readonly ExportRecord[], ctx: { settings: SettingValues }): RequestDescriptor[] {
  const url = moengageUrl(ctx.settings);
  const headers = { 'content-type': 'application/json', 'MOE-APPKEY': String(ctx.settings['appId']) };
  const requests: RequestDescriptor[] = [];
  let elements: string[] = [];
  let items: number[] = [];
  let size = ENVELOPE_BYTES;
  const flush = (): void => {
    if (!items.length) return;
    requests.push({ method: 'POST', url, headers: { ...headers }, body: `{"type":"transition","elements":[${elements.join(',')}]}`, items });
    elements = [];
    items = [];
    size = ENVELOPE_BYTES;
  };
  records.forEach((record, i) => {
    const { element, alone } = moengageElement(record, ctx.settings);
    const json = JSON.stringify(element);
    const bytes = byteLength(json);
    if (alone || items.length >= MAX_USERS_PER_CALL || (items.length && size + 1 + bytes > MOENGAGE_MAX_BODY_BYTES)) flush();
    size += bytes + (items.length ? 1 : 0);
    elements.push(json);
    items.push(i);
    if (alone) flush();
  });
  flush();
  return requests;
}

/** A MoEngage error body as one line, or undefined when the body is not MoEngage's shape. */
function describeError(status: number, body: unknown): string | undefined {
  if (!isObject(body) || !isObject(body['error'])) return undefined;
  const e = body['error'];
  const type = typeof e['type'] === 'string' ? e['type'] : 'error';
  const message = typeof e['message'] === 'string' ? e['message'] : 'no message';
  const attribute = typeof e['attribute'] === 'string' ? ` (attribute ${e['attribute']})` : '';
  const requestId = typeof e['request_id'] === 'string' ? ` [request_id ${e['request_id']}]` : '';
  return `MoEngage ${status} ${type}: ${message}${attribute}${requestId}`;
}

/** Per call, by status (the Bulk Import API gives no per-element result). */
function classify(response: ResponseInfo, request: RequestDescriptor): ReturnType<NonNullable<DestinationDefinition['classify']>> {
  const body = parseJson(response.body);
  const message = describeError(response.status, body) ?? `MoEngage HTTP ${response.status}${response.body ? `: ${snippet(response.body)}` : ''}`;
  if (response.status >= 200 && response.status < 300 && isObject(body) && body['status'] === 'fail') {
    return everyItem(request.items, { ok: false, retry: false, message });
  }
  return everyItem(request.items, outcomeForStatus(response.status, message, { authRefreshable: false }));
}

/** Checks the audience attribute name against MoEngage's naming rules. */
function checkSettings(settings: SettingValues): Array<{ key: string; message: string }> {
  const name = settings['audienceAttribute'];
  if (typeof name !== 'string') return [];
  const problem = moengageAttributeNameProblem(name);
  return problem ? [{ key: 'audienceAttribute', message: problem }] : [];
}

/** Settings accepted by validation, as documentation and for tests. */
export const exampleSettings: SettingValues = {
  appId: 'VJ0GSMESHMQA3L7WV1EEK3UR',
  dataApiKey: 'data-api-key-from-settings',
  region: '02',
  audienceAttribute: DEFAULT_AUDIENCE_ATTRIBUTE,
  name: 'MoEngage EU',
};

/** The MoEngage destination. */
export const moengage: DestinationDefinition = {
  id: 'moengage',
  name: 'MoEngage',
  description: 'Updates MoEngage users (user_id / anonymous_id) with mapped attributes and an array attribute of the names of the audiences they are in, through the Data API bulk import.',
  category: 'streaming',
  settings: [
    { key: 'appId', label: 'Data App ID', type: 'string', required: true, pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Workspace ID (earlier "APP ID"), Settings > Account > APIs; the Basic auth username and MOE-APPKEY header.' },
    { key: 'dataApiKey', label: 'Data API key', type: 'password', required: true, description: 'API key of the Data tile, Settings > Account > APIs; the Basic auth password.' },
    { key: 'region', label: 'Data centre', type: 'enum', required: true, default: '01', options: MOENGAGE_DATA_CENTRES, description: 'Your MoEngage data centre: the number in your dashboard URL (dashboard-0X.moengage.com).' },
    {
      key: 'audienceAttribute',
      label: 'Audience names attribute',
      type: 'string',
      required: true,
      default: DEFAULT_AUDIENCE_ATTRIBUTE,
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: 'Array user attribute listing the names of the audiences the user is in.',
    },
    { key: 'baseUrl', label: 'API base URL override', type: 'url', description: 'Advanced, for testing or proxies: replaces https://api-<dc>.moengage.com.' },
    { key: 'name', label: 'Name', type: 'string', description: 'A name to recognise this connection by.' },
    { key: 'description', label: 'Description', type: 'string', description: 'What this connection is for.' },
  ],
  auth: { kind: 'basic', username: 'appId', password: 'dataApiKey' },
  identities: { targets: ['user_id', 'anonymous_id'], oneOf: ['user_id', 'anonymous_id'] },
  marketingActions: ['email-targeting', 'export-to-third-party'],
  delivery: { kind: 'batch', maxSize: MAX_USERS_PER_CALL, maxAgeMs: 1000 },
  allowsAttributes: true,
  timeoutMs: 5000,
  checkSettings,
  toRequests,
  classify,
};

export default moengage;
