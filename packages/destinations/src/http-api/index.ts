/**
 * HTTP API destination (seed 001, Adobe's "HTTP API connection"): streams each changed profile,
 * one JSON document per request, to any HTTP endpoint.
 *
 * Body, exactly the seed's shape: the mapped attributes as nested XDM objects
 * (`person.name.firstName` → `{"person":{"name":{"firstName":…}}}`), then
 * `segmentMembership.ups.<audienceId>.{lastQualificationTime,status}` for the dataflow's mapped
 * audiences (status `realized` / `existing` / `exited`), then the profile's full `identityMap`
 * (`<namespace>: [{id}]`). The two platform keys win over a mapped attribute of the same name.
 *
 * Authentication is OAuth2 client credentials against `authEndpoint` (the only kind the seed
 * supports); the runtime fetches, caches and refreshes the token and adds `Authorization`.
 * Custom headers (`header1:value1,header2:value2`) are added to every call; unlike the seed's
 * beta, zero custom headers are allowed.
 */
import { parseHeaderList, type DestinationDefinition, type ExportRecord, type RequestDescriptor, type SettingValues } from '@audient/core';
import { everyItem, outcomeForStatus, snippet } from '../shared/http.js';

/** Headers Audient sets on every call; a custom header may not replace them. */
const RESERVED_HEADERS = ['content-type', 'idempotency-key'];

/** Parses the custom headers setting; `{}` when unset. Throws on text that validation refuses. */
function customHeaders(settings: SettingValues): Record<string, string> {
  const raw = settings['customHeaders'];
  if (typeof raw !== 'string') return {};
  const parsed = parseHeaderList(raw);
  if ('error' in parsed) throw new Error(`http-api: customHeaders: ${parsed.error}`);
  return parsed.headers;
}

/** Checks the custom headers beyond their syntax: reserved names, names given twice. */
function checkSettings(settings: SettingValues): Array<{ key: string; message: string }> {
  const raw = settings['customHeaders'];
  if (typeof raw !== 'string') return [];
  const parsed = parseHeaderList(raw);
  if ('error' in parsed) return [{ key: 'customHeaders', message: parsed.error }];
  const problems: Array<{ key: string; message: string }> = [];
  const seen = new Set<string>();
  for (const name of Object.keys(parsed.headers)) {
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.includes(lower)) problems.push({ key: 'customHeaders', message: `${name} is set by Audient and cannot be overridden` });
    if (seen.has(lower)) problems.push({ key: 'customHeaders', message: `${name} is given twice` });
    seen.add(lower);
  }
  return problems;
}

/** The JSON document for one profile (seed 001). */
export function httpApiBody(record: ExportRecord): Record<string, unknown> {
  const { segmentMembership: _m, identityMap: _i, ...attributes } = record.attributes;
  return { ...attributes, segmentMembership: record.segmentMembership, identityMap: record.identityMap };
}

/** Headers of every request by custom headers text, parsed once (requests are per profile). */
const headersByText = new Map<string, Readonly<Record<string, string>>>();
const MAX_HEADER_TEXTS = 100;

/** The headers of every request of a connection. */
function requestHeaders(settings: SettingValues): Readonly<Record<string, string>> {
  const raw = settings['customHeaders'];
  const text = typeof raw === 'string' ? raw : '';
  let headers = headersByText.get(text);
  if (!headers) {
    headers = { ...customHeaders(settings), 'content-type': 'application/json' };
    if (headersByText.size >= MAX_HEADER_TEXTS) headersByText.clear();
    headersByText.set(text, headers);
  }
  return headers;
}

/** One POST per profile to the endpoint URL exactly as configured (query parameters kept). */
function toRequests(records: readonly ExportRecord[], ctx: { settings: SettingValues }): RequestDescriptor[] {
  const url = String(ctx.settings['httpEndpoint']);
  const headers = requestHeaders(ctx.settings);
  return records.map((record, i) => ({ method: 'POST', url, headers: { ...headers }, body: JSON.stringify(httpApiBody(record)), items: [i] }));
}

/** Settings accepted by validation, as documentation and for tests. */
export const exampleSettings: SettingValues = {
  httpEndpoint: 'https://collector.example.com/profiles?source=audient',
  authEndpoint: 'https://auth.example.com/oauth2/token',
  clientId: 'audient',
  clientSecret: 's3cr3t',
  customHeaders: 'X-Tenant:acme,X-Env:prod',
  name: 'Acme collector',
  description: 'Profiles for the Acme data lake',
};

/** The HTTP API destination. */
export const httpApi: DestinationDefinition = {
  id: 'http-api',
  name: 'HTTP API',
  description: 'Streams each changed profile (mapped attributes, audience membership, identity map) as JSON to an HTTP endpoint, with OAuth2 client credentials.',
  category: 'streaming',
  settings: [
    { key: 'httpEndpoint', label: 'HTTP endpoint', type: 'url', required: true, description: 'URL profiles are POSTed to; query parameters are kept as given.' },
    { key: 'authEndpoint', label: 'Auth endpoint', type: 'url', required: true, description: 'OAuth2 token URL (client credentials grant).' },
    { key: 'clientId', label: 'Client ID', type: 'string', required: true, description: 'OAuth2 client id.' },
    { key: 'clientSecret', label: 'Client secret', type: 'password', required: true, description: 'OAuth2 client secret.' },
    {
      key: 'customHeaders',
      label: 'Custom headers',
      type: 'headers',
      description: 'Extra headers on every call: header1:value1,header2:value2 (may be empty).',
    },
    { key: 'name', label: 'Name', type: 'string', description: 'A name to recognise this connection by.' },
    { key: 'description', label: 'Description', type: 'string', description: 'What this connection is for.' },
  ],
  auth: { kind: 'oauth2-client-credentials', tokenUrl: 'authEndpoint', clientId: 'clientId', clientSecret: 'clientSecret' },
  identities: { targets: [] },
  marketingActions: ['export-to-third-party'],
  delivery: { kind: 'per-profile' },
  allowsAttributes: true,
  timeoutMs: 2000,
  checkSettings,
  toRequests,
  classify(response, request) {
    const ok = response.status >= 200 && response.status < 300;
    const message = ok ? '' : `HTTP ${response.status}${response.body ? `: ${snippet(response.body)}` : ''}`;
    return everyItem(request.items, outcomeForStatus(response.status, message, { authRefreshable: true }));
  },
};

export default httpApi;
