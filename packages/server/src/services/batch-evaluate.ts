/**
 * The batch job's evaluation of one page of profiles, with no I/O, so that it runs the same on
 * the main thread and in the job's worker threads: every target audience (in dependency order,
 * so inSegment sees this pass's results) on each profile, the streaming engine's rules for
 * membership transitions and time-driven re-evaluation, and the audience sizes of the page.
 */
import {
  nextChange,
  timeIndependent,
  transition,
  type AudienceContext,
  type CompiledAudience,
  type Membership,
  type MergePolicy,
} from '@audient/core';
import type { MembershipWrite, ProfileSnapshot } from '@audient/storage';
import { profileContext } from './segmentation.js';

/** An audience of the run. */
export interface BatchTarget {
  id: string;
  compiled: CompiledAudience;
  policy: MergePolicy;
  /** Profiles get one context per distinct policy key. */
  policyKey: string;
  /** Whether time alone can change the result (then its next change is scheduled). */
  timed: boolean;
}

/** What evaluating a page produced. */
export interface PageResult {
  writes: MembershipWrite[];
  schedule: Array<{ profileId: string; dueAt: number }>;
  /** Per target (same order): members (realized or existing) among the page's profiles after the pass. */
  sizes: number[];
  evaluations: number;
  realized: number;
  exited: number;
  /** The first failures of the page (at most `maxErrors`), and how many there were. */
  errors: Array<{ profileId: string; audienceId: string; message: string }>;
  failures: number;
}

/** Builds the targets of a run from compiled audiences (in dependency order). */
export function batchTargets(audiences: ReadonlyArray<{ id: string; compiled: CompiledAudience; mergePolicy: MergePolicy }>): BatchTarget[] {
  return audiences.map((a) => ({
    id: a.id, compiled: a.compiled, policy: a.mergePolicy, policyKey: JSON.stringify(a.mergePolicy), timed: !timeIndependent(a.compiled),
  }));
}

/** Evaluates `targets` for a page of profiles against their current memberships. */
export function evaluateSnapshots(
  page: readonly ProfileSnapshot[],
  current: ReadonlyMap<string, readonly Membership[]>,
  targets: readonly BatchTarget[],
  enabled: ReadonlySet<string>,
  now: number,
  maxErrors: number,
): PageResult {
  const out: PageResult = { writes: [], schedule: [], sizes: targets.map(() => 0), evaluations: 0, realized: 0, exited: 0, errors: [], failures: 0 };
  for (const profile of page) {
    const { profileId } = profile;
    const members = new Map<string, Membership>();
    for (const m of current.get(profileId) ?? []) members.set(m.audienceId, m);
    if (profile.fragments.length > 0 || profile.events.length > 0) {
      const inSegment = (id: string): boolean => {
        const m = members.get(id);
        return m !== undefined && m.status !== 'exited';
      };
      let ctx: AudienceContext | undefined;
      let ctxKey = '';
      let contexts: Map<string, AudienceContext> | undefined;
      let next = Infinity;
      for (const t of targets) {
        if (ctx === undefined) {
          ctx = profileContext(profile, enabled, t.policy, now, inSegment);
          ctxKey = t.policyKey;
        } else if (t.policyKey !== ctxKey) {
          contexts ??= new Map([[ctxKey, ctx]]);
          let other = contexts.get(t.policyKey);
          if (!other) contexts.set(t.policyKey, (other = profileContext(profile, enabled, t.policy, now, inSegment)));
          ctx = other;
          ctxKey = t.policyKey;
        }
        let qualifies: boolean;
        try {
          qualifies = t.compiled.evaluate(ctx);
          if (t.timed) {
            const n = nextChange(t.compiled, ctx);
            if (n !== undefined && n > now && n < next) next = n;
          }
        } catch (err) {
          out.failures++;
          if (out.errors.length < maxErrors) out.errors.push({ profileId, audienceId: t.id, message: (err as Error).message });
          continue;
        }
        out.evaluations++;
        const tr = transition(t.id, members.get(t.id), qualifies, now);
        if (!tr.changed) continue;
        if (tr.next) members.set(t.id, tr.next);
        out.writes.push({ profileId, audienceId: t.id, membership: tr.next ?? null, event: tr.event });
        if (tr.event === 'realized') out.realized++;
        if (tr.event === 'exited') out.exited++;
      }
      if (Number.isFinite(next)) out.schedule.push({ profileId, dueAt: next });
    }
    if (members.size > 0) {
      for (let i = 0; i < targets.length; i++) {
        const m = members.get(targets[i]!.id);
        if (m !== undefined && m.status !== 'exited') out.sizes[i]!++;
      }
    }
  }
  return out;
}
