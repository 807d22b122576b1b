/**
 * The batch job's evaluation of one page of profiles, with no I/O, so that it runs the same on
 * the main thread and in the job's worker threads: the page's snapshot and membership texts are
 * decoded here, every target audience (in dependency order, so inSegment sees this pass's
 * results) is evaluated on each profile with the streaming engine's rules for membership
 * transitions and time-driven re-evaluation, and the audience sizes of the page are counted.
 *
 * The result is compact (typed arrays of profile and target indexes), so that a worker's answer
 * crosses threads without cloning an object per membership. Realized → existing confirmations
 * are not listed: the store applies them set-based to the profiles evaluated (see
 * Store.writeBatchMemberships), leaving out the pairs whose evaluation failed.
 */
import {
  changeAfter,
  EvalState,
  timeIndependent,
  transition,
  type AudienceContext,
  type CompiledAudience,
  type Membership,
  type MergePolicy,
} from '@audient/core';
import { decodeSnapshot } from '@audient/storage';
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

/**
 * A page as read (Store.scanBatchProfiles): the profile ids, and per chunk of consecutive
 * profiles one JSON array text of their snapshots and one of their memberships.
 */
export interface PageInput {
  ids: string[];
  snapshots: string[];
  memberships: string[];
}

/** Change kinds in `PageResult.changes`. */
export const REALIZED = 1;
export const EXITED = 2;

/** What evaluating a page produced; profile and target indexes refer to the page and the targets. */
export interface PageResult {
  /** Memberships entered or left, in evaluation order: (profile, target, REALIZED | EXITED) triples. */
  changes: Int32Array;
  /** 1 for each profile that was evaluated (a profile with no data is not). */
  evaluated: Uint8Array;
  /** Evaluations that failed: (profile, target) pairs; their memberships are left as they are. */
  failed: Int32Array;
  /** Re-evaluations: (profile, due at) pairs. */
  schedule: Float64Array;
  /** Per target (same order): members (realized or existing) among the page's profiles after the pass. */
  sizes: number[];
  evaluations: number;
  realized: number;
  exited: number;
  /** The first failures of the page (at most `maxErrors`), and how many there were. */
  errors: Array<{ profileId: string; audienceId: string; message: string }>;
  failures: number;
}

/** The buffers of a result, to transfer rather than copy it across threads. */
export const resultBuffers = (r: PageResult): ArrayBuffer[] =>
  [r.changes.buffer, r.evaluated.buffer, r.failed.buffer, r.schedule.buffer] as ArrayBuffer[];

/** Builds the targets of a run from compiled audiences (in dependency order). */
export function batchTargets(audiences: ReadonlyArray<{ id: string; compiled: CompiledAudience; mergePolicy: MergePolicy }>): BatchTarget[] {
  return audiences.map((a) => ({
    id: a.id, compiled: a.compiled, policy: a.mergePolicy, policyKey: JSON.stringify(a.mergePolicy), timed: !timeIndependent(a.compiled),
  }));
}

type MembershipTuple = [string, Membership['status'], number];

/** A profile's memberships (`[[audienceId, status, lastQualificationTime]…]`) by audience. */
function membershipMap(tuples: readonly MembershipTuple[]): Map<string, Membership> {
  const members = new Map<string, Membership>();
  for (const [audienceId, status, lastQualificationTime] of tuples) members.set(audienceId, { audienceId, status, lastQualificationTime });
  return members;
}

/** Evaluates `targets` for a page of profiles against their current memberships. */
export function evaluatePage(
  page: PageInput,
  targets: readonly BatchTarget[],
  enabled: ReadonlySet<string>,
  now: number,
  eventsSince: number,
  maxErrors: number,
): PageResult {
  const n = page.ids.length;
  const changes: number[] = [];
  const failed: number[] = [];
  const schedule: number[] = [];
  const evaluated = new Uint8Array(n);
  const out: PageResult = {
    changes: new Int32Array(0), evaluated, failed: new Int32Array(0), schedule: new Float64Array(0),
    sizes: targets.map(() => 0), evaluations: 0, realized: 0, exited: 0, errors: [], failures: 0,
  };
  // Per page rather than per profile: the audience index of each target (for the sizes), and
  // one inSegment closure reading the memberships of the profile being evaluated (it is only
  // called synchronously, while that profile's targets are evaluated).
  const targetOf = new Map<string, number>();
  for (let k = 0; k < targets.length; k++) targetOf.set(targets[k]!.id, k);
  let members = new Map<string, Membership>();
  const inSegment = (id: string): boolean => {
    const m = members.get(id);
    return m !== undefined && m.status !== 'exited';
  };
  // One evaluation state for every audience of a profile (re-bound when the context changes).
  const state = new EvalState();
  let bound: AudienceContext | undefined;
  let snapshots: unknown[] = [];
  let memberships: MembershipTuple[][] = [];
  for (let i = 0, chunk = -1, base = 0; i < n; i++) {
    if (i - base >= snapshots.length) {
      base = i;
      chunk++;
      snapshots = JSON.parse(page.snapshots[chunk]!) as unknown[];
      memberships = JSON.parse(page.memberships[chunk]!) as MembershipTuple[][];
      if (snapshots.length === 0 || snapshots.length !== memberships.length) throw new Error(`batch page chunk ${chunk}: ${snapshots.length} snapshots, ${memberships.length} membership lists`);
    }
    const profileId = page.ids[i]!;
    const profile = decodeSnapshot(profileId, snapshots[i - base] as object, eventsSince);
    members = membershipMap(memberships[i - base]!);
    if (profile.fragments.length > 0 || profile.events.length > 0) {
      evaluated[i] = 1;
      let ctx: AudienceContext | undefined;
      let ctxKey = '';
      let contexts: Map<string, AudienceContext> | undefined;
      let next = Infinity;
      for (let k = 0; k < targets.length; k++) {
        const t = targets[k]!;
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
          if (bound !== ctx) {
          state.bind(ctx);
          bound = ctx;
        }
          qualifies = t.compiled.holds(state);
          if (t.timed) {
            const c = changeAfter(t.compiled.nextOf(state), now);
            if (c !== undefined && c > now && c < next) next = c;
          }
        } catch (err) {
          out.failures++;
          failed.push(i, k);
          if (out.errors.length < maxErrors) out.errors.push({ profileId, audienceId: t.id, message: (err as Error).message });
          continue;
        }
        out.evaluations++;
        const tr = transition(t.id, members.get(t.id), qualifies, now);
        if (!tr.changed) continue;
        if (tr.next) members.set(t.id, tr.next);
        // A change without an event is a confirmation (realized → existing): the store's.
        if (tr.event === 'realized') {
          changes.push(i, k, REALIZED);
          out.realized++;
        } else if (tr.event === 'exited') {
          changes.push(i, k, EXITED);
          out.exited++;
        }
      }
      if (Number.isFinite(next)) schedule.push(i, next);
    }
    // Sizes from the profile's memberships (a dozen or so) rather than a lookup per target.
    for (const m of members.values()) {
      if (m.status === 'exited') continue;
      const k = targetOf.get(m.audienceId);
      if (k !== undefined) out.sizes[k]!++;
    }
  }
  out.changes = Int32Array.from(changes);
  out.failed = Int32Array.from(failed);
  out.schedule = Float64Array.from(schedule);
  return out;
}
