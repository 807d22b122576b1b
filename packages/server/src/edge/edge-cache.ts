/**
 * The edge configuration of each sandbox, in memory: what an interact request needs besides the
 * visitor's profile — per datastream its profile-lookup connections with the audiences their
 * active dataflows map, and the sandbox's compiled edge audiences.
 * Reading those from the store on every request cost more than the rest of the request.
 *
 * An entry is dropped when anything it was built from changes through this process (connections,
 * dataflows, datastreams and audiences call `invalidate`; a schema change recompiles audiences)
 * and is rebuilt after `ttlMs` in any case, so a change made by another process over the same
 * store shows within that time, as the catalog's dataset cache does.
 */
import type { EvaluationMethod } from '@audient/core';
import type { Connections } from '../activation/connections.js';
import type { Dataflows } from '../activation/dataflows.js';
import type { AudienceService, CompiledEntry } from '../services/audiences.js';
import { SandboxCache } from '../sandbox-cache.js';

/** The destination whose connections answer profile lookups. */
export const PROFILE_LOOKUP_DESTINATION = 'custom-personalization';

/** One profile-lookup connection of a datastream and the audiences mapped to it (sorted). */
export interface LookupConnection {
  connectionId: string;
  alias: string;
  audienceIds: readonly string[];
  /** The same audiences as a set. */
  mapped: ReadonlySet<string>;
}

/** The edge configuration of one sandbox. */
export interface SandboxEdgeConfig {
  /** Profile-lookup connections of a datastream, in connection order; none: []. */
  lookups(datastreamId: string): readonly LookupConnection[];
  /** Compiled audiences evaluated within the request (method edge), dependencies first. */
  edgeAudiences: readonly CompiledEntry[];
}

const EDGE: EvaluationMethod = 'edge';

/** Per-sandbox edge configuration, cached with invalidation. */
export class EdgeConfigCache {
  private readonly entries: SandboxCache<SandboxEdgeConfig>;
  /** The edge audiences last filtered from each compiled set: the same array while the set is the same. */
  private readonly edgeOf = new WeakMap<readonly CompiledEntry[], readonly CompiledEntry[]>();

  constructor(
    private readonly deps: {
      connections: Connections;
      dataflows: Dataflows;
      audiences: AudienceService;
      /** Monotonic enough wall clock for the TTL (not the injectable business clock). */
      clock?: () => number;
      ttlMs?: number;
    },
  ) {
    this.entries = new SandboxCache(deps.ttlMs ?? 5_000, deps.clock ?? Date.now);
  }

  /** The sandbox's edge configuration (built once, then served from memory). */
  get(sandboxId: string): Promise<SandboxEdgeConfig> {
    return this.entries.get(sandboxId, () => this.build(sandboxId));
  }

  /** Forgets the sandbox's configuration: the next request rebuilds it (a build under way is not kept). */
  invalidate(sandboxId: string): void {
    this.entries.drop(sandboxId);
  }

  private async build(sandboxId: string): Promise<SandboxEdgeConfig> {
    const { connections, dataflows, audiences } = this.deps;
    const [conns, flows, compiled] = await Promise.all([connections.list(sandboxId), dataflows.list(sandboxId), audiences.compiledAll(sandboxId)]);
    const active = flows.filter((f) => f.status === 'active');
    const byDatastream = new Map<string, LookupConnection[]>();
    for (const c of conns) {
      if (c.destinationId !== PROFILE_LOOKUP_DESTINATION) continue;
      const datastreamId = c.settings['datastreamId'];
      if (typeof datastreamId !== 'string') continue;
      const mapped = new Set(active.filter((f) => f.connectionId === c.id).flatMap((f) => f.audienceIds));
      const list = byDatastream.get(datastreamId) ?? [];
      list.push({ connectionId: c.id, alias: String(c.settings['integrationAlias']), audienceIds: [...mapped].sort(), mapped });
      byDatastream.set(datastreamId, list);
    }
    return {
      lookups: (datastreamId) => byDatastream.get(datastreamId) ?? [],
      edgeAudiences: this.edgeAudiences(compiled),
    };
  }

  /** The edge audiences of a compiled set (kept per set, so evaluators can key their plans on it). */
  private edgeAudiences(compiled: readonly CompiledEntry[]): readonly CompiledEntry[] {
    let edge = this.edgeOf.get(compiled);
    if (!edge) this.edgeOf.set(compiled, (edge = compiled.filter((a) => a.row.method === EDGE)));
    return edge;
  }
}
