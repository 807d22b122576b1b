/**
 * Looking into audiences while writing and debugging them: preview (size estimate and sample
 * members of a query not yet saved) and explain (for one profile, which clauses held and which
 * failed, with the values seen).
 */
import {
  AudientError,
  DEFAULT_MERGE_POLICY,
  checkAudience,
  compileAudience,
  explain,
  parseAudience,
  type ExplainNode,
  type IdentityRef,
  type MergePolicy,
} from '@audient/core';
import type { Store } from '@audient/storage';
import type { SegmentationConfig } from '../config.js';
import type { AudienceService } from './audiences.js';
import type { Catalog } from './catalog.js';
import { profileContext } from './segmentation.js';

/** A preview of a query over a sample of profiles. */
export interface Preview {
  sampled: number;
  matched: number;
  totalProfiles: number;
  /** matched / sampled × totalProfiles, rounded. */
  estimatedSize: number;
  samples: Array<{ profileId: string; attributes: Record<string, unknown> }>;
  errors: number;
}

/** Preview and explain. */
export class AudienceInspector {
  constructor(private readonly deps: { store: Store; catalog: Catalog; audiences: AudienceService; config: SegmentationConfig; now: () => number }) {}

  private enabled(sandboxId: string): Promise<ReadonlySet<string>> {
    return this.deps.catalog.profileEnabledIds(sandboxId);
  }

  private async compile(sandboxId: string, query: string) {
    return compileAudience(checkAudience(parseAudience(query), await this.deps.audiences.schemas(sandboxId)));
  }

  /** Evaluates `query` over up to `sampleSize` profiles (in id order, so repeatable). */
  async preview(sandboxId: string, query: string, opts: { sampleSize: number; mergePolicy?: MergePolicy | undefined }): Promise<Preview> {
    const { store, config } = this.deps;
    const compiled = await this.compile(sandboxId, query);
    const enabled = await this.enabled(sandboxId);
    const now = this.deps.now();
    const totalProfiles = await store.countProfiles(sandboxId);
    const out: Preview = { sampled: 0, matched: 0, totalProfiles, estimatedSize: 0, samples: [], errors: 0 };
    let after: string | undefined;
    while (out.sampled < opts.sampleSize) {
      const ids = await store.listProfileIds(sandboxId, after, Math.min(500, opts.sampleSize - out.sampled));
      if (!ids.length) break;
      const [loaded, memberships] = await Promise.all([store.loadProfiles(sandboxId, ids, now - config.eventRetentionMs), store.memberships(sandboxId, ids)]);
      for (const id of ids) {
        const members = new Set((memberships.get(id) ?? []).filter((m) => m.status !== 'exited').map((m) => m.audienceId));
        const ctx = profileContext(loaded.get(id) ?? { fragments: [], events: [] }, enabled, opts.mergePolicy ?? DEFAULT_MERGE_POLICY, now, (a) => members.has(a));
        out.sampled++;
        try {
          if (compiled.evaluate(ctx)) {
            out.matched++;
            if (out.samples.length < 10) out.samples.push({ profileId: id, attributes: ctx.profile as Record<string, unknown> });
          }
        } catch {
          out.errors++;
        }
      }
      after = ids.at(-1);
    }
    out.estimatedSize = out.sampled ? Math.round((out.matched / out.sampled) * totalProfiles) : 0;
    return out;
  }

  /** For one profile and one saved audience (or a query), the evaluation clause by clause. */
  async explain(
    sandboxId: string,
    identity: IdentityRef,
    target: { audienceId: string } | { query: string; mergePolicy?: MergePolicy | undefined },
  ): Promise<{ profileId: string; audienceId?: string; qualifies: boolean; membership?: unknown; tree: ExplainNode }> {
    const { store, config, audiences } = this.deps;
    const profileId = await store.findProfileId(sandboxId, identity);
    if (!profileId) throw new AudientError('NOT_FOUND', `no profile has the identity ${identity.ns}:${identity.id}`);
    const now = this.deps.now();
    let query: string;
    let policy: MergePolicy = DEFAULT_MERGE_POLICY;
    if ('audienceId' in target) {
      const row = await audiences.get(sandboxId, target.audienceId);
      query = row.query;
      policy = row.mergePolicy;
    } else {
      query = target.query;
      policy = target.mergePolicy ?? DEFAULT_MERGE_POLICY;
    }
    const compiled = await this.compile(sandboxId, query);
    const [loaded, memberships] = await Promise.all([
      store.loadProfiles(sandboxId, [profileId], now - config.eventRetentionMs),
      store.memberships(sandboxId, [profileId]),
    ]);
    const list = memberships.get(profileId) ?? [];
    const members = new Set(list.filter((m) => m.status !== 'exited').map((m) => m.audienceId));
    const ctx = profileContext(loaded.get(profileId)!, await this.enabled(sandboxId), policy, now, (a) => members.has(a));
    const tree = explain(compiled, ctx);
    const membership = 'audienceId' in target ? list.find((m) => m.audienceId === target.audienceId) : undefined;
    return {
      profileId,
      ...('audienceId' in target ? { audienceId: target.audienceId } : {}),
      qualifies: compiled.evaluate(ctx),
      ...(membership ? { membership } : {}),
      tree,
    };
  }
}
