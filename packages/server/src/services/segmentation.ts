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
  transition,
  type AudienceContext,
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
    this.unsubscribe = this.deps.bus.subscribeBatch<ChangeMessage>('changes.*', 'segmentation', 500, (msgs) =>
      this.onChanges(msgs.map((m) => m.payload)),
    );
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
   * Evaluates the audiences of `methods` for `profileIds`, writes membership transitions and
   * publishes their events, and schedules the next time-driven re-evaluation of each profile.
   */
  async evaluate(
    sandboxId: string,
    profileIds: readonly string[],
    opts: { methods: ReadonlySet<EvaluationMethod>; audiences?: readonly CompiledEntry[] },
  ): Promise<EvaluationReport> {
    const { store, catalog, audiences, config, bus } = this.deps;
    const report: EvaluationReport = { profiles: profileIds.length, evaluations: 0, realized: 0, exited: 0, errors: [] };
    const all = opts.audiences ?? (await audiences.compiledAll(sandboxId));
    const targets = all.filter((a) => opts.methods.has(a.row.method));
    if (!targets.length || !profileIds.length) return report;
    const now = this.now();
    const [loaded, current, datasets] = await Promise.all([
      store.loadProfiles(sandboxId, profileIds, now - config.eventRetentionMs),
      store.memberships(sandboxId, profileIds),
      catalog.listDatasets(sandboxId),
    ]);
    const enabled = new Set(datasets.filter((d) => d.profileEnabled).map((d) => d.id));
    const writes: MembershipWrite[] = [];
    const schedule: Array<[string, number]> = [];
    for (const profileId of profileIds) {
      const profile = loaded.get(profileId);
      if (!profile || (profile.fragments.length === 0 && profile.events.length === 0)) continue;
      const members = new Map<string, Membership>((current.get(profileId) ?? []).map((m) => [m.audienceId, m]));
      const inSegment = (id: string): boolean => {
        const m = members.get(id);
        return m !== undefined && m.status !== 'exited';
      };
      const contexts = new Map<string, AudienceContext>();
      let next = Infinity;
      for (const { row, compiled } of targets) {
        const key = JSON.stringify(row.mergePolicy);
        let ctx = contexts.get(key);
        if (!ctx) contexts.set(key, (ctx = profileContext(profile, enabled, row.mergePolicy, now, inSegment)));
        let qualifies: boolean;
        try {
          qualifies = compiled.evaluate(ctx);
          const n = nextChange(compiled, ctx);
          if (n !== undefined && n > now && n < next) next = n;
        } catch (err) {
          if (report.errors.length < MAX_REPORTED_ERRORS) report.errors.push({ profileId, audienceId: row.id, message: (err as Error).message });
          this.deps.log.warn({ err, sandboxId, profileId, audienceId: row.id }, 'audience evaluation failed for a profile');
          continue;
        }
        report.evaluations++;
        const t = transition(row.id, members.get(row.id), qualifies, now);
        if (!t.changed) continue;
        if (t.next) members.set(row.id, t.next);
        writes.push({ profileId, audienceId: row.id, membership: t.next ?? null, event: t.event });
        if (t.event === 'realized') report.realized++;
        if (t.event === 'exited') report.exited++;
      }
      if (Number.isFinite(next)) schedule.push([profileId, next]);
    }
    let events: MembershipEventRow[] = [];
    if (writes.length) events = await store.writeMemberships(sandboxId, writes, now);
    if (schedule.length) await store.scheduleReevaluations(sandboxId, schedule.map(([profileId, dueAt]) => ({ profileId, dueAt })));
    for (const e of events) await bus.publish(membershipSubject(sandboxId), e.profileId, e);
    return report;
  }
}

/** Methods the streaming evaluator handles on each change. */
export const STREAMING_METHODS: ReadonlySet<EvaluationMethod> = new Set(['streaming', 'edge']);
/** Every method (re-evaluations on time, full batch runs). */
export const ALL_METHODS: ReadonlySet<EvaluationMethod> = new Set(['streaming', 'edge', 'batch']);
