/**
 * Identity-graph rules that do not depend on storage: which identities to evict when a graph
 * would grow past its limit.
 *
 * Rule (documented in docs/identity.md): a graph holds at most `limit` identities. When a link
 * would push it past the limit, identities are evicted until it fits: cookie namespaces first,
 * then device, then person namespaces; within a type, the one seen longest ago first. Identities
 * of the record being ingested are never evicted by it.
 */
import type { NamespaceType } from './namespaces.js';

/** One identity in a graph, with what eviction needs to know. */
export interface GraphMember {
  ns: string;
  id: string;
  type: NamespaceType;
  /** Epoch ms when the identity was last seen in a record. */
  lastSeen: number;
}

const TYPE_RANK: Record<NamespaceType, number> = { cookie: 0, device: 1, person: 2 };

/** The members to evict so that at most `limit` remain; `protect` holds `ns\0id` keys never evicted. */
export function planEviction(members: readonly GraphMember[], limit: number, protect: ReadonlySet<string>): GraphMember[] {
  const excess = members.length - limit;
  if (excess <= 0) return [];
  const candidates = members
    .filter((m) => !protect.has(`${m.ns}\u0000${m.id}`))
    .sort((a, b) => TYPE_RANK[a.type] - TYPE_RANK[b.type] || a.lastSeen - b.lastSeen || a.id.localeCompare(b.id));
  return candidates.slice(0, excess);
}
