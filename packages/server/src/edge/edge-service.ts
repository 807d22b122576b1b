/**
 * The edge: answers Experience Edge `interact` / `collect` requests for a datastream.
 *
 * For one request it (1) settles the visitor's ECID (from the events' identityMap, else the
 * identity cookie echoed in `meta.state.entries`, else a new one), (2) ingests the events into
 * the datastream's event dataset through the normal pipeline (so streaming audiences and
 * destinations see them too), (3) evaluates the sandbox's edge audiences on the profile with
 * those events before answering (same-page), and (4) returns, per custom personalization
 * connection of the datastream, seed 000's profile-lookup entry with the mapped audiences the
 * profile is in now — memberships from streaming and batch evaluation included (next-page).
 * URL and cookie syncs come back as `activation:push` entries that the Web SDK fires.
 *
 * Hot visitors are answered from memory: the segmentation engine keeps, per recently seen
 * profile, which profile an ECID resolves to, its fragments (consent included) and its
 * memberships, coherent with the change feed (see ProfileView in services/segmentation.ts);
 * the request then reads only the profile's events and commits its own (group commit).
 *
 * Protocol details the Adobe Web SDK relies on: `state:store` cookies it writes itself
 * (`kndctr_<org>_identity`, `_consent`, `_cluster`), `locationHint:result` (the region path it
 * uses next, `/ee/<region>/v1/…`), `identity/acquire` (getIdentity) and `privacy/set-consent`
 * (setConsent). Consent is honoured: no collection when `consents.collect` is refused (stored
 * on the profile or in the consent cookie), no personalization when `consents.personalize` is.
 */
import { DEFAULT_MERGE_POLICY, identityKey, mergeFragments, namespaceKey, type Membership } from '@audient/core';
import type { Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Connections } from '../activation/connections.js';
import type { Dataflows } from '../activation/dataflows.js';
import { timeOrderedUuid } from '../ids.js';
import type { AudienceService } from '../services/audiences.js';
import type { Catalog } from '../services/catalog.js';
import type { IngestionService } from '../services/ingestion.js';
import { eventChangeKey, type SegmentationEngine } from '../services/segmentation.js';
import { ECID_PLACEHOLDER, type Datastream, type Datastreams } from './datastreams.js';
import { EdgeConfigCache, type LookupConnection } from './edge-cache.js';
import { consentCookieRefuses, consentCookieValue, consentOfProfile, parseConsentRequest, type ConsentEntry, type XdmConsents } from './consent.js';
import { decodeIdentityCookie, decodeSyncState, encodeIdentityCookie, encodeSyncState, identityCookieName, isEcid, mintEcid, namespacedCookieName } from './ecid.js';
import { EdgeError } from './edge-errors.js';
import { derivedOf } from '../services/fragment-derived.js';

const EDGE_ONLY = new Set(['edge'] as const);
/** How long the browser keeps the identity cookie, seconds (395 days, as Adobe's edge). */
const IDENTITY_COOKIE_MAX_AGE = 34_128_000;
/** The location hint answered to requests that named no region (Audient is one region). */
export const DEFAULT_LOCATION_HINT = 'aud1';
/** How long the browser keeps the location hint (the cluster cookie), seconds (as Adobe's edge). */
const LOCATION_HINT_TTL = 1_800;

/** What ingesting a request's events stored: the profile of the first accepted one, and the change keys of its events. */
interface IngestedEvents {
  profileId: string;
  keys: string[];
}

/** One event of a request: XDM (with identityMap) and free-form data that is not ingested. */
export interface EdgeEvent {
  xdm: Record<string, unknown>;
  data?: Record<string, unknown> | undefined;
}

/** The identities of a request outside its events (`xdm.identityMap` of interact, `identityMap` of set-consent). */
type IdentityMapInput = Record<string, unknown>;

/** An interact / collect / identity-acquire request body (acquire has no events). */
export interface EdgeRequestBody {
  events: EdgeEvent[];
  xdm?: { identityMap?: IdentityMapInput | undefined } | undefined;
  identityMap?: IdentityMapInput | undefined;
  meta?: { state?: { entries?: Array<{ key: string; value: string }> | undefined } | undefined } | undefined;
}

/** A set-consent request body. */
export interface ConsentRequestBody {
  consent: ConsentEntry[];
  identityMap?: IdentityMapInput | undefined;
  meta?: EdgeRequestBody['meta'];
}

/** One handle of the answer. */
export type EdgeHandle =
  | { type: 'identity:result'; payload: Array<{ id: string; namespace: { code: 'ECID' } }> }
  | { type: 'state:store'; payload: Array<{ key: string; value: string; maxAge: number; attrs: { SameSite: 'None'; Secure: true } }> }
  | { type: 'locationHint:result'; payload: Array<{ scope: 'EdgeNetwork'; hint: string; ttlSeconds: number }> }
  | { type: 'consent:preferences'; payload: Array<XdmConsents & { metadata: { time: string } }> }
  | { type: 'activation:pull'; payload: Array<{ type: 'profileLookup'; destinationId: string; alias: string; segments: Array<{ id: string }> }> }
  | {
      type: 'activation:push';
      payload: Array<
        | { type: 'url'; id: string; spec: { url: string; hideReferrer: boolean; ttlMinutes: number } }
        | { type: 'cookie'; id: string; spec: { name: string; value: string; domain?: string; ttlDays: number } }
      >;
    };

/** A problem with one event that did not fail the request (e.g. it did not match the schema). */
export interface EdgeWarning {
  code: 'EVENT_REJECTED' | 'INGESTION_UNAVAILABLE' | 'COLLECT_CONSENT_REFUSED' | 'CONSENT_NOT_STORED' | 'CONSENT_NOT_INTERPRETED';
  title: string;
  detail: string;
  report: { eventIndex?: number; details?: Array<{ path: string; message: string }> };
}

/** The interact answer. */
export interface InteractResponse {
  requestId: string;
  handle: EdgeHandle[];
  warnings?: EdgeWarning[];
}

/** The edge request handling for every datastream. */
export class EdgeService {
  /** Lookup connections, mapped audiences and compiled edge audiences per sandbox (see edge-cache.ts). */
  private readonly config: EdgeConfigCache;

  constructor(
    private readonly deps: {
      store: Store;
      catalog: Catalog;
      ingestion: IngestionService;
      segmentation: SegmentationEngine;
      connections: Connections;
      dataflows: Dataflows;
      datastreams: Datastreams;
      audiences: AudienceService;
      log: Logger;
      now: () => number;
    },
  ) {
    this.config = new EdgeConfigCache({ connections: deps.connections, dataflows: deps.dataflows, audiences: deps.audiences });
    const invalidate = (sandboxId: string): void => this.config.invalidate(sandboxId);
    deps.connections.onChanged(invalidate);
    deps.dataflows.onChanged(invalidate);
    deps.datastreams.onChanged(invalidate);
    deps.audiences.onChanged(invalidate);
  }

  /** The enabled datastream of a configId, or the edge error to answer. */
  async datastream(configId: string | undefined): Promise<{ sandboxId: string; datastream: Datastream }> {
    if (!configId || !/^[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_-]{1,32})?$/.test(configId)) {
      throw new EdgeError('MISSING_CONFIG_ID', 'pass the datastream id as ?configId=<datastream id>');
    }
    const found = await this.deps.datastreams.resolve(configId.split(':')[0] ?? configId);
    if (!found) throw new EdgeError('UNKNOWN_DATASTREAM', `no datastream ${configId}`);
    if (!found.datastream.enabled) throw new EdgeError('DATASTREAM_DISABLED', `datastream ${configId} is disabled`);
    return found;
  }

  /** Handles one interact (answer) or collect (no answer) request; `body` is the request's own (its events are completed in place). */
  async handle(
    target: { sandboxId: string; datastream: Datastream },
    body: EdgeRequestBody,
    opts: { requestId: string; mode: 'interact' | 'collect' | 'acquire'; region?: string | undefined },
  ): Promise<InteractResponse> {
    const { sandboxId, datastream } = target;
    const ecid = this.settleEcid(datastream, body);
    const warnings: EdgeWarning[] = [];
    // Consent first: what the profile stored (set-consent), and the consent cookie the page sent.
    const known = ecid.minted ? undefined : await this.deps.segmentation.profileIdOf(sandboxId, { ns: namespaceKey('ECID'), id: ecid.id });
    const consent = known ? await this.consentOf(sandboxId, known) : { collect: true, personalize: true };
    const consentCookie = body.meta?.state?.entries?.find((e) => e.key === namespacedCookieName(datastream.orgId, 'consent'));
    if (consentCookie && consentCookieRefuses(consentCookie.value)) consent.collect = false;
    let profileId = known;
    let stored: IngestedEvents | undefined;
    if (!consent.collect && body.events.length) {
      warnings.push({ code: 'COLLECT_CONSENT_REFUSED', title: 'Events not stored', detail: 'the visitor refused collection (consents.collect)', report: {} });
    } else if (body.events.length) {
      stored = await this.ingest(sandboxId, datastream, body.events, ecid, warnings);
      profileId = stored?.profileId ?? known;
      profileId ??= await this.deps.store.findProfileId(sandboxId, { ns: namespaceKey('ECID'), id: ecid.id });
    }
    if (opts.mode === 'collect') return { requestId: opts.requestId, handle: [] };
    if (opts.mode === 'acquire') {
      return { requestId: opts.requestId, handle: this.identityHandles(datastream, ecid.id, opts.region), ...(warnings.length ? { warnings } : {}) };
    }

    const config = await this.config.get(sandboxId);
    // Same page: the edge audiences on the profile with these events. `reuse` and `includes`:
    // when this request's changes reach the streaming engine, it does not evaluate them again.
    let memberships: ReadonlyMap<string, Membership> | undefined;
    if (profileId) {
      const includes = stored?.profileId === profileId && stored.keys.length ? new Map([[profileId, stored.keys]]) : undefined;
      const report = await this.deps.segmentation.evaluate(sandboxId, [profileId], {
        methods: EDGE_ONLY, audiences: config.edgeAudiences, reuse: true, hot: true, withMemberships: true, ...(includes ? { includes } : {}),
      });
      memberships = report.memberships?.get(profileId);
    }
    const handle = this.identityHandles(datastream, ecid.id, opts.region);
    const lookups = await this.profileLookups(sandboxId, config.lookups(datastream.id), profileId, consent.personalize, memberships);
    if (lookups.length) handle.push({ type: 'activation:pull', payload: lookups });
    // Syncs share the visitor's id with partners: not when it refused collection.
    if (datastream.urlSyncs.length && consent.collect) {
      const due = this.dueSyncs(datastream, ecid.id, body, handle);
      if (due.length) handle.push({ type: 'activation:push', payload: due });
    }
    return { requestId: opts.requestId, handle, ...(warnings.length ? { warnings } : {}) };
  }

  /**
   * `privacy/set-consent`: stores the visitor's preferences as XDM `consents` on its profile
   * (the datastream's profile dataset, through the normal ingestion path) and answers the
   * identity, the consent cookie the SDK reads (`general=in|out`) and `consent:preferences`.
   */
  async setConsent(
    target: { sandboxId: string; datastream: Datastream },
    body: ConsentRequestBody,
    opts: { requestId: string; region?: string | undefined },
  ): Promise<InteractResponse> {
    const { sandboxId, datastream } = target;
    const time = new Date(this.deps.now()).toISOString();
    const parsed = parseConsentRequest(body.consent, time);
    const ecid = this.settleEcid(datastream, { events: [], identityMap: body.identityMap, meta: body.meta });
    const warnings: EdgeWarning[] = parsed.ignored.map((standard) => ({
      code: 'CONSENT_NOT_INTERPRETED' as const,
      title: 'Consent standard not interpreted',
      detail: `${standard} preferences are accepted but not interpreted; send Adobe 1.0 or 2.0 too`,
      report: {},
    }));
    const handle = this.identityHandles(datastream, ecid.id, opts.region);
    if (parsed.consents) {
      await this.storeConsent(sandboxId, datastream, ecid.id, body.identityMap, parsed.consents, warnings);
      const cookie = consentCookieValue(parsed.consents);
      const store = handle.find((h): h is Extract<EdgeHandle, { type: 'state:store' }> => h.type === 'state:store');
      if (cookie) store?.payload.push({ key: namespacedCookieName(datastream.orgId, 'consent'), value: cookie, maxAge: IDENTITY_COOKIE_MAX_AGE, attrs: { SameSite: 'None', Secure: true } });
      handle.push({ type: 'consent:preferences', payload: [{ ...parsed.consents, metadata: { time } }] });
    }
    return { requestId: opts.requestId, handle, ...(warnings.length ? { warnings } : {}) };
  }

  /** Ingests the consents as a profile record keyed by the ECID (and the identities the page sent). */
  private async storeConsent(
    sandboxId: string,
    datastream: Datastream,
    ecid: string,
    identityMap: Record<string, unknown> | undefined,
    consents: XdmConsents,
    warnings: EdgeWarning[],
  ): Promise<void> {
    if (!datastream.profileDatasetId) {
      warnings.push({ code: 'CONSENT_NOT_STORED', title: 'Consent not stored', detail: `datastream ${datastream.id} has no profileDatasetId`, report: {} });
      return;
    }
    // The page's other identities join the profile; the ECID is the primary one.
    const map: Record<string, unknown> = {};
    for (const [ns, ids] of Object.entries(identityMap ?? {})) {
      if (namespaceKey(ns) === 'ecid' || !Array.isArray(ids)) continue;
      map[ns] = ids.map((i: unknown) => (typeof i === 'object' && i !== null ? { ...(i as Record<string, unknown>), primary: false } : i));
    }
    map['ECID'] = [{ id: ecid, primary: true }];
    const [result] = await this.deps.ingestion.ingest(sandboxId, datastream.profileDatasetId, [{ identityMap: map, consents }], 'edge');
    // The next request of this visitor must read the new consent, not wait for the change feed.
    if (result?.status === 'accepted' && result.profileId) this.deps.segmentation.forget(sandboxId, result.profileId);
    if (result && result.status !== 'accepted') {
      throw new EdgeError('MALFORMED_REQUEST', `consent not stored: ${result.message}`, result.details.map((d) => ({ path: d.path, message: d.message })));
    }
  }

  /** identity:result, the cookies the SDK keeps (identity, cluster) and the location hint. */
  private identityHandles(datastream: Datastream, ecid: string, region: string | undefined): EdgeHandle[] {
    const hint = region ?? DEFAULT_LOCATION_HINT;
    const attrs = { SameSite: 'None', Secure: true } as const;
    return [
      { type: 'identity:result', payload: [{ id: ecid, namespace: { code: 'ECID' } }] },
      {
        type: 'state:store',
        payload: [
          { key: identityCookieName(datastream.orgId), value: encodeIdentityCookie(ecid), maxAge: IDENTITY_COOKIE_MAX_AGE, attrs },
          { key: namespacedCookieName(datastream.orgId, 'cluster'), value: hint, maxAge: LOCATION_HINT_TTL, attrs },
        ],
      },
      { type: 'locationHint:result', payload: [{ scope: 'EdgeNetwork', hint, ttlSeconds: LOCATION_HINT_TTL }] },
    ];
  }

  /**
   * What the profile's stored consents allow (merged over its profile-enabled datasets). The
   * fragments come from the segmentation engine's view of the profile when it holds them
   * (dropped by any profile write the change feed brings, and by set-consent at once).
   */
  private async consentOf(sandboxId: string, profileId: string): Promise<{ collect: boolean; personalize: boolean }> {
    const [fragments, enabled] = await Promise.all([this.deps.segmentation.fragmentsOf(sandboxId, profileId), this.deps.catalog.profileEnabledIds(sandboxId)]);
    // A view hands out the same fragment list until the profile changes: read once per list.
    const derived = derivedOf(fragments);
    const known = derived.consent;
    if (known?.enabled === enabled) return { ...known.consent };
    // Only `consents` is read: merging just the fragments that carry it gives the same value.
    const withConsents = fragments.filter((f) => enabled.has(f.datasetId) && f.attributes['consents'] !== undefined);
    const consent = withConsents.length ? consentOfProfile(mergeFragments(withConsents, DEFAULT_MERGE_POLICY)) : { collect: true, personalize: true };
    derived.consent = { enabled, consent };
    return { ...consent };
  }

  /** The visitor's ECID: from the events, else the identity cookie, else a new one. */
  private settleEcid(datastream: Datastream, body: EdgeRequestBody): { id: string; minted: boolean } {
    // The events' identity maps, then the request's (`xdm.identityMap` of interact, `identityMap` of set-consent).
    const { events } = body;
    for (let i = 0; i < events.length + 2; i++) {
      const map = i < events.length ? events[i]!.xdm['identityMap'] : i === events.length ? body.xdm?.identityMap : body.identityMap;
      if (map === undefined) continue;
      if (typeof map !== 'object' || map === null || Array.isArray(map)) {
        throw new EdgeError('MALFORMED_REQUEST', 'identityMap must be an object of namespace → [{id}]', [{ path: identityMapPath(i, events.length), message: 'not an object' }]);
      }
      for (const ns in map) {
        if (!Object.prototype.hasOwnProperty.call(map, ns) || namespaceKey(ns) !== 'ecid') continue;
        const ids = (map as Record<string, unknown>)[ns];
        const first: unknown = Array.isArray(ids) ? ids[0] : undefined;
        const id = typeof first === 'object' && first !== null ? (first as { id?: unknown }).id : undefined;
        if (typeof id !== 'string' || !isEcid(id)) {
          throw new EdgeError('INVALID_ECID', 'an ECID is exactly 38 digits', [{ path: `${identityMapPath(i, events.length)}.${ns}.0.id`, message: 'not 38 digits' }]);
        }
        return { id, minted: false };
      }
    }
    const cookieName = identityCookieName(datastream.orgId);
    const cookie = body.meta?.state?.entries?.find((e) => e.key === cookieName);
    const fromCookie = cookie ? decodeIdentityCookie(cookie.value) : undefined;
    if (fromCookie) return { id: fromCookie, minted: false };
    return { id: mintEcid(), minted: true };
  }

  /**
   * Ingests the events (ECID added to identityMap, `_id` and `timestamp` defaulted) into the
   * datastream's event dataset; returns the profile of the first accepted event and the change
   * keys of the events stored in it (committed when this returns). An event whose only identity
   * is an ECID minted for this request creates its profile without asking the store for a graph.
   */
  private async ingest(
    sandboxId: string,
    datastream: Datastream,
    events: readonly EdgeEvent[],
    { id: ecid, minted: mintedEcid }: { id: string; minted: boolean },
    warnings: EdgeWarning[],
  ): Promise<IngestedEvents | undefined> {
    const datasetId = datastream.eventDatasetId;
    if (!datasetId || !events.length) return undefined;
    let timestamp: string | undefined;
    const minted = new Set<string>();
    const records = events.map((e) => {
      const map = { ...((e.xdm['identityMap'] as Record<string, unknown> | undefined) ?? {}) };
      if (!Object.keys(map).some((ns) => namespaceKey(ns) === 'ecid')) map['ECID'] = [{ id: ecid }];
      // Ids the edge mints are time-ordered (UUIDv7): each new event's entry then lands at the
      // end of the events' primary-key index, not on a random page that the group commit has
      // to write out (and the checkpoint again) for that one row.
      // The request's own objects, completed in place (a copy of each event cost more than the rest of this).
      const xdm = e.xdm;
      if (xdm['_id'] === undefined) minted.add((xdm['_id'] = timeOrderedUuid()));
      xdm['timestamp'] ??= timestamp ??= new Date(this.deps.now()).toISOString();
      xdm['identityMap'] = map;
      return xdm;
    });
    let results;
    try {
      results = await this.deps.ingestion.ingest(sandboxId, datasetId, records, 'edge', {
        mintedIds: minted,
        ...(mintedEcid ? { mintedIdentities: new Set([identityKey({ ns: namespaceKey('ECID'), id: ecid })]) } : {}),
      });
    } catch (err) {
      // A datastream whose dataset was removed still answers lookups; the owner sees the warning.
      this.deps.log.warn({ err, sandboxId, datastreamId: datastream.id }, 'edge ingestion failed');
      warnings.push({ code: 'INGESTION_UNAVAILABLE', title: 'Events not stored', detail: (err as Error).message, report: {} });
      return undefined;
    }
    let profileId: string | undefined;
    const keys: string[] = [];
    for (const r of results) {
      if (r.status === 'accepted') {
        profileId ??= r.profileId;
        const id = records[r.index]?.['_id'];
        if (r.profileId === profileId && !r.duplicate && typeof id === 'string') keys.push(eventChangeKey(datasetId, id));
      } else {
        warnings.push({
          code: 'EVENT_REJECTED',
          title: 'Event not stored',
          detail: r.message,
          report: { eventIndex: r.index, details: r.details.map((d) => ({ path: d.path, message: d.message })) },
        });
      }
    }
    return profileId === undefined ? undefined : { profileId, keys };
  }

  /** Seed 000's entries: per profile-lookup connection of the datastream, its mapped audiences the profile is in. */
  private async profileLookups(
    sandboxId: string,
    connections: readonly LookupConnection[],
    profileId: string | undefined,
    personalize: boolean,
    evaluated: ReadonlyMap<string, Membership> | undefined,
  ): Promise<Extract<EdgeHandle, { type: 'activation:pull' }>['payload']> {
    if (!connections.length) return [];
    // None when the visitor refused personalization (consents.personalize.content). A profile is
    // in far fewer audiences than a connection maps: those are picked, in id order (sorted once
    // for every connection).
    const list = profileId && personalize ? (await this.audiencesOf(sandboxId, profileId, evaluated)).sort() : [];
    return connections.map((c) => {
      const segments: Array<{ id: string }> = [];
      for (const id of list) if (c.mapped.has(id)) segments.push({ id });
      return { type: 'profileLookup' as const, destinationId: c.connectionId, alias: c.alias, segments };
    });
  }

  /**
   * Audiences the profile is in (realized or existing): as the evaluation just left them, else as
   * stored. Each once: both hold one membership per audience.
   */
  private async audiencesOf(sandboxId: string, profileId: string, evaluated: ReadonlyMap<string, Membership> | undefined): Promise<string[]> {
    const list = evaluated?.values() ?? (await this.deps.store.memberships(sandboxId, [profileId])).get(profileId) ?? [];
    const inside: string[] = [];
    for (const m of list) if (m.status === 'realized' || m.status === 'existing') inside.push(m.audienceId);
    return inside;
  }

  /**
   * The syncs to fire now: a URL sync at most once per `ttlMinutes` per browser. The edge keeps
   * when each may fire again in the `kndctr_<org>_syncs` cookie it asks the SDK to store (the
   * Adobe Web SDK fires every `activation:push` it gets, so the TTL is the edge's to keep).
   */
  private dueSyncs(datastream: Datastream, ecid: string, body: EdgeRequestBody, handle: EdgeHandle[]): Extract<EdgeHandle, { type: 'activation:push' }>['payload'] {
    const name = namespacedCookieName(datastream.orgId, 'syncs');
    const now = Math.floor(this.deps.now() / 1000);
    const fired = decodeSyncState(body.meta?.state?.entries?.find((e) => e.key === name)?.value, now);
    const due = this.syncs(datastream, ecid).filter((s) => s.type !== 'url' || fired[s.id] === undefined);
    let changed = false;
    for (const s of due) {
      if (s.type === 'url' && s.spec.ttlMinutes > 0) {
        fired[s.id] = now + s.spec.ttlMinutes * 60;
        changed = true;
      }
    }
    const store = handle.find((h): h is Extract<EdgeHandle, { type: 'state:store' }> => h.type === 'state:store');
    if (changed && store) {
      const maxAge = Math.max(...Object.values(fired)) - now;
      store.payload.push({ key: name, value: encodeSyncState(fired), maxAge, attrs: { SameSite: 'None', Secure: true } });
    }
    return due;
  }

  /** The datastream's syncs for this visitor, `{ECID}` replaced (URL-encoded in URLs). */
  private syncs(datastream: Datastream, ecid: string): Extract<EdgeHandle, { type: 'activation:push' }>['payload'] {
    return datastream.urlSyncs.map((s) =>
      s.type === 'url'
        ? { type: 'url' as const, id: s.id, spec: { url: s.url.replaceAll(ECID_PLACEHOLDER, encodeURIComponent(ecid)), hideReferrer: s.hideReferrer, ttlMinutes: s.ttlMinutes } }
        : {
            type: 'cookie' as const,
            id: s.id,
            spec: { name: s.name, value: s.value.replaceAll(ECID_PLACEHOLDER, ecid), ...(s.domain ? { domain: s.domain } : {}), ttlDays: s.ttlDays },
          },
    );
  }
}

/** Where settleEcid's `i`-th identity map is in a request of `events` events (named only for an error). */
function identityMapPath(i: number, events: number): string {
  return i < events ? `events.${i}.xdm.identityMap` : i === events ? 'xdm.identityMap' : 'identityMap';
}
