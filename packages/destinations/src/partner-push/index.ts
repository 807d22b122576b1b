/**
 * Real-time server-to-server partner push (seed 002, Audience Manager's "real-time
 * server-to-server integration"): qualification messages for 1–N users to a partner's endpoint,
 * within seconds of the change. Users are named by the partner's own id, found through the ID
 * sync table (`idSync`): the partner's user ids synced to the profile's ECIDs for this connection
 * (by the sync pixel or the sync API) become the record's `partner_uid` identities; profiles
 * without one are excluded by activation, counted with that reason, before they reach us.
 *
 * Message (our design; `POST <endpoint>`, `Content-Type: application/json`):
 *
 *     {
 *       "type": "audience-membership",
 *       "version": 1,
 *       "dataSourceId": "acme-dmp",
 *       "users": [
 *         { "uid": "P-1", "added": ["aud-1"], "removed": ["aud-3"],
 *           "updatedAt": "2024-05-25T23:37:33Z", "eventId": "<idempotency key>" }
 *       ]
 *     }
 *
 * Partner segment ids ARE our audience ids. `added` lists the mapped audiences the user is in
 * now (realized or existing), `removed` those it left (exited): each entry is the user's full
 * state for the dataflow's audiences, not a delta, so a replayed or reordered message is
 * harmless; `updatedAt` (latest qualification time) lets the partner drop an older state that
 * arrives late; `eventId` dedupes per user (the runtime's `Idempotency-Key` header covers the
 * whole message). A profile synced to several partner ids gives one entry per id.
 *
 * Answer contract we ask partners to implement: any 2xx with
 * `{"results":[{"uid":"P-1","status":"accepted"|"rejected"|"deferred","message"?:"…"}]}` gives a
 * per-user result (`rejected`: dropped, e.g. unknown uid; `deferred`: retried later); users
 * missing from `results`, and answers without `results`, take the HTTP status's class (2xx ok;
 * 408, 429, 5xx retried; other 4xx dropped).
 *
 * Delivery: micro-batches of at most 100 users waiting at most 500 ms (fixed on the
 * definition); `maxUsersPerMessage` (1–100) splits them further for partners that want smaller
 * messages. Timeout 3 s; the runtime retries. Auth: a bearer token when one is configured.
 */
import type { DestinationDefinition, ExportRecord, ItemOutcome, RequestDescriptor, ResponseInfo, SettingValues } from '@audient/core';
import { isObject, outcomeForStatus, parseJson, snippet } from '../shared/http.js';

/** Most users in one message; the runtime's batch size. */
const MAX_USERS = 100;

/** One user of a message. */
export interface PartnerUserUpdate {
  uid: string;
  added: string[];
  removed: string[];
  updatedAt?: string;
  eventId: string;
}

/** A message to the partner. */
export interface PartnerMessage {
  type: 'audience-membership';
  version: 1;
  dataSourceId: string;
  users: PartnerUserUpdate[];
}

/** The users one record becomes: one per distinct partner id. */
export function partnerUsers(record: ExportRecord): PartnerUserUpdate[] {
  const added: string[] = [];
  const removed: string[] = [];
  let updatedAt: string | undefined;
  for (const [id, m] of Object.entries(record.segmentMembership.ups)) {
    (m.status === 'exited' ? removed : added).push(id);
    if (updatedAt === undefined || m.lastQualificationTime > updatedAt) updatedAt = m.lastQualificationTime;
  }
  added.sort();
  removed.sort();
  const uids = [...new Set(record.identities['partner_uid'] ?? [])];
  if (!uids.length) throw new Error(`partner-push: profile ${record.profileId} has no partner_uid (the runtime excludes such records)`);
  return uids.map((uid) => ({ uid, added: [...added], removed: [...removed], ...(updatedAt ? { updatedAt } : {}), eventId: record.idempotencyKey }));
}

/** Users per message from the settings, within 1–100. */
function usersPerMessage(settings: SettingValues): number {
  const n = settings['maxUsersPerMessage'];
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_USERS ? n : MAX_USERS;
}

/** Records → messages; a record's users always travel together. */
function toRequests(records: readonly ExportRecord[], ctx: { settings: SettingValues }): RequestDescriptor[] {
  const url = String(ctx.settings['endpoint']);
  const dataSourceId = String(ctx.settings['dataSourceId']);
  const limit = usersPerMessage(ctx.settings);
  const requests: RequestDescriptor[] = [];
  let users: PartnerUserUpdate[] = [];
  let items: number[] = [];
  const flush = (): void => {
    if (!items.length) return;
    const message: PartnerMessage = { type: 'audience-membership', version: 1, dataSourceId, users };
    requests.push({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(message), items });
    users = [];
    items = [];
  };
  records.forEach((record, i) => {
    const mine = partnerUsers(record);
    if (items.length && users.length + mine.length > limit) flush();
    users.push(...mine);
    items.push(i);
  });
  flush();
  return requests;
}

/** A partner's per-user result. */
interface PartnerResult {
  uid: string;
  status: 'accepted' | 'rejected' | 'deferred';
  message?: string;
}

/** The `results` of an answer, by uid; undefined when the answer has none. */
function resultsByUid(body: unknown): Map<string, PartnerResult> | undefined {
  if (!isObject(body) || !Array.isArray(body['results'])) return undefined;
  const map = new Map<string, PartnerResult>();
  for (const r of body['results']) {
    if (!isObject(r) || typeof r['uid'] !== 'string') continue;
    const status = r['status'];
    if (status !== 'accepted' && status !== 'rejected' && status !== 'deferred') continue;
    map.set(r['uid'], { uid: r['uid'], status, ...(typeof r['message'] === 'string' ? { message: r['message'] } : {}) });
  }
  return map;
}

/** One record's outcome from its users' results: any deferred → retry; else any rejected → drop. */
function combine(results: readonly PartnerResult[], fallback: ItemOutcome): ItemOutcome {
  const deferred = results.filter((r) => r.status === 'deferred');
  const rejected = results.filter((r) => r.status === 'rejected');
  const say = (rs: readonly PartnerResult[], what: string): string => rs.map((r) => `${r.uid} ${what}${r.message ? `: ${r.message}` : ''}`).join('; ');
  if (deferred.length) return { ok: false, retry: true, message: `partner deferred ${say(deferred, 'deferred')}` };
  if (rejected.length) return { ok: false, retry: false, message: `partner rejected ${say(rejected, 'rejected')}` };
  return fallback;
}

/** Per user when the partner answers `results`, else by status. */
function classify(response: ResponseInfo, request: RequestDescriptor, records: readonly ExportRecord[]): ItemOutcome[] {
  const ok = response.status >= 200 && response.status < 300;
  const byStatus = outcomeForStatus(response.status, `partner HTTP ${response.status}${response.body ? `: ${snippet(response.body)}` : ''}`);
  const results = ok ? resultsByUid(parseJson(response.body)) : undefined;
  if (!results) return request.items.map(() => byStatus);
  return request.items.map((i) => {
    const record = records[i];
    if (!record) return { ok: false, retry: false, message: `partner-push: no record ${i} for this request` };
    const uids = [...new Set(record.identities['partner_uid'] ?? [])];
    return combine(uids.flatMap((uid) => results.get(uid) ?? []), byStatus);
  });
}

/** Checks the message size bound. */
function checkSettings(settings: SettingValues): Array<{ key: string; message: string }> {
  const n = settings['maxUsersPerMessage'];
  if (n === undefined) return [];
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_USERS ? [] : [{ key: 'maxUsersPerMessage', message: `Users per message must be a whole number from 1 to ${MAX_USERS}` }];
}

/** Settings accepted by validation, as documentation and for tests. */
export const exampleSettings: SettingValues = {
  endpoint: 'https://partner.example.net/v1/audiences',
  authToken: 'partner-token',
  dataSourceId: 'acme-dmp',
  maxUsersPerMessage: 50,
};

/** The real-time server-to-server partner push destination. */
export const partnerPush: DestinationDefinition = {
  id: 'partner-push',
  name: 'Partner push (real-time server-to-server)',
  description: "Pushes, within seconds, which audiences each user entered or left to a partner's server, naming users by the partner's id from the ID sync table.",
  category: 'streaming',
  settings: [
    { key: 'endpoint', label: 'Partner endpoint URL', type: 'url', required: true, description: 'Messages are POSTed here as JSON.' },
    { key: 'authToken', label: 'Bearer token', type: 'password', description: 'Sent as Authorization: Bearer <token>; leave empty when the partner needs none.' },
    {
      key: 'dataSourceId',
      label: 'Data source ID',
      type: 'string',
      required: true,
      pattern: '^[A-Za-z0-9._-]{1,64}$',
      description: 'Our id at the partner, sent in every message.',
    },
    { key: 'maxUsersPerMessage', label: 'Users per message', type: 'number', default: MAX_USERS, description: `At most this many users per message (1–${MAX_USERS}).` },
  ],
  auth: { kind: 'bearer', token: 'authToken' },
  identities: { targets: ['partner_uid'], required: ['partner_uid'] },
  idSync: { target: 'partner_uid' },
  marketingActions: ['export-to-third-party', 'segment-sharing'],
  delivery: { kind: 'batch', maxSize: MAX_USERS, maxAgeMs: 500 },
  allowsAttributes: false,
  timeoutMs: 3000,
  checkSettings,
  toRequests,
  classify,
};

export default partnerPush;
