/**
 * Plans the storage writes for a batch of prepared records: identity resolution (new graphs,
 * links, graph merges, eviction past the size limit), fragment upserts, idempotent event inserts
 * and one change per applied record. Pure: storage reads a snapshot, this decides, storage writes.
 * Records are applied in order, so a later record in the batch sees what earlier ones linked.
 */
import type { IdentityRef } from '../identity/extract.js';
import { planEviction, type GraphMember } from '../identity/graph.js';
import type { NamespaceType } from '../identity/namespaces.js';
import { deepMergeCopy } from '../profile/merge.js';
import type { PreparedRecord } from './prepare.js';

/** An identity as storage holds it. */
export interface StoredIdentity extends GraphMember {
  graphId: string;
}

/** A stored fragment key and content. */
export interface StoredFragment {
  datasetId: string;
  ns: string;
  id: string;
  graphId: string;
  attributes: Record<string, unknown>;
  timestamp: number;
}

/** What storage knew before the batch, for every identity, graph and fragment the batch touches. */
export interface IngestSnapshot {
  /** Every member of every graph that holds one of the batch's identities. */
  members: readonly StoredIdentity[];
  /** Existing fragments keyed by `fragmentKey()`. */
  fragments: ReadonlyMap<string, StoredFragment>;
  /** Event ids (`datasetId\0eventId`) already stored. */
  existingEvents: ReadonlySet<string>;
}

/** One record of the batch, with the dataset it goes to. */
export interface BatchRecord {
  datasetId: string;
  prepared: Extract<PreparedRecord, { ok: true }>;
  /**
   * The event's id was minted for it by the ingesting service (the edge's UUIDv7 for an event
   * sent without `_id`): no stored event can have it, so the store is not asked.
   */
  mintedId?: boolean;
  /**
   * Every identity of the record was minted for it by the ingesting service (the edge's ECID for
   * a visitor that sent none): no stored graph can hold one, so the store is not asked.
   */
  mintedIdentities?: boolean;
}

/** A change to one profile, published on the change feed. */
export interface ProfileChange {
  profileId: string;
  type: 'profile' | 'event' | 'merge' | 'delete';
  datasetId?: string;
  eventId?: string;
  eventTime?: number;
  /** Identities this record added to the profile's graph. */
  identitiesAdded?: IdentityRef[];
  /** Identities evicted from the graph by the size limit. */
  identitiesEvicted?: IdentityRef[];
  /** Leaf paths of attributes this record wrote. */
  attributePaths?: string[];
  /** For merges: the profile ids absorbed into this one. */
  mergedFrom?: string[];
}

/** The writes storage applies atomically. */
export interface WritePlan {
  newIdentities: StoredIdentity[];
  touchedIdentities: Array<{ ns: string; id: string; lastSeen: number }>;
  evictedIdentities: IdentityRef[];
  /** Repoint everything of graph `from` to graph `to`, in order. */
  graphMerges: Array<{ from: string; to: string }>;
  fragments: StoredFragment[];
  /** `bodyJson`, when given, is `body` as JSON text (stores may write it instead of serialising again). */
  events: Array<{ datasetId: string; eventId: string; graphId: string; timestamp: number; body: Record<string, unknown>; bodyJson?: string | undefined }>;
  changes: ProfileChange[];
  /** Per input record, in order: the profile it landed in, and whether it was a duplicate event. */
  results: Array<{ profileId: string; duplicate: boolean }>;
  /**
   * Profiles this plan creates whole: a graph none of whose identities was known, that took in no
   * other graph and was taken in by none. Once applied, such a profile holds exactly what the plan
   * writes to it (its identities, events and fragments), and no membership: nothing could name it
   * before. Readers that keep profiles in memory can start from that instead of reading it back.
   */
  createdGraphs: string[];
}

/** Stable key of an identity. */
export const identityKey = (i: IdentityRef): string => `${i.ns}\u0000${i.id}`;
/** Stable key of a fragment. */
export const fragmentKey = (datasetId: string, i: IdentityRef): string => `${datasetId}\u0000${i.ns}\u0000${i.id}`;
/** Stable key of an event. */
export const eventKey = (datasetId: string, eventId: string): string => `${datasetId}\u0000${eventId}`;

/** Leaf paths of a JSON object (arrays are leaves), excluding identityMap. */
export function attributeLeafPaths(obj: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (!prefix && k === 'identityMap') continue;
    const p = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(...attributeLeafPaths(v as Record<string, unknown>, p));
    else out.push(p);
  }
  return out;
}

/** Options for planning. */
export interface PlanOptions {
  now: number;
  maxGraphSize: number;
  namespaceType: (ns: string) => NamespaceType;
  newId: () => string;
  /**
   * A known identity's last-seen time is refreshed only when it is at least this much older than
   * `now` (0, the default: always). Each refresh rewrites a row on a random page of the identity
   * index, so a coarser time saves most of those writes for identities seen again and again;
   * eviction then orders identities seen within this window of each other by the stored time.
   */
  lastSeenResolutionMs?: number;
}

/** Decides every write for `records` given what storage knew. */
export function planIngest(records: readonly BatchRecord[], snapshot: IngestSnapshot, opts: PlanOptions): WritePlan {
  const graphOf = new Map<string, string>();
  const membersOf = new Map<string, Map<string, StoredIdentity>>();
  for (const m of snapshot.members) {
    const k = identityKey(m);
    graphOf.set(k, m.graphId);
    let g = membersOf.get(m.graphId);
    if (!g) membersOf.set(m.graphId, (g = new Map()));
    g.set(k, { ...m });
  }
  const fragments = new Map(snapshot.fragments);
  const seenEvents = new Set(snapshot.existingEvents);
  const plan: WritePlan = {
    newIdentities: [], touchedIdentities: [], evictedIdentities: [], graphMerges: [],
    fragments: [], events: [], changes: [], results: [], createdGraphs: [],
  };
  const created = new Set<string>();
  const newKeys = new Set<string>();
  const touched = new Map<string, { ns: string; id: string; lastSeen: number }>();
  const resolution = opts.lastSeenResolutionMs ?? 0;

  for (const { datasetId, prepared } of records) {
    const now = opts.now;
    const evKey = prepared.kind === 'event' ? eventKey(datasetId, prepared.eventId) : '';
    if (prepared.kind === 'event' && seenEvents.has(evKey)) {
      const known = graphOf.get(identityKey(prepared.primary));
      plan.results.push({ profileId: known ?? '', duplicate: true });
      continue;
    }
    // 1. Which graphs do this record's identities already belong to?
    const keys = prepared.identities.map(identityKey);
    const graphs: string[] = [];
    for (const k of keys) {
      const g = graphOf.get(k);
      if (g && !graphs.includes(g)) graphs.push(g);
    }
    let graphId: string;
    const mergedFrom: string[] = [];
    if (graphs.length === 0) {
      graphId = opts.newId();
      membersOf.set(graphId, new Map());
      created.add(graphId);
    } else {
      if (graphs.length > 1) graphs.sort((a, b) => (membersOf.get(b)?.size ?? 0) - (membersOf.get(a)?.size ?? 0) || a.localeCompare(b));
      graphId = graphs[0]!;
      for (const loser of graphs.slice(1)) {
        const target = membersOf.get(graphId)!;
        for (const [k, m] of membersOf.get(loser) ?? []) {
          target.set(k, { ...m, graphId });
          graphOf.set(k, graphId);
        }
        membersOf.delete(loser);
        for (const [k, f] of fragments) if (f.graphId === loser) fragments.set(k, { ...f, graphId });
        plan.graphMerges.push({ from: loser, to: graphId });
        mergedFrom.push(loser);
      }
    }
    // 2. Link new identities, refresh known ones, evict past the limit.
    const members = membersOf.get(graphId)!;
    const added: IdentityRef[] = [];
    for (let n = 0; n < keys.length; n++) {
      const i = prepared.identities[n]!;
      const k = keys[n]!;
      const existing = members.get(k);
      if (existing) {
        if (resolution > 0 && now - existing.lastSeen < resolution) continue;
        existing.lastSeen = now;
        if (!newKeys.has(k)) touched.set(k, { ns: i.ns, id: i.id, lastSeen: now });
      } else {
        const m: StoredIdentity = { ns: i.ns, id: i.id, type: opts.namespaceType(i.ns), lastSeen: now, graphId };
        members.set(k, m);
        graphOf.set(k, graphId);
        newKeys.add(k);
        added.push({ ns: i.ns, id: i.id });
      }
    }
    // Eviction only once the graph is past its limit (the common case builds nothing).
    const evicted = members.size > opts.maxGraphSize ? planEviction([...members.values()], opts.maxGraphSize, new Set(keys)) : [];
    for (const e of evicted) {
      const k = identityKey(e);
      members.delete(k);
      graphOf.delete(k);
      touched.delete(k);
      if (newKeys.delete(k)) continue;
      plan.evictedIdentities.push({ ns: e.ns, id: e.id });
    }
    // 3. The record itself.
    const change: ProfileChange = { profileId: graphId, type: prepared.kind, datasetId };
    if (added.length) change.identitiesAdded = added;
    if (evicted.length) change.identitiesEvicted = evicted.map((e) => ({ ns: e.ns, id: e.id }));
    if (mergedFrom.length) plan.changes.push({ profileId: graphId, type: 'merge', mergedFrom });
    if (prepared.kind === 'event') {
      seenEvents.add(evKey);
      plan.events.push({ datasetId, eventId: prepared.eventId, graphId, timestamp: prepared.timestamp, body: prepared.body, bodyJson: prepared.bodyJson });
      change.eventId = prepared.eventId;
      change.eventTime = prepared.timestamp;
    } else {
      const fk = fragmentKey(datasetId, prepared.primary);
      const before = fragments.get(fk);
      const attrs = prepared.attributes;
      const merged = deepMergeCopy(before ? deepMergeCopy({}, before.attributes) : {}, attrs, 'identityMap');
      const timestamp = Math.max(prepared.sourceTime ?? now, before?.timestamp ?? -Infinity);
      const frag: StoredFragment = { datasetId, ns: prepared.primary.ns, id: prepared.primary.id, graphId, attributes: merged, timestamp };
      fragments.set(fk, frag);
      change.attributePaths = attributeLeafPaths(attrs);
    }
    plan.changes.push(change);
    plan.results.push({ profileId: graphId, duplicate: false });
  }

  // Final state of every new identity and fragment (a later merge may have moved them).
  for (const k of newKeys) {
    const g = graphOf.get(k);
    const m = g ? membersOf.get(g)?.get(k) : undefined;
    if (m && g) plan.newIdentities.push({ ...m, graphId: g });
  }
  plan.touchedIdentities = [...touched.values()];
  const written = new Set<string>();
  for (const r of records) {
    if (r.prepared.kind === 'profile') written.add(fragmentKey(r.datasetId, r.prepared.primary));
  }
  for (const k of written) {
    const f = fragments.get(k);
    if (f) plan.fragments.push(f);
  }
  // Changes and results name the graph each profile finally lives in.
  const finalGraph = new Map<string, string>();
  for (const { from, to } of plan.graphMerges) finalGraph.set(from, to);
  const resolve = (g: string): string => {
    let cur = g;
    for (let n = 0; finalGraph.has(cur) && n < 1000; n++) cur = finalGraph.get(cur)!;
    return cur;
  };
  for (const c of plan.changes) c.profileId = resolve(c.profileId);
  for (const r of plan.results) if (r.profileId) r.profileId = resolve(r.profileId);
  for (const e of plan.events) e.graphId = resolve(e.graphId);
  for (const f of plan.fragments) f.graphId = resolve(f.graphId);
  for (const { from, to } of plan.graphMerges) {
    created.delete(from);
    created.delete(to);
  }
  plan.createdGraphs = [...created];
  return plan;
}
