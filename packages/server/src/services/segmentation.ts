/**
 * The segmentation engine: evaluates audiences for profiles and keeps their membership.
 * - streaming: every profile change from the change feed re-evaluates the sandbox's streaming and
 *   edge audiences for that profile;
 * - on time: each evaluation computes when a time window will flip by itself (nextChange) and
 *   schedules a re-evaluation then, so "purchased within 7 days" exits on day 7 with no new data;
 * - batch: a job walks every profile (daily at a set time, or on demand).
 * Membership changes are written with their events in one transaction and published on the bus
 * (`memberships.<sandbox>`). A failure on one profile is recorded and never stops the rest.
 */
import { createHash } from 'node:crypto';
import {
  eventTimesOf,
  mergeFragments,
  nextChange,
  timeIndependent,
  transition,
  type AudienceContext,
  type DatasetDef,
  type EvaluationMethod,
  type Membership,
  type MergePolicy,
  type StoredFragment,
} from '@audient/core';
import type { EventRow, MembershipEventRow, MembershipWrite, Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Bus } from '../bus/port.js';
import type { SegmentationConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { AudienceService, CompiledEntry } from './audiences.js';
import type { Catalog } from './catalog.js';
import type { ChangeMessage } from './change-feed.js';
import { pushTo } from '../collections.js';

/** Subject of a sandbox's membership events. */
export const membershipSubject = (sandboxId: string): string => `memberships.${sandboxId}`;

/** What one evaluation pass did. */
export interface EvaluationReport {
  profiles: number;
  evaluations: number;
  realized: number;
  exited: number;
  errors: Array<{ profileId: string; audienceId: string; message: string }>;
  /** With `withMemberships`: each evaluated profile's memberships after the call (writes committed). */
  memberships?: Map<string, Membership[]>;
}

/**
 * What a reusing evaluation (the edge's, the streaming engine's) last did for a profile: the
 * audiences it evaluated on exactly this profile state (fragments, events in the window) and
 * these memberships. The next reusing evaluation of the same state skips them: an edge visit is
 * evaluated by the request and then not again when its change arrives from the change feed.
 */
interface EvaluatedState {
  data: string;
  members: string;
  /** The compiled audiences evaluated (the plan's own set when it was all of them). */
  evaluated: ReadonlySet<unknown>;
}

/** A profile as evaluators see it. */
export interface LoadedProfile {
  fragments: StoredFragment[];
  events: EventRow[];
}

const MAX_REPORTED_ERRORS = 100;
/** Profiles whose last evaluated state is remembered (the oldest are forgotten first). */
const MAX_REMEMBERED_STATES = 50_000;

/** A digest of a profile's data as evaluation reads it (any change of fragment or event changes it). */
function dataKey(profile: LoadedProfile): string {
  const parts: string[] = [];
  for (const f of profile.fragments) parts.push(`f\u0000${f.datasetId}\u0000${f.ns}\u0000${f.id}\u0000${f.graphId}\u0000${f.timestamp}\u0000${JSON.stringify(f.attributes)}`);
  for (const e of profile.events) parts.push(`e\u0000${e.datasetId}\u0000${e.eventId}\u0000${e.timestamp}\u0000${JSON.stringify(e.body)}`);
  parts.sort();
  return createHash('sha1').update(parts.join('\n')).digest('base64');
}

/** A digest of a profile's memberships (in any order). */
function membersKey(list: Iterable<Membership>): string {
  const parts: string[] = [];
  for (const m of list) parts.push(`${m.audienceId}\u0000${m.status}\u0000${m.lastQualificationTime}`);
  return createHash('sha1').update(parts.sort().join('\n')).digest('base64');
}

/** Builds the evaluation context of one profile (merged attributes per policy, events oldest first). */
export function profileContext(
  loaded: LoadedProfile,
  enabled: ReadonlySet<string>,
  policy: MergePolicy,
  now: number,
  inSegment: (id: string) => boolean,
): AudienceContext {
  const events = loaded.events.filter((e) => enabled.has(e.datasetId)).map((e) => e.body);
  return {
    profile: mergeFragments(loaded.fragments.filter((f) => enabled.has(f.datasetId)), policy),
    events,
    eventTimes: eventTimesOf(events),
    now,
    inSegment,
  };
}

/** Evaluation and membership upkeep for every sandbox. */
export class SegmentationEngine {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private ticking: Promise<void> | undefined;
  private lastSizeDay = '';
  private readonly plans = new WeakMap<readonly CompiledEntry[], Map<ReadonlySet<EvaluationMethod>, EvaluationPlan>>();
  private readonly enabled = new WeakMap<readonly DatasetDef[], ReadonlySet<string>>();
  /** Per `sandbox\0profile`: what the last reusing evaluation saw and evaluated (see EvaluatedState). */
  private readonly states = new Map<string, EvaluatedState>();
  /** Per `sandbox\0profile`: the evaluation in progress (evaluations of one profile run one at a time). */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: {
      store: Store;
      bus: Bus;
      catalog: Catalog;
      audiences: AudienceService;
      config: SegmentationConfig;
      log: Logger;
      metrics: Metrics;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Subscribes to the change feed and starts the re-evaluation clock. */
  start(): void {
    this.unsubscribe = this.deps.bus.subscribeBatch<ChangeMessage>('changes.*', 'segmentation', 500, async (msgs) => {
      await this.onChanges(msgs.map((m) => m.payload));
      // Then one event-loop turn before the next batch is handed over: the changes committed
      // meanwhile (a whole ingestion call's, typically) are evaluated together, with one read
      // and one commit, instead of in slivers of whatever was queued at each step. Every write
      // of a batch touches the tail page of each audience's range of the membership index, so
      // the cost of a commit grows with the audiences, not the changes: small batches are dear.
      await new Promise<void>((resolve) => setImmediate(resolve));
    });
    if (this.deps.config.tickMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.deps.config.tickMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
  }

  /**
   * Reacts to profile changes (streaming evaluation). Changes come in batches: each profile is
   * evaluated once per batch on its latest state, which is what evaluating every change in
   * order would leave; memberships of profiles absorbed by a merge are dropped first.
   */
  async onChanges(changes: readonly ChangeMessage[]): Promise<void> {
    const bySandbox = new Map<string, { absorbed: string[]; profiles: Set<string> }>();
    for (const c of changes) {
      let s = bySandbox.get(c.sandboxId);
      if (!s) bySandbox.set(c.sandboxId, (s = { absorbed: [], profiles: new Set() }));
      if (c.type === 'merge') s.absorbed.push(...(c.mergedFrom ?? []));
      else if (c.type !== 'delete') s.profiles.add(c.profileId); // a delete removed its memberships
    }
    for (const [sandboxId, { absorbed, profiles }] of bySandbox) {
      if (absorbed.length) {
        const current = await this.deps.store.memberships(sandboxId, absorbed);
        const writes: MembershipWrite[] = [];
        for (const [pid, list] of current) for (const m of list) writes.push({ profileId: pid, audienceId: m.audienceId, membership: null });
        if (writes.length) await this.deps.store.writeMemberships(sandboxId, writes, this.now());
        for (const a of absorbed) {
          profiles.delete(a);
          this.states.delete(stateId(sandboxId, a));
        }
      }
      if (profiles.size) await this.evaluate(sandboxId, [...profiles], { methods: STREAMING_METHODS, reuse: true });
    }
  }

  /** Runs due re-evaluations (window expiries) and the exited-membership clean-up. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = (async () => {
      try {
        const now = this.now();
        for (;;) {
          const due = await this.deps.store.takeDueReevaluations(now, 500);
          if (!due.length) break;
          const bySandbox = new Map<string, string[]>();
          for (const d of due) pushTo(bySandbox, d.sandboxId, d.profileId);
          for (const [sandboxId, ids] of bySandbox) await this.evaluate(sandboxId, ids, { methods: ALL_METHODS });
          if (due.length < 500) break;
        }
        await this.deps.store.purgeExitedMemberships(now - this.deps.config.exitedRetentionMs);
        await this.recordDailySizes(now);
      } catch (err) {
        this.deps.log.error({ err }, 'segmentation tick failed; retrying at the next tick');
      }
    })().finally(() => {
      this.ticking = undefined;
    });
    await this.ticking;
  }

  /**
   * Streaming and edge audiences change continuously: once per UTC day each gets a size point
   * (batch audiences get one per batch run).
   */
  private async recordDailySizes(now: number): Promise<void> {
    const day = new Date(now).toISOString().slice(0, 10);
    if (this.lastSizeDay === day) return;
    const { store } = this.deps;
    for (const sandbox of await store.listSandboxes()) {
      for (const a of await store.listAudiences(sandbox.id)) {
        if (a.method === 'batch') continue;
        const last = (await store.audienceSizes(sandbox.id, a.id, 5)).find((p) => p.source === 'streaming');
        if (last && new Date(last.at).toISOString().slice(0, 10) === day) continue;
        const c = await store.countMembers(sandbox.id, a.id);
        await store.addAudienceSize(sandbox.id, a.id, { at: now, size: c.realized + c.existing, source: 'streaming' });
      }
    }
    this.lastSizeDay = day;
  }

  /**
   * What evaluating a set of compiled audiences for some methods needs, worked out once per
   * compiled set (the audience service hands out the same array until an audience or schema
   * changes, so a change of audience starts a new plan): the targets in dependency order, each
   * with the index of its merge policy (profiles are merged once per distinct policy) and
   * whether its result can change with time alone (only those are asked for `nextChange`).
   */
  private plan(all: readonly CompiledEntry[], methods: ReadonlySet<EvaluationMethod>): EvaluationPlan {
    let byMethods = this.plans.get(all);
    if (!byMethods) this.plans.set(all, (byMethods = new Map()));
    let plan = byMethods.get(methods);
    if (!plan) {
      const policies: MergePolicy[] = [];
      const policyIndex = new Map<string, number>();
      const targets: PlannedAudience[] = [];
      for (const { row, compiled } of all) {
        if (!methods.has(row.method)) continue;
        const key = JSON.stringify(row.mergePolicy);
        let policy = policyIndex.get(key);
        if (policy === undefined) {
          policyIndex.set(key, (policy = policies.length));
          policies.push(row.mergePolicy);
        }
        targets.push({ row, compiled, policy, timed: !timeIndependent(compiled) });
      }
      byMethods.set(methods, (plan = { targets, policies, compiled: new Set(targets.map((t) => t.compiled)) }));
    }
    return plan;
  }

  /** Ids of the profile-enabled datasets (worked out once per dataset list the catalog hands out). */
  private enabledDatasets(datasets: readonly DatasetDef[]): ReadonlySet<string> {
    let enabled = this.enabled.get(datasets);
    if (!enabled) this.enabled.set(datasets, (enabled = new Set(datasets.filter((d) => d.profileEnabled).map((d) => d.id))));
    return enabled;
  }

  /**
   * Waits until no evaluation of these profiles is in progress, then marks them in progress; the
   * returned function ends that. Two evaluations of one profile never read the same memberships
   * and both write the same entry (two `realized` events for one entry).
   */
  private async hold(sandboxId: string, profileIds: readonly string[]): Promise<() => void> {
    const ids = profileIds.map((p) => stateId(sandboxId, p));
    for (;;) {
      const busy: Array<Promise<void>> = [];
      for (const id of ids) {
        const p = this.inFlight.get(id);
        if (p) busy.push(p);
      }
      if (!busy.length) break;
      await Promise.all(busy);
    }
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    for (const id of ids) this.inFlight.set(id, mine);
    return () => {
      for (const id of ids) if (this.inFlight.get(id) === mine) this.inFlight.delete(id);
      done();
    };
  }

  /** Remembers what a reusing evaluation saw and evaluated for a profile (bounded, oldest forgotten first). */
  private remember(id: string, state: EvaluatedState): void {
    this.states.delete(id);
    this.states.set(id, state);
    if (this.states.size > MAX_REMEMBERED_STATES) {
      const oldest = this.states.keys().next();
      if (!oldest.done) this.states.delete(oldest.value);
    }
  }

  /**
   * Evaluates the audiences of `methods` for `profileIds`, writes membership transitions and
   * publishes their events, and schedules the next time-driven re-evaluation of each profile.
   * Profiles and memberships are read with one set-based call each, all writes of the call go
   * to the store in one call each (none when nothing changed).
   *
   * `reuse` (the edge's and the streaming engine's evaluations, which follow profile changes):
   * an audience already evaluated by a reusing evaluation on exactly the same profile data and
   * memberships is not evaluated again (nothing it reads changed; a time window flipping since
   * is handled by the re-evaluation that evaluation scheduled), unless a membership changed
   * earlier in the same pass. Re-evaluations on time and batch runs never skip.
   */
  async evaluate(
    sandboxId: string,
    profileIds: readonly string[],
    opts: { methods: ReadonlySet<EvaluationMethod>; audiences?: readonly CompiledEntry[]; reuse?: boolean; withMemberships?: boolean },
  ): Promise<EvaluationReport> {
    const { audiences } = this.deps;
    const report: EvaluationReport = { profiles: profileIds.length, evaluations: 0, realized: 0, exited: 0, errors: [] };
    const plan = this.plan(opts.audiences ?? (await audiences.compiledAll(sandboxId)), opts.methods);
    if (!plan.targets.length || !profileIds.length) return report;
    const release = await this.hold(sandboxId, profileIds);
    let events: MembershipEventRow[];
    try {
      events = await this.evaluateHeld(sandboxId, profileIds, plan, opts, report);
    } finally {
      release();
    }
    const subject = membershipSubject(sandboxId);
    for (const e of events) await this.deps.bus.publish(subject, e.profileId, e);
    return report;
  }

  /** evaluate() while the profiles are held: returns the membership events written. */
  private async evaluateHeld(
    sandboxId: string,
    profileIds: readonly string[],
    { targets, policies, compiled: planned }: EvaluationPlan,
    opts: { reuse?: boolean; withMemberships?: boolean },
    report: EvaluationReport,
  ): Promise<MembershipEventRow[]> {
    const { store, catalog, config } = this.deps;
    const now = this.now();
    if (opts.withMemberships) report.memberships = new Map();
    const [loaded, current, datasets] = await Promise.all([
      store.loadProfiles(sandboxId, profileIds, now - config.eventRetentionMs),
      store.memberships(sandboxId, profileIds),
      catalog.listDatasets(sandboxId),
    ]);
    const enabled = this.enabledDatasets(datasets);
    const writes: MembershipWrite[] = [];
    const schedule: Array<{ profileId: string; dueAt: number }> = [];
    const remembered: Array<[string, EvaluatedState]> = [];
    const contexts: Array<AudienceContext | undefined> = new Array<AudienceContext | undefined>(policies.length);
    for (const profileId of profileIds) {
      const profile = loaded.get(profileId);
      if (!profile || (profile.fragments.length === 0 && profile.events.length === 0)) continue;
      const list = current.get(profileId);
      const members = new Map<string, Membership>();
      if (list) for (const m of list) members.set(m.audienceId, m);
      const inSegment = (id: string): boolean => {
        const m = members.get(id);
        return m !== undefined && m.status !== 'exited';
      };
      // What a reusing evaluation of this very state already evaluated (skipped unless a
      // membership changes earlier in this pass: targets are in dependency order).
      const id = stateId(sandboxId, profileId);
      const data = opts.reuse ? dataKey(profile) : '';
      const seen = opts.reuse ? this.states.get(id) : undefined;
      const done = seen && seen.data === data && seen.members === membersKey(list ?? []) ? seen.evaluated : undefined;
      const evaluated = new Set<unknown>();
      let changed = false;
      contexts.fill(undefined);
      let next = Infinity;
      for (const { row, compiled, policy, timed } of targets) {
        if (!changed && done?.has(compiled)) {
          evaluated.add(compiled);
          continue;
        }
        let qualifies: boolean;
        try {
          const ctx = (contexts[policy] ??= profileContext(profile, enabled, policies[policy]!, now, inSegment));
          qualifies = compiled.evaluate(ctx);
          if (timed) {
            const n = nextChange(compiled, ctx);
            if (n !== undefined && n > now && n < next) next = n;
          }
        } catch (err) {
          if (report.errors.length < MAX_REPORTED_ERRORS) report.errors.push({ profileId, audienceId: row.id, message: (err as Error).message });
          this.deps.log.warn({ err, sandboxId, profileId, audienceId: row.id }, 'audience evaluation failed for a profile');
          continue;
        }
        report.evaluations++;
        evaluated.add(compiled);
        const prev = members.get(row.id);
        // Not in and not qualifying, or confirmed `existing`: nothing to write (the common case).
        if (qualifies ? prev?.status === 'existing' : prev === undefined || prev.status === 'exited') continue;
        const t = transition(row.id, prev, qualifies, now);
        if (!t.changed) continue;
        if (t.next) members.set(row.id, t.next);
        else members.delete(row.id);
        changed = true;
        writes.push({ profileId, audienceId: row.id, membership: t.next ?? null, event: t.event });
        if (t.event === 'realized') report.realized++;
        if (t.event === 'exited') report.exited++;
      }
      if (next !== Infinity) schedule.push({ profileId, dueAt: next });
      if (opts.reuse) remembered.push([id, { data, members: membersKey(members.values()), evaluated: evaluated.size === planned.size ? planned : evaluated }]);
      report.memberships?.set(profileId, [...members.values()]);
    }
    let events: MembershipEventRow[] = [];
    if (writes.length) events = await store.writeMemberships(sandboxId, writes, now);
    if (schedule.length) await store.scheduleReevaluations(sandboxId, schedule);
    // Only once written: a failed write leaves nothing remembered, so the next pass evaluates again.
    for (const [id, state] of remembered) this.remember(id, state);
    return events;
  }
}

/** Key of a profile in the engine's per-profile maps. */
function stateId(sandboxId: string, profileId: string): string {
  return `${sandboxId}\u0000${profileId}`;
}

/** An audience as an evaluation plan holds it. */
interface PlannedAudience extends CompiledEntry {
  /** Index of its merge policy in the plan's `policies`. */
  policy: number;
  /** Whether its result can change with time alone (then `nextChange` is asked). */
  timed: boolean;
}

/** The audiences one evaluation call runs, and the distinct merge policies among them. */
interface EvaluationPlan {
  targets: PlannedAudience[];
  policies: MergePolicy[];
  /** The targets' compiled audiences. */
  compiled: ReadonlySet<unknown>;
}

/** Methods the streaming evaluator handles on each change. */
export const STREAMING_METHODS: ReadonlySet<EvaluationMethod> = new Set(['streaming', 'edge']);
/** Every method (re-evaluations on time, full batch runs). */
export const ALL_METHODS: ReadonlySet<EvaluationMethod> = new Set(['streaming', 'edge', 'batch']);
