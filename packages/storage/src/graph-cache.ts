/**
 * Identity graphs a store has read, kept in memory: a returning visitor's ingestion then resolves
 * its identities without reading the graph again (on SQLite that read was about a tenth of an
 * edge request's CPU; on PostgreSQL it is a round trip per ingestion group). The store drops a
 * graph here whenever it writes its identities, and everything when another connection may have
 * written identities (SQLite's `data_version`, PostgreSQL's graph epoch) or a transaction rolled
 * back, so a graph held here is always the committed one.
 */
import type { StoredIdentity, WritePlan } from '@audient/core';

const key = (sandboxId: string, ns: string, id: string): string => `${sandboxId}\u0000${ns}\u0000${id}`;
const graphKey = (sandboxId: string, graphId: string): string => `${sandboxId}\u0000${graphId}`;

/** Graphs by member identity, bounded (past `max` identities everything is dropped and refilled by reads). */
export class GraphCache {
  /** Identity → every member of its graph (one array shared by the graph's members). */
  private readonly byIdentity = new Map<string, readonly StoredIdentity[]>();
  /** Graph → the identity keys it is held under. */
  private readonly keysOf = new Map<string, string[]>();

  constructor(private readonly max: number) {}

  /** The members of the graph holding this identity, when held. */
  get(sandboxId: string, ns: string, id: string): readonly StoredIdentity[] | undefined {
    return this.byIdentity.get(key(sandboxId, ns, id));
  }

  /** Holds the members of one graph (as read, all with the same graphId), under each of them. */
  put(sandboxId: string, members: readonly StoredIdentity[]): void {
    const first = members[0];
    if (!first) return;
    if (this.byIdentity.size + members.length > this.max) this.clear();
    this.dropGraph(sandboxId, first.graphId);
    const keys = members.map((m) => key(sandboxId, m.ns, m.id));
    for (const k of keys) this.byIdentity.set(k, members);
    this.keysOf.set(graphKey(sandboxId, first.graphId), keys);
  }

  /** Forgets a graph (its identities were written). */
  dropGraph(sandboxId: string, graphId: string): void {
    const g = graphKey(sandboxId, graphId);
    const keys = this.keysOf.get(g);
    if (!keys) return;
    for (const k of keys) this.byIdentity.delete(k);
    this.keysOf.delete(g);
  }

  /** Forgets the graph holding this identity. */
  dropGraphOf(sandboxId: string, ns: string, id: string): void {
    const graphId = this.byIdentity.get(key(sandboxId, ns, id))?.[0]?.graphId;
    if (graphId !== undefined) this.dropGraph(sandboxId, graphId);
  }

  /** Records an identity's new last-seen time in the graph held (a copy of the graph: readers may hold the old one). */
  touch(sandboxId: string, ns: string, id: string, lastSeen: number): void {
    const members = this.byIdentity.get(key(sandboxId, ns, id));
    if (!members) return;
    this.put(sandboxId, members.map((m) => (m.ns === ns && m.id === id ? { ...m, lastSeen } : m)));
  }

  /** Follows a plan's identity writes: the graphs they change are forgotten, last-seen times recorded. */
  written(sandboxId: string, plan: Pick<WritePlan, 'graphMerges' | 'evictedIdentities' | 'newIdentities' | 'touchedIdentities'>): void {
    for (const { from, to } of plan.graphMerges) {
      this.dropGraph(sandboxId, from);
      this.dropGraph(sandboxId, to);
    }
    for (const e of plan.evictedIdentities) this.dropGraphOf(sandboxId, e.ns, e.id);
    for (const i of plan.newIdentities) this.dropGraph(sandboxId, i.graphId);
    for (const t of plan.touchedIdentities) this.touch(sandboxId, t.ns, t.id, t.lastSeen);
  }

  /** Forgets everything. */
  clear(): void {
    this.byIdentity.clear();
    this.keysOf.clear();
  }

  /** Identities held (for tests). */
  get size(): number {
    return this.byIdentity.size;
  }
}
