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
}

/** A profile as evaluators see it. */
export interface LoadedProfile {
  fragments: StoredFragment[];
  events: EventRow[];
}

const MAX_REPORTED_ERRORS = 100;

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
        for (const a of absorbed) profiles.delete(a);
      }
      if (profiles.size) await this.evaluate(sandboxId, [...profiles], { methods: STREAMING_METHODS });
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
      byMethods.set(methods, (plan = { targets, policies }));
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
   * Evaluates the audiences of `methods` for `profileIds`, writes membership transitions and
   * publishes their events, and schedules the next time-driven re-evaluation of each profile.
   * Profiles and memberships are read with one set-based call each, all writes of the call go
   * to the store in one call each (none when nothing changed).
   */
  async evaluate(
    sandboxId: string,
    profileIds: readonly string[],
    opts: { methods: ReadonlySet<EvaluationMethod>; audiences?: readonly CompiledEntry[] },
  ): Promise<EvaluationReport> {
    const { store, catalog, audiences, config, bus } = this.deps;
    const report: EvaluationReport = { profiles: profileIds.length, evaluations: 0, realized: 0, exited: 0, errors: [] };
    const { targets, policies } = this.plan(opts.audiences ?? (await audiences.compiledAll(sandboxId)), opts.methods);
    if (!targets.length || !profileIds.length) return report;
    const now = this.now();
    const [loaded, current, datasets] = await Promise.all([
      store.loadProfiles(sandboxId, profileIds, now - config.eventRetentionMs),
      store.memberships(sandboxId, profileIds),
      catalog.listDatasets(sandboxId),
    ]);
    const enabled = this.enabledDatasets(datasets);
    const writes: MembershipWrite[] = [];
    const schedule: Array<{ profileId: string; dueAt: number }> = [];
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
      contexts.fill(undefined);
      let next = Infinity;
      for (const { row, compiled, policy, timed } of targets) {
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
        const prev = members.get(row.id);
        // Not in and not qualifying, or confirmed `existing`: nothing to write (the common case).
        if (qualifies ? prev?.status === 'existing' : prev === undefined || prev.status === 'exited') continue;
        const t = transition(row.id, prev, qualifies, now);
        if (!t.changed) continue;
        if (t.next) members.set(row.id, t.next);
        writes.push({ profileId, audienceId: row.id, membership: t.next ?? null, event: t.event });
        if (t.event === 'realized') report.realized++;
        if (t.event === 'exited') report.exited++;
      }
      if (next !== Infinity) schedule.push({ profileId, dueAt: next });
    }
    let events: MembershipEventRow[] = [];
    if (writes.length) events = await store.writeMemberships(sandboxId, writes, now);
    if (schedule.length) await store.scheduleReevaluations(sandboxId, schedule);
    const subject = membershipSubject(sandboxId);
    for (const e of events) await bus.publish(subject, e.profileId, e);
    return report;
  }
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
}

/** Methods the streaming evaluator handles on each change. */
export const STREAMING_METHODS: ReadonlySet<EvaluationMethod> = new Set(['streaming', 'edge']);
/** Every method (re-evaluations on time, full batch runs). */
export const ALL_METHODS: ReadonlySet<EvaluationMethod> = new Set(['streaming', 'edge', 'batch']);
