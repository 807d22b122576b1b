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
  type IdentityMap,
  type IdentityRef,
  type MergePolicy,
} from '@audient/core';
import type { EventRow, JobRow, Store } from '@audient/storage';
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
    const profileId = await store.findProfileId(sandboxId, identity);
    if (!profileId) throw new AudientError('NOT_FOUND', `no profile has the identity ${identity.ns}:${identity.id}`);
    const [identities, fragments, datasets, memberships] = await Promise.all([
      store.profileIdentities(sandboxId, profileId),
      store.profileFragments(sandboxId, profileId),
      catalog.listDatasets(sandboxId),
      store.memberships(sandboxId, [profileId]),
    ]);
    const enabled = new Set(datasets.filter((d) => d.profileEnabled).map((d) => d.id));
    const limit = Math.min(Math.max(opts.eventsLimit ?? 20, 0), 500);
    const before = opts.eventsCursor ? decodeCursor(opts.eventsCursor) : undefined;
    const rows = limit > 0 ? await store.profileEvents(sandboxId, profileId, { limit: limit + 1, before }) : [];
    const page = rows.slice(0, limit).filter((e) => enabled.has(e.datasetId));
    return {
      profileId,
      attributes: mergeFragments(fragments.filter((f) => enabled.has(f.datasetId)), opts.policy ?? DEFAULT_MERGE_POLICY),
      identityMap: buildIdentityMap(identities),
      segmentMembership: toSegmentMembership(memberships.get(profileId) ?? []),
      events: {
        items: page.map((e) => ({ ...e.body, _dataset: e.datasetId })),
        next: rows.length > limit && rows[limit - 1] ? encodeCursor(rows[limit - 1]!) : undefined,
      },
    };
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
