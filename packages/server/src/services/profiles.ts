/**
 * Unified profiles: looked up by any identity, merged from every fragment of the graph under a
 * merge policy, with the graph's full identity map and recent events; and privacy deletes.
 */
import {
  AudientError,
  DEFAULT_MERGE_POLICY,
  buildIdentityMap,
  mergeFragments,
  namespaceKey,
  normalizeIdentity,
  toSegmentMembership,
  type DatasetDef,
  type IdentityMap,
  type IdentityRef,
  type MergePolicy,
} from '@audient/core';
import type { EventRow, JobRow, ProfileRead, Store } from '@audient/storage';
import type { Catalog } from './catalog.js';
import type { ChangeFeed } from './change-feed.js';
import type { Jobs } from './jobs.js';

/** The unified profile as the API returns it. */
export interface ProfileView {
  profileId: string;
  attributes: Record<string, unknown>;
  identityMap: IdentityMap;
  segmentMembership: ReturnType<typeof toSegmentMembership>;
  events: { items: Array<EventRow['body'] & { _dataset: string }>; next: string | undefined };
}

/** Paging cursor of events: `<timestamp>:<eventId>` base64url-encoded. */
function encodeCursor(e: EventRow): string {
  return Buffer.from(`${e.timestamp}:${e.eventId}`).toString('base64url');
}

function decodeCursor(cursor: string): { timestamp: number; eventId: string } {
  const text = Buffer.from(cursor, 'base64url').toString();
  const sep = text.indexOf(':');
  const timestamp = Number(text.slice(0, sep));
  if (sep < 1 || !Number.isFinite(timestamp)) {
    throw new AudientError('BAD_REQUEST', 'eventsCursor is not a cursor this API returned', [
      { path: 'eventsCursor', reason: 'format', message: 'pass the events.next value of a previous answer' },
    ]);
  }
  return { timestamp, eventId: text.slice(sep + 1) };
}

/** The API view of a profile read; `events` holds up to `limit + 1` rows (one more tells a next page). */
function view(read: ProfileRead, datasets: readonly DatasetDef[], limit: number, policy: MergePolicy | undefined): ProfileView {
  const enabled = new Set<string>();
  for (const d of datasets) if (d.profileEnabled) enabled.add(d.id);
  const rows = read.events;
  const items: ProfileView['events']['items'] = [];
  for (let i = 0; i < rows.length && i < limit; i++) {
    const e = rows[i]!;
    if (!enabled.has(e.datasetId)) continue;
    // The rows are this read's own (parsed for it), so the body is tagged in place, not copied.
    const item = e.body as ProfileView['events']['items'][number];
    item._dataset = e.datasetId;
    items.push(item);
  }
  return {
    profileId: read.profileId,
    attributes: mergeFragments(read.fragments.filter((f) => enabled.has(f.datasetId)), policy ?? DEFAULT_MERGE_POLICY),
    identityMap: buildIdentityMap(read.identities),
    segmentMembership: toSegmentMembership(read.memberships),
    events: { items, next: rows.length > limit && rows[limit - 1] ? encodeCursor(rows[limit - 1]!) : undefined },
  };
}

/** Profile reads and privacy deletes. */
export class ProfileService {
  constructor(private readonly deps: { store: Store; catalog: Catalog; jobs: Jobs; feed: ChangeFeed }) {}

  /** Normalises an identity given by a caller (namespace any case, id as the namespace requires). */
  async identity(sandboxId: string, ns: string, id: string): Promise<IdentityRef> {
    const def = (await this.deps.catalog.namespaces(sandboxId)).get(ns);
    if (!def) {
      throw new AudientError('UNKNOWN_NAMESPACE', `unknown identity namespace ${JSON.stringify(ns)}`, [
        { path: 'ns', reason: 'unknown-namespace', message: 'use a standard namespace or create this one first', received: ns },
      ]);
    }
    const r = normalizeIdentity(def, id);
    if (!r.ok) {
      throw new AudientError('INVALID_IDENTITY', `${def.code}: ${r.reason}`, [{ path: 'id', reason: 'invalid-identity', message: r.reason }]);
    }
    return { ns: namespaceKey(def.code), id: r.id };
  }

  /** The merged profile holding `identity`. */
  async get(
    sandboxId: string,
    identity: IdentityRef,
    opts: { policy?: MergePolicy; eventsLimit?: number; eventsCursor?: string | undefined } = {},
  ): Promise<ProfileView> {
    const { store, catalog } = this.deps;
    const limit = Math.min(Math.max(opts.eventsLimit ?? 20, 0), 500);
    const before = opts.eventsCursor ? decodeCursor(opts.eventsCursor) : undefined;
    const notFound = (): AudientError => new AudientError('NOT_FOUND', `no profile has the identity ${identity.ns}:${identity.id}`);
    if (store.readProfile) {
      // One read of the store for the whole profile.
      const [r, datasets] = await Promise.all([store.readProfile(sandboxId, identity, { eventsLimit: limit > 0 ? limit + 1 : 0, before }), catalog.listDatasets(sandboxId)]);
      if (!r) throw notFound();
      return view(r, datasets, limit, opts.policy);
    }
    const profileId = await store.findProfileId(sandboxId, identity);
    if (!profileId) throw notFound();
    const [identities, fragments, datasets, memberships] = await Promise.all([
      store.profileIdentities(sandboxId, profileId),
      store.profileFragments(sandboxId, profileId),
      catalog.listDatasets(sandboxId),
      store.memberships(sandboxId, [profileId]),
    ]);
    const events = limit > 0 ? await store.profileEvents(sandboxId, profileId, { limit: limit + 1, before }) : [];
    return view({ profileId, identities, fragments, memberships: memberships.get(profileId) ?? [], events }, datasets, limit, opts.policy);
  }

  /** Starts a privacy delete of the person holding `identity`: graph, fragments, events, failed records. */
  async requestDelete(sandboxId: string, identity: IdentityRef): Promise<JobRow> {
    const { store, jobs, feed } = this.deps;
    return jobs.start(sandboxId, 'privacy-delete', { identity }, async () => {
      const profileId = await store.findProfileId(sandboxId, identity);
      const identities = profileId ? await store.profileIdentities(sandboxId, profileId) : [];
      const deleted = profileId
        ? await store.deleteProfile(sandboxId, profileId, Date.now())
        : { identities: 0, fragments: 0, events: 0 };
      const needles = [...new Set([identity.id, ...identities.map((i) => i.id)])];
      const failedRecords = await store.purgeFailedRecords(sandboxId, needles);
      feed.poke();
      return { identity, profileId: profileId ?? null, deleted: { ...deleted, failedRecords } };
    });
  }
}
