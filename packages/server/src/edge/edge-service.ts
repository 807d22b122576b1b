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
 */
import { DEFAULT_MERGE_POLICY, mergeFragments, namespaceKey } from '@audient/core';
import type { Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Connections } from '../activation/connections.js';
import type { Dataflows } from '../activation/dataflows.js';
import { newUuid } from '../ids.js';
import type { Catalog } from '../services/catalog.js';
import type { IngestionService } from '../services/ingestion.js';
import type { SegmentationEngine } from '../services/segmentation.js';
import { ECID_PLACEHOLDER, type Datastream, type Datastreams } from './datastreams.js';
import { decodeIdentityCookie, encodeIdentityCookie, identityCookieName, isEcid, mintEcid } from './ecid.js';
import { EdgeError } from './edge-errors.js';

/** The destination whose connections answer profile lookups. */
const PROFILE_LOOKUP_DESTINATION = 'custom-personalization';
const EDGE_ONLY = new Set(['edge'] as const);
/** How long the browser keeps the identity cookie, seconds (395 days, as Adobe's edge). */
const IDENTITY_COOKIE_MAX_AGE = 34_128_000;

/** One event of a request: XDM (with identityMap) and free-form data that is not ingested. */
export interface EdgeEvent {
  xdm: Record<string, unknown>;
  data?: Record<string, unknown> | undefined;
}

/** An interact / collect request body. */
export interface EdgeRequestBody {
  events: EdgeEvent[];
  meta?: { state?: { entries?: Array<{ key: string; value: string }> | undefined } | undefined } | undefined;
}

/** One handle of the answer. */
export type EdgeHandle =
  | { type: 'identity:result'; payload: Array<{ id: string; namespace: { code: 'ECID' } }> }
  | { type: 'state:store'; payload: Array<{ key: string; value: string; maxAge: number; attrs: { SameSite: 'None'; Secure: true } }> }
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
  code: 'EVENT_REJECTED' | 'INGESTION_UNAVAILABLE';
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
  constructor(
    private readonly deps: {
      store: Store;
      catalog: Catalog;
      ingestion: IngestionService;
      segmentation: SegmentationEngine;
      connections: Connections;
      dataflows: Dataflows;
      datastreams: Datastreams;
      log: Logger;
      now: () => number;
    },
  ) {}

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

  /** Handles one interact (answer) or collect (no answer) request. */
  async handle(
    target: { sandboxId: string; datastream: Datastream },
    body: EdgeRequestBody,
    opts: { requestId: string; mode: 'interact' | 'collect' },
  ): Promise<InteractResponse> {
    const { sandboxId, datastream } = target;
    const ecid = this.settleEcid(datastream, body);
    const warnings: EdgeWarning[] = [];
    let profileId = await this.ingest(sandboxId, datastream, body.events, ecid.id, warnings);
    profileId ??= await this.deps.store.findProfileId(sandboxId, { ns: namespaceKey('ECID'), id: ecid.id });
    if (opts.mode === 'collect') return { requestId: opts.requestId, handle: [] };

    if (profileId) await this.deps.segmentation.evaluate(sandboxId, [profileId], { methods: EDGE_ONLY });
    const handle: EdgeHandle[] = [
      { type: 'identity:result', payload: [{ id: ecid.id, namespace: { code: 'ECID' } }] },
      {
        type: 'state:store',
        payload: [
          {
            key: identityCookieName(datastream.orgId),
            value: encodeIdentityCookie(ecid.id),
            maxAge: IDENTITY_COOKIE_MAX_AGE,
            attrs: { SameSite: 'None', Secure: true },
          },
        ],
      },
    ];
    const lookups = await this.profileLookups(sandboxId, datastream, profileId);
    if (lookups.length) handle.push({ type: 'activation:pull', payload: lookups });
    if (datastream.urlSyncs.length) handle.push({ type: 'activation:push', payload: this.syncs(datastream, ecid.id) });
    return { requestId: opts.requestId, handle, ...(warnings.length ? { warnings } : {}) };
  }

  /** The visitor's ECID: from the events, else the identity cookie, else a new one. */
  private settleEcid(datastream: Datastream, body: EdgeRequestBody): { id: string; minted: boolean } {
    for (const [i, event] of body.events.entries()) {
      const map = event.xdm['identityMap'];
      if (map === undefined) continue;
      if (typeof map !== 'object' || map === null || Array.isArray(map)) {
        throw new EdgeError('MALFORMED_REQUEST', 'identityMap must be an object of namespace → [{id}]', [{ path: `events.${i}.xdm.identityMap`, message: 'not an object' }]);
      }
      for (const [ns, ids] of Object.entries(map)) {
        if (namespaceKey(ns) !== 'ecid') continue;
        const first: unknown = Array.isArray(ids) ? ids[0] : undefined;
        const id = typeof first === 'object' && first !== null ? (first as { id?: unknown }).id : undefined;
        if (typeof id !== 'string' || !isEcid(id)) {
          throw new EdgeError('INVALID_ECID', 'an ECID is exactly 38 digits', [{ path: `events.${i}.xdm.identityMap.${ns}.0.id`, message: 'not 38 digits' }]);
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
   * datastream's event dataset; returns the profile of the first accepted event.
   */
  private async ingest(
    sandboxId: string,
    datastream: Datastream,
    events: readonly EdgeEvent[],
    ecid: string,
    warnings: EdgeWarning[],
  ): Promise<string | undefined> {
    if (!datastream.eventDatasetId || !events.length) return undefined;
    const timestamp = new Date(this.deps.now()).toISOString();
    const records = events.map((e) => {
      const map = { ...((e.xdm['identityMap'] as Record<string, unknown> | undefined) ?? {}) };
      if (!Object.keys(map).some((ns) => namespaceKey(ns) === 'ecid')) map['ECID'] = [{ id: ecid }];
      return { ...e.xdm, _id: e.xdm['_id'] ?? newUuid(), timestamp: e.xdm['timestamp'] ?? timestamp, identityMap: map };
    });
    let results;
    try {
      results = await this.deps.ingestion.ingest(sandboxId, datastream.eventDatasetId, records, 'edge');
    } catch (err) {
      // A datastream whose dataset was removed still answers lookups; the owner sees the warning.
      this.deps.log.warn({ err, sandboxId, datastreamId: datastream.id }, 'edge ingestion failed');
      warnings.push({ code: 'INGESTION_UNAVAILABLE', title: 'Events not stored', detail: (err as Error).message, report: {} });
      return undefined;
    }
    let profileId: string | undefined;
    for (const r of results) {
      if (r.status === 'accepted') profileId ??= r.profileId;
      else {
        warnings.push({
          code: 'EVENT_REJECTED',
          title: 'Event not stored',
          detail: r.message,
          report: { eventIndex: r.index, details: r.details.map((d) => ({ path: d.path, message: d.message })) },
        });
      }
    }
    return profileId;
  }

  /** Seed 000's entries: per profile-lookup connection of the datastream, its mapped audiences the profile is in. */
  private async profileLookups(
    sandboxId: string,
    datastream: Datastream,
    profileId: string | undefined,
  ): Promise<Extract<EdgeHandle, { type: 'activation:pull' }>['payload']> {
    const connections = (await this.deps.connections.list(sandboxId)).filter(
      (c) => c.destinationId === PROFILE_LOOKUP_DESTINATION && c.settings['datastreamId'] === datastream.id,
    );
    if (!connections.length) return [];
    const flows = (await this.deps.dataflows.list(sandboxId)).filter((f) => f.status === 'active');
    const inside = profileId ? await this.audiencesOf(sandboxId, profileId) : new Set<string>();
    return connections.map((c) => {
      const mapped = new Set(flows.filter((f) => f.connectionId === c.id).flatMap((f) => f.audienceIds));
      return {
        type: 'profileLookup' as const,
        destinationId: c.id,
        alias: String(c.settings['integrationAlias']),
        segments: [...mapped].filter((id) => inside.has(id)).sort().map((id) => ({ id })),
      };
    });
  }

  /** Audiences the profile is in (realized or existing); none when it refused personalization. */
  private async audiencesOf(sandboxId: string, profileId: string): Promise<Set<string>> {
    const [memberships, fragments, datasets] = await Promise.all([
      this.deps.store.memberships(sandboxId, [profileId]),
      this.deps.store.profileFragments(sandboxId, profileId),
      this.deps.catalog.listDatasets(sandboxId),
    ]);
    const enabled = new Set(datasets.filter((d) => d.profileEnabled).map((d) => d.id));
    const profile = mergeFragments(fragments.filter((f) => enabled.has(f.datasetId)), DEFAULT_MERGE_POLICY);
    if (personalizeConsent(profile) === 'n') return new Set();
    return new Set((memberships.get(profileId) ?? []).filter((m) => m.status === 'realized' || m.status === 'existing').map((m) => m.audienceId));
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

/** `consents.personalize.content.val` of a merged profile, if any. */
function personalizeConsent(profile: Record<string, unknown>): unknown {
  const consents = profile['consents'] as { personalize?: { content?: { val?: unknown } } } | undefined;
  return consents?.personalize?.content?.val;
}
