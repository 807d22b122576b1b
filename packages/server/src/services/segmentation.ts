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
  approxJsonBytes,
  changeAfter,
  EvalState,
  eventLookbackMs,
  eventProjection,
  projectEvent,
  RelevanceIndex,
  eventTimesFrom,
  mergeFragments,
  timeIndependent,
  transition,
  type AudienceContext,
  type EvaluationMethod,
  type EventProjection,
  type IdentityRef,
  type Membership,
  type MergePolicy,
  type StoredFragment,
} from '@audient/core';
import type { EventRow, MembershipConfirmation, MembershipEventRow, MembershipWrite, Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Bus } from '../bus/port.js';
import type { SegmentationConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { AudienceService, CompiledEntry } from './audiences.js';
import type { Catalog } from './catalog.js';
import type { ChangeMessage } from './change-feed.js';
import { pushTo } from '../collections.js';
import { Confirmations } from './confirmations.js';
import { derivedOf } from './fragment-derived.js';
import { PairMap, RecentMap } from './recent-map.js';

/** Subject of a sandbox's membership events. */
export const membershipSubject = (sandboxId: string): string => `memberships.${sandboxId}`;

/** What one evaluation pass did. */
export interface EvaluationReport {
  profiles: number;
  evaluations: number;
  realized: number;
  exited: number;
  errors: Array<{ profileId: string; audienceId: string; message: string }>;
  /** With `withMemberships`: each evaluated profile's memberships after the call (writes committed), by audience id; read only. */
  memberships?: Map<string, ReadonlyMap<string, Membership>>;
}

/**
 * What a reusing evaluation (the edge's, the streaming engine's) last did for a profile: the
 * audiences it evaluated, the memberships it left, and which changes the profile state it read
 * held. When the changes that cause the next reusing evaluation are all known to be held (the
 * edge's own event reaching the streaming engine, or the edge's request whose change the
 * streaming engine evaluated first), the audiences evaluated are not evaluated again if the
 * memberships are still as left. No digest of the data is needed: every write of profile data
 * goes through the change feed, whose order is commit order, so a change the state did not hold
 * shows up as a change key the state does not list.
 */
interface EvaluatedState {
  members: ReadonlyMap<string, Membership>;
  /** The compiled audiences evaluated (the plan's own set when it was all of them). */
  evaluated: ReadonlySet<unknown>;
  /**
   * Keys (changeKey) of changes the state held that the feed has not delivered yet (undefined
   * when none: most states never get one, and a state is kept per profile).
   */
  pending: readonly string[] | undefined;
  /**
   * Keys of changes the feed delivered before the evaluation that includes them ran (the
   * streaming engine evaluated the edge's own event first): at most MAX_HELD, oldest first;
   * undefined when none. Each leaves when that evaluation names it, as a pending key leaves
   * `pending` when its change arrives: a change is delivered once and included once.
   */
  held: readonly string[] | undefined;
}

/**
 * A hot profile as this engine last saw it, in memory while the engine runs (it is fed by the
 * change feed): what the edge answers from, besides the events it reads fresh. Coherence:
 * - `fragments` as last read by a `hot` evaluation (the edge's, the streaming engine's);
 *   dropped when the change feed brings a change of the profile other than an event (a CRM
 *   write, a merge, a privacy delete). Events are always read from the store (the edge's own
 *   just committed). An evaluation racing a privacy delete may write memberships after it
 *   (as it could before, from a read just ahead of the delete): the delete change removes them;
 * - `members` as this engine last read or committed them; dropped on a delete, a merge, a
 *   membership event this engine did not write (a batch run) and any audience change.
 * A read fills a view only if the view was not dropped meanwhile (the same object is still in
 * the map), so an invalidation racing a read is never overwritten by the older data.
 * One process: changes and membership events of other processes' writes reach this engine
 * through the change feed and the bus of this process only.
 */
interface ProfileView {
  fragments?: StoredFragment[];
  members?: ReadonlyMap<string, Membership>;
  /** The re-evaluation this engine last scheduled (kept while it is still ahead). */
  dueAt?: number;
  /**
   * The profile's events at or after `eventsSince`, oldest first, as the store returns them.
   * They go when an event that is not among them comes through the change feed; this process's
   * ingestion adds its own as it commits them (eventsStored): appended in place when newest (an
   * evaluation that took the list before may then see it, a committed event, which its change
   * evaluates again), else in a new array.
   */
  events?: readonly ViewRow[];
  eventsSince?: number;
  /**
   * What `events` keep of each event: the parts the sandbox's audiences read (see projection.ts
   * in the core). A view whose projection is not the sandbox's current one serves no events.
   */
  projection?: EventProjection;
  /** The estimated heap `events` take, bytes (the sum of their `bytes`, see projectRow). */
  eventBytes?: number;
  /** Counts events reaching the profile: a read begun before one does not fill `events`. */
  eventsGen?: number;
  /** When the view was last used (the engine's clock): an idle view gives its events up for another's. */
  usedAt?: number;
}

/** A remembered state an evaluation starts from, and the keys of the events added since (see unchangedStates). */
interface Reused {
  state: EvaluatedState;
  added: string[] | undefined;
}

/** Per profile, the keys unchangedStates found at their other end (arrived and pending, or included and held): done with, kept in neither list. */
type ConsumedKeys = Map<string, string[]>;

/** Hot profiles kept at most (the least recently used are forgotten first; see RecentMap). */
const MAX_VIEWS = 50_000;
/** Identities whose profile is kept (see profileIdOf). */
const MAX_IDENTITIES = 100_000;

/** Messages the views' subscribers take per call (their work per message is a few map operations). */
const VIEW_BATCH = 10_000;

/** Events a view keeps at most (a profile with more is read from the store each time). */
const MAX_VIEW_EVENTS = 1_000;

/** Change keys delivered ahead of their evaluation remembered per profile (an edge request is answered well within a few changes). */
const MAX_HELD = 16;

/** Key of a change that a reusing evaluation can know it read: an event's (none for others). */
export function changeKey(c: { type: string; datasetId?: string | undefined; eventId?: string | undefined }): string | undefined {
  return c.type === 'event' && c.datasetId !== undefined && c.eventId !== undefined ? eventChangeKey(c.datasetId, c.eventId) : undefined;
}

/** changeKey of the change an accepted, not duplicate, event record makes. */
export const eventChangeKey = (datasetId: string, eventId: string): string => `${datasetId}\u0000${eventId}`;

/** A profile as evaluators see it. */
export interface LoadedProfile {
  fragments: StoredFragment[];
  events: readonly EventRow[];
}

const MAX_REPORTED_ERRORS = 100;
/**
 * Read past the plan's reach (see EvaluationPlan.reachMs), so an event at the edge of a window
 * is still read by an evaluation that runs a little after the window moved past it.
 */
const REACH_MARGIN_MS = 60_000;
/** A profile with nothing within an evaluation's reach. */
const NOTHING_LOADED: LoadedProfile = { fragments: [], events: [] };
/** Profiles whose last evaluated state is remembered at most (the least recently used are forgotten first). */
const MAX_REMEMBERED_STATES = 50_000;

/**
 * Whether the stored memberships are the ones an evaluation left: the same entries and exits.
 * `realized` and `existing` of one entry (same time) are the same to an evaluation, and the
 * store may not hold a confirmation yet (see confirmations.ts).
 */
function sameMembers(left: ReadonlyMap<string, Membership>, stored: ReadonlyMap<string, Membership> | undefined): boolean {
  // The common case: the view holds the very map the last evaluation left.
  if (left === stored) return true;
  if ((stored?.size ?? 0) !== left.size) return false;
  for (const m of stored?.values() ?? []) {
    const l = left.get(m.audienceId);
    if (!l || l.lastQualificationTime !== m.lastQualificationTime) return false;
    if (l.status !== m.status && (l.status === 'exited' || m.status === 'exited')) return false;
  }
  return true;
}

/**
 * Merged attributes of a fragment list for enabled datasets and a merge policy. For hot profiles
 * they are kept with the list (see fragment-derived.ts), so the edge's returning visitor is
 * merged once, not on every evaluation. Evaluation only reads the merged object.
 */
function mergedAttributes(fragments: readonly StoredFragment[], enabled: ReadonlySet<string>, policy: MergePolicy, remember: boolean): Record<string, unknown> {
  const derived = remember ? derivedOf(fragments) : undefined;
  if (derived?.merged) for (const k of derived.merged) if (k.policy === policy && k.enabled === enabled) return k.merged;
  const merged = mergeFragments(fragments.filter((f) => enabled.has(f.datasetId)), policy);
  if (derived) (derived.merged ??= []).push({ enabled, policy, merged });
  return merged;
}

/** Builds the evaluation context of one profile (merged attributes per policy, events oldest first). */
export function profileContext(
  loaded: LoadedProfile,
  enabled: ReadonlySet<string>,
  policy: MergePolicy,
  now: number,
  inSegment: (id: string) => boolean,
  /** Keep the merged attributes with the fragment list (a profile view's, see mergedAttributes). */
  hot = false,
): AudienceContext {
  // The times ingestion parsed from the events' `timestamp` (the store keeps them): not parsed again.
  const rows = loaded.events;
  const events: Array<Record<string, unknown>> = [];
  const times: number[] = [];
  // Runs of events of one dataset are the rule: the set is asked once per run.
  let dataset: string | undefined;
  let kept = false;
  for (let i = 0; i < rows.length; i++) {
    const e = rows[i]!;
    if (e.datasetId !== dataset) {
      dataset = e.datasetId;
      kept = enabled.has(dataset);
    }
    if (!kept) continue;
    events.push(e.body);
    times.push(e.timestamp);
  }
  return {
    profile: mergedAttributes(loaded.fragments, enabled, policy, hot),
    events,
    eventTimes: eventTimesFrom(times),
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
  /** Per sandbox and profile: what the last reusing evaluation saw and evaluated (see EvaluatedState). */
  private readonly states = new RecentMap<EvaluatedState>(MAX_REMEMBERED_STATES);
  /** Per evaluated set, per plan: whether the set holds every target (see covers). */
  private readonly coverage = new WeakMap<ReadonlySet<unknown>, WeakMap<EvaluationPlan, boolean>>();
  /** Bound to one profile's context at a time (evaluateProfile is synchronous). */
  private readonly evalState = new EvalState();
  /** Bound to the events added to that profile since its remembered state, if any. */
  private readonly addedState = new EvalState();
  /** Per sandbox and profile: the hot profile view (see ProfileView); only while started. */
  private readonly views = new RecentMap<ProfileView>(MAX_VIEWS, (_sandboxId, _profileId, v) => this.uncount(v));
  private viewsOn = false;
  /** Events the views hold in all, and their estimated heap (bounded by config.viewBytes). */
  private heldEvents = 0;
  private heldBytes = 0;
  /** Per compiled set of a sandbox's audiences and set evaluated: the parts of events views keep (equal ones shared). */
  private readonly projections = new WeakMap<readonly CompiledEntry[], WeakMap<readonly CompiledEntry[], EventProjection>>();
  private readonly projectionsByKey = new Map<string, EventProjection>();
  /** Per sandbox, the projection of its audiences as its last evaluation saw them (views of created profiles keep their events so). */
  private readonly projectionOf = new Map<string, EventProjection>();
  /**
   * The views holding events, least recently used first (a view moves to the end when used):
   * when the bound is reached, views unused for config.viewIdleMs give their events up for the
   * view that needs room, taken from the front (see makeRoom). Views used within that time
   * keep theirs, so a scan of more profiles than the bound holds does not empty the memory of
   * the hot ones.
   */
  private readonly holders = new Set<ProfileView>();
  /** Seqs of membership events this engine wrote and published, until they come back from the bus. */
  private readonly ownEvents = new Set<number>();
  private unsubscribeViews: Array<() => void> = [];
  /**
   * Per sandbox and `ns\0id`: the profile an identity resolved to, while started. An identity
   * changes profile only by a merge (the absorbed profile's identities), an eviction or a
   * delete; each drops the entries concerned when the change feed brings it.
   */
  private readonly identities = new RecentMap<{ profileId: string }>(MAX_IDENTITIES, (sandboxId, key, { profileId }) => {
    const left = this.identitiesOf.get(sandboxId, profileId);
    left?.delete(key);
    if (left?.size === 0) this.identitiesOf.delete(sandboxId, profileId);
  });
  /** Per sandbox and profile: the keys of `identities` resolving to it. */
  private readonly identitiesOf = new PairMap<Set<string>>();
  /** Counts identity invalidations: a lookup that raced one does not fill the map. */
  private identityEpoch = 0;
  /** audient_hot_event_reads_total's two series: profiles whose events a hot evaluation took from the view, or read. */
  private readonly readsFromView: { inc(n?: number): void };
  private readonly readsFromStore: { inc(n?: number): void };
  /** Per sandbox and profile: the evaluation in progress (evaluations of one profile run one at a time). */
  private readonly inFlight = new PairMap<Promise<void>>();
  /** Confirmations (realized → existing), written after the evaluations that made them. */
  private readonly confirmations: Confirmations;

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
  ) {
    deps.metrics.viewsHeld = () => ({ events: this.heldEvents, bytes: this.heldBytes });
    this.readsFromView = deps.metrics.hotEventReads.labels('view');
    this.readsFromStore = deps.metrics.hotEventReads.labels('store');
    this.confirmations = new Confirmations({ store: deps.store, log: deps.log, outcomes: deps.metrics.membershipConfirmations });
    // A removed audience's memberships are deleted by the store: views of the sandbox are void.
    deps.audiences.onChanged((sandboxId) => {
      for (const profileId of this.views.keysOf(sandboxId)) this.dropView(sandboxId, profileId);
    });
  }

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
    // The views' invalidations, as soon as messages are published (a group of their own, not
    // batched behind evaluations; whatever was published together is taken in one call).
    this.unsubscribeViews.push(
      this.deps.bus.subscribeBatch<ChangeMessage>('changes.*', 'segmentation-views', VIEW_BATCH, async (msgs) => {
        for (const { payload: c } of msgs) {
          this.changeReachesView(c);
          for (const a of c.mergedFrom ?? []) this.dropView(c.sandboxId, a);
          if (c.type === 'delete') this.dropIdentities(c.sandboxId, c.profileId);
          for (const a of c.mergedFrom ?? []) this.dropIdentities(c.sandboxId, a);
          for (const i of c.identitiesEvicted ?? []) {
            this.identityEpoch++;
            const key = identityKey(i);
            this.identities.delete(c.sandboxId, key);
            this.identitiesOf.get(c.sandboxId, c.profileId)?.delete(key);
          }
        }
      }),
      this.deps.bus.subscribeBatch<MembershipEventRow>('memberships.*', 'segmentation-views', VIEW_BATCH, async (msgs) => {
        for (const { payload: e } of msgs) if (!this.ownEvents.delete(e.seq)) this.dropView(e.sandboxId, e.profileId);
      }),
    );
    this.viewsOn = true;
    if (this.deps.config.tickMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.deps.config.tickMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    for (const u of this.unsubscribeViews) u();
    this.unsubscribeViews = [];
    this.viewsOn = false;
    this.views.clear();
    this.heldEvents = 0;
    this.heldBytes = 0;
    this.holders.clear();
    this.identities.clear();
    this.identitiesOf.clear();
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    await this.confirmations.flush();
  }

  /** Writes the confirmations queued so far (see confirmations.ts). */
  async flushConfirmations(): Promise<void> {
    await this.confirmations.flush();
  }

  /**
   * Reacts to profile changes (streaming evaluation). Changes come in batches: each profile is
   * evaluated once per batch on its latest state, which is what evaluating every change in
   * order would leave; memberships of profiles absorbed by a merge are dropped first.
   */
  async onChanges(changes: readonly ChangeMessage[]): Promise<void> {
    const bySandbox = new Map<string, { gone: string[]; profiles: Map<string, Array<string | undefined>> }>();
    for (const c of changes) {
      let s = bySandbox.get(c.sandboxId);
      if (!s) bySandbox.set(c.sandboxId, (s = { gone: [], profiles: new Map() }));
      // Also done on publication (start()): here too, so that no evaluation below reads a view
      // older than the changes it evaluates, whichever subscriber the bus served first.
      this.changeReachesView(c);
      if (c.type === 'merge') s.gone.push(...(c.mergedFrom ?? []));
      if (c.type === 'delete') {
        // What was evaluated for it is void; the delete removed its memberships, and what an
        // evaluation racing it may have written since is removed below.
        s.profiles.delete(c.profileId);
        s.gone.push(c.profileId);
      } else {
        let keys = s.profiles.get(c.profileId);
        if (!keys) s.profiles.set(c.profileId, (keys = []));
        keys.push(changeKey(c));
      }
    }
    for (const [sandboxId, { gone, profiles }] of bySandbox) {
      if (gone.length) {
        // Profiles absorbed by a merge or deleted: their memberships go, once any evaluation
        // of them under way has written (it may have read the profile before it went).
        for (const a of gone) {
          profiles.delete(a);
          this.states.delete(sandboxId, a);
          this.dropView(sandboxId, a);
        }
        const ids = [...new Set(gone)];
        const release = await this.hold(sandboxId, ids);
        try {
          const current = await this.deps.store.memberships(sandboxId, ids);
          const writes: MembershipWrite[] = [];
          for (const [pid, list] of current) for (const m of list) writes.push({ profileId: pid, audienceId: m.audienceId, membership: null });
          if (writes.length) await this.deps.store.writeMemberships(sandboxId, writes, this.now());
        } finally {
          release();
        }
      }
      if (profiles.size) await this.evaluate(sandboxId, [...profiles.keys()], { methods: STREAMING_METHODS, reuse: true, hot: true, arrived: profiles });
    }
  }

  /** Runs due re-evaluations (window expiries) and the exited-membership clean-up. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = (async () => {
      try {
        const now = this.now();
        for (;;) {
          // Leased, not removed: a crash or failure before the evaluation's writes committed
          // leaves them due again when the lease ends, so a window still expires.
          const due = await this.deps.store.takeDueReevaluations(now, 500);
          if (!due.length) break;
          const bySandbox = new Map<string, string[]>();
          for (const d of due) {
            pushTo(bySandbox, d.sandboxId, d.profileId);
            // Its request is served: the evaluation below schedules the next one.
            const v = this.views.get(d.sandboxId, d.profileId);
            if (v) v.dueAt = undefined;
          }
          for (const [sandboxId, ids] of bySandbox) {
            try {
              await this.evaluate(sandboxId, ids, { methods: ALL_METHODS });
            } catch (err) {
              this.deps.log.error({ err, sandboxId }, 'time-window re-evaluations failed; retrying when their lease ends');
              continue;
            }
            // Only after its writes and its next requests committed (those stay pending).
            await this.deps.store.finishReevaluations(sandboxId, ids, now);
          }
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
      const relevance = new RelevanceIndex(targets.map((t) => t.compiled.relevanceTerms));
      const reachMs = targets.reduce((m, t) => Math.max(m, eventLookbackMs(t.compiled.ast)), 0);
      byMethods.set(methods, (plan = { targets, policies, compiled: new Set(targets.map((t) => t.compiled)), relevance, reachMs }));
    }
    return plan;
  }

  /**
   * The parts of events the views keep for an evaluation of `planned` (see evaluate): what the
   * sandbox's audiences (`all`) read, or, when `planned` holds audiences `all` does not (a set
   * compiled before a change, as a cache may still hand out), what both read. One object per
   * distinct projection, so views compare them by identity. Worked out once per pair of sets.
   */
  private projectionFor(all: readonly CompiledEntry[], planned: readonly CompiledEntry[]): EventProjection {
    let byPlanned = this.projections.get(all);
    if (!byPlanned) this.projections.set(all, (byPlanned = new WeakMap()));
    let p = byPlanned.get(planned);
    if (!p) {
      const known = new Set(all.map((e) => e.compiled));
      // Views' events are evaluated with the times the rows carry (profileContext, addedEvents).
      const made = eventProjection(
        (planned.every((e) => known.has(e.compiled)) ? all : [...all, ...planned]).map((e) => e.compiled),
        { timesGiven: true },
      );
      p = this.projectionsByKey.get(made.key) ?? made;
      if (this.projectionsByKey.size >= 64) this.projectionsByKey.clear();
      this.projectionsByKey.set(p.key, p);
      byPlanned.set(planned, p);
    }
    return p;
  }

  /**
   * Waits until no evaluation of these profiles is in progress, then marks them in progress; the
   * returned function ends that. Two evaluations of one profile never read the same memberships
   * and both write the same entry (two `realized` events for one entry).
   */
  private async hold(sandboxId: string, profileIds: readonly string[]): Promise<() => void> {
    for (;;) {
      const busy: Array<Promise<void>> = [];
      for (const id of profileIds) {
        const p = this.inFlight.get(sandboxId, id);
        if (p) busy.push(p);
      }
      if (!busy.length) break;
      await Promise.all(busy);
    }
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    for (const id of profileIds) this.inFlight.set(sandboxId, id, mine);
    return () => {
      for (const id of profileIds) if (this.inFlight.get(sandboxId, id) === mine) this.inFlight.delete(sandboxId, id);
      done();
    };
  }

  /**
   * Whether a state's evaluated audiences include every target of the plan. Asked per profile
   * evaluated, of a few long-lived sets (the plans' own and those minus failures): answered once
   * per pair.
   */
  private covers(evaluated: ReadonlySet<unknown>, plan: EvaluationPlan): boolean {
    if (evaluated === plan.compiled) return true;
    let known = this.coverage.get(evaluated);
    if (!known) this.coverage.set(evaluated, (known = new WeakMap()));
    let all = known.get(plan);
    if (all === undefined) known.set(plan, (all = plan.targets.every((t) => evaluated.has(t.compiled))));
    return all;
  }

  /** Remembers what a reusing evaluation saw and evaluated for a profile (bounded, oldest forgotten first). */
  private remember(sandboxId: string, profileId: string, state: EvaluatedState): void {
    this.states.use(sandboxId, profileId, state);
  }

  /** The profile's view (created empty, and made the most recently used), or undefined while stopped. */
  private view(sandboxId: string, profileId: string): ProfileView | undefined {
    if (!this.viewsOn) return undefined;
    const v = this.views.get(sandboxId, profileId) ?? {};
    this.views.use(sandboxId, profileId, v);
    v.usedAt = this.now();
    if (this.holders.delete(v)) this.holders.add(v);
    return v;
  }

  /**
   * A published change reaching the profile's view: anything but an event voids the view; an
   * event voids only its events, unless they already hold it (the edge's own, see eventsStored).
   */
  private changeReachesView(c: ChangeMessage): void {
    if (c.type !== 'event' || c.identitiesEvicted?.length) {
      this.dropView(c.sandboxId, c.profileId);
      return;
    }
    const v = this.views.get(c.sandboxId, c.profileId);
    if (!v) return;
    if (v.events && c.datasetId !== undefined && c.eventId !== undefined && holdsEvent(v.events, c.datasetId, c.eventId, c.eventTime)) return;
    this.setViewEvents(v, undefined);
    v.eventsGen = (v.eventsGen ?? 0) + 1;
  }

  /**
   * Events just committed in this process (ingestion calls this before the change feed hears of
   * them): added to the events the profiles' views hold, so the evaluations that follow (the
   * edge's, the streaming engine's) do not read them back. A read of a profile's events begun
   * before no longer fills its view.
   */
  eventsStored(sandboxId: string, events: ReadonlyArray<{ graphId: string } & EventRow>, created?: ReadonlyMap<string, readonly IdentityRef[]>): void {
    if (!this.viewsOn) return;
    if (created?.size) this.createdViews(sandboxId, events, created);
    for (const e of events) {
      const v = this.views.get(sandboxId, e.graphId);
      if (!v) continue;
      v.eventsGen = (v.eventsGen ?? 0) + 1;
      const list = v.events;
      if (!list || !v.projection || holdsEvent(list, e.datasetId, e.eventId, e.timestamp)) continue;
      let at = list.length;
      while (at > 0 && eventOrder(list[at - 1]!, e) > 0) at--;
      const row = projectRow(e, v.projection);
      const held = list.length;
      // The newest event is appended to the list itself. A copy per event made each visit leave
      // the last visit's list behind, old enough to be promoted: old-generation garbage at the
      // edge's rate, and mark-compact pauses.
      const next = at === held ? (list as ViewRow[]) : [...list];
      next.splice(at, 0, row);
      this.setViewEvents(v, next, (v.eventBytes ?? 0) + row.bytes, held);
    }
  }

  /**
   * Views of profiles the commit just created whole from these events (see eventsStored): no
   * fragment, no membership (nothing could name the profile before), and the events, projected
   * as the sandbox's last evaluation projected them; and which profile their identities resolve
   * to. That is what reading the profile back would find, so a new visitor's first evaluation
   * reads nothing, nor does its next page look its ECID up. Later changes reach these views and
   * identities as they reach any other.
   */
  private createdViews(sandboxId: string, events: ReadonlyArray<{ graphId: string } & EventRow>, created: ReadonlyMap<string, readonly IdentityRef[]>): void {
    const byProfile = new Map<string, EventRow[]>();
    for (const e of events) if (created.has(e.graphId)) pushTo(byProfile, e.graphId, e);
    const projection = this.projectionOf.get(sandboxId);
    for (const [profileId, list] of byProfile) {
      if (this.views.get(sandboxId, profileId)) continue;
      for (const i of created.get(profileId) ?? []) this.holdIdentity(sandboxId, identityKey(i), profileId);
      const v = this.view(sandboxId, profileId)!;
      v.fragments = [];
      v.members = NO_MEMBERS;
      // Every event the profile has: the view covers any reach.
      if (projection) this.holdEvents(v, list.sort(eventOrder), projection, Number.NEGATIVE_INFINITY);
    }
  }

  /** Holds a profile's events at or after `since` (in the store's order) in its view, projected; none past the per-view bound. */
  private holdEvents(v: ProfileView, list: readonly EventRow[], projection: EventProjection, since: number): void {
    if (list.length > MAX_VIEW_EVENTS) return this.setViewEvents(v, undefined);
    let bytes = 0;
    const rows = list.map((r) => {
      const row = projectRow(r, projection);
      bytes += row.bytes;
      return row;
    });
    this.setViewEvents(v, rows, bytes);
    v.projection = projection;
    v.eventsSince = since;
  }

  /** Drops a profile's view (and the events it held). */
  private dropView(sandboxId: string, profileId: string): void {
    const v = this.views.get(sandboxId, profileId);
    if (v) this.uncount(v);
    this.views.delete(sandboxId, profileId);
  }

  /**
   * Sets the events a view holds (`bytes`: their estimated heap, see projectRow), within the
   * per-view and overall bounds (past them it holds none). `before`: how many it held, when
   * `list` is its own list with an event appended in place.
   */
  private setViewEvents(v: ProfileView, list: readonly ViewRow[] | undefined, bytes = 0, before = v.events?.length ?? 0): void {
    const beforeBytes = v.eventBytes ?? 0;
    const bound = this.deps.config.viewBytes;
    let fits = list !== undefined && list.length <= MAX_VIEW_EVENTS && bytes <= bound;
    // A view that holds events and gains some (an event of its profile) may take room from views
    // in use; one that holds none only from idle ones (see makeRoom).
    if (fits && this.heldBytes - beforeBytes + bytes > bound) fits = this.makeRoom(v, this.heldBytes - beforeBytes + bytes - bound, before > 0);
    v.events = fits ? list : undefined;
    v.eventBytes = fits ? bytes : 0;
    this.heldEvents += (v.events?.length ?? 0) - before;
    this.heldBytes += v.eventBytes - beforeBytes;
    if (v.events) this.holders.add(v);
    else this.holders.delete(v);
  }

  /**
   * A view leaving the map (dropped or forgotten): its events no longer count against the bound.
   * They stay on the object, for an evaluation that took them before (it never fills the view
   * again: see current).
   */
  private uncount(v: ProfileView): void {
    if (this.holders.delete(v)) {
      this.heldEvents -= v.events?.length ?? 0;
      this.heldBytes -= v.eventBytes ?? 0;
    }
  }

  /**
   * Makes room for `needed` more bytes of events for `keep` by releasing the events of other views, the
   * least recently used first: only views unused for config.viewIdleMs (stopping at the first
   * used since: the holders are in the order of their last use), unless `keep` already holds
   * events and is growing. Then it takes the room from the least recently used views, idle or
   * not: refusing it would make the growing view give up everything it holds, so at the bound
   * each new event of a returning visitor would cost its view, and every later visit a store
   * read. A view that holds none never takes room from views in use, so a scan of more profiles
   * than the bound holds does not evict the hot ones. A call costs the views it releases and one
   * more. Whether the room was made.
   */
  private makeRoom(keep: ProfileView, needed: number, growing: boolean): boolean {
    const idleBefore = this.now() - this.deps.config.viewIdleMs;
    let freed = 0;
    for (const w of this.holders) {
      if (freed >= needed) break;
      if (w === keep) continue;
      if (!growing && (w.usedAt ?? -Infinity) > idleBefore) break;
      freed += w.eventBytes ?? 0;
      this.setViewEvents(w, undefined);
    }
    return freed >= needed;
  }

  /** Whether `v` is still the profile's view (not dropped since it was taken): only then may a read fill it. */
  private current(sandboxId: string, profileId: string, v: ProfileView | undefined): v is ProfileView {
    return v !== undefined && this.views.get(sandboxId, profileId) === v;
  }

  /**
   * A profile's fragments, from its view when it holds them (the edge reads consent there),
   * else from the store (and kept in the view).
   */
  async fragmentsOf(sandboxId: string, profileId: string): Promise<StoredFragment[]> {
    const v = this.view(sandboxId, profileId);
    if (v?.fragments) return v.fragments;
    const fragments = await this.deps.store.profileFragments(sandboxId, profileId);
    if (this.current(sandboxId, profileId, v)) v.fragments = fragments;
    return fragments;
  }

  /**
   * Evaluates the audiences of `methods` for `profileIds`, writes membership transitions and
   * publishes their events, and schedules the next time-driven re-evaluation of each profile.
   * Profiles and memberships are read with one set-based call each, all writes of the call go
   * to the store in one call each (none when nothing changed).
   *
   * `reuse` (the edge's and the streaming engine's evaluations, which follow profile changes):
   * `arrived` lists, per profile, the keys (changeKey) of the feed changes that caused this
   * evaluation; when every one of them was already held by the state the last reusing
   * evaluation read, and the memberships are still the ones it left, the audiences it evaluated
   * are not evaluated again (nothing they read changed; a time window flipping since is handled
   * by the re-evaluation that evaluation scheduled), unless a membership changed earlier in the
   * same pass; a profile with nothing left to evaluate is not even read. `includes` lists, per
   * profile, changes committed before this call (the edge's own events): their arrival on the
   * feed then costs nothing. When the only changes the state did not hold are events (arrived or
   * included), only the audiences those events can touch are evaluated again (see relevance.ts
   * in the core). Re-evaluations on time and batch runs never skip.
   *
   * Views (while started): reusing evaluations take memberships from the profiles' views; `hot`
   * ones (the edge's and the streaming engine's) take fragments there too and read only events.
   * Every evaluation leaves in the views the memberships it committed.
   */
  async evaluate(
    sandboxId: string,
    profileIds: readonly string[],
    opts: {
      methods: ReadonlySet<EvaluationMethod>;
      audiences?: readonly CompiledEntry[];
      reuse?: boolean;
      arrived?: ReadonlyMap<string, ReadonlyArray<string | undefined>>;
      includes?: ReadonlyMap<string, readonly string[]>;
      hot?: boolean;
      withMemberships?: boolean;
    },
  ): Promise<EvaluationReport> {
    const { audiences } = this.deps;
    const report: EvaluationReport = { profiles: profileIds.length, evaluations: 0, realized: 0, exited: 0, errors: [] };
    // Views keep what every audience of the sandbox reads of events, whichever the plan runs.
    const all = await audiences.compiledAll(sandboxId);
    const planned = opts.audiences ?? all;
    if (this.viewsOn) this.projectionOf.set(sandboxId, this.projectionFor(all, all));
    const plan = this.plan(planned, opts.methods);
    if (!plan.targets.length || !profileIds.length) return report;
    const release = await this.hold(sandboxId, profileIds);
    let events: MembershipEventRow[];
    try {
      events = await this.evaluateHeld(sandboxId, profileIds, plan, this.projectionFor(all, planned), opts, report);
    } finally {
      release();
    }
    if (report.evaluations) this.deps.metrics.audienceEvaluations.inc(report.evaluations);
    const subject = membershipSubject(sandboxId);
    if (this.viewsOn) {
      // Bounded even if the bus lost some: past the bound, views are dropped by our own events.
      if (this.ownEvents.size > 100_000) this.ownEvents.clear();
      for (const e of events) this.ownEvents.add(e.seq);
    }
    // Handed to the bus in one synchronous run (in seq order, as the change feed publishes a
    // page): batch subscribers then take a commit's events together. Awaiting each publication
    // in turn let the subscribers' pumps run between two messages, one message per call.
    if (events.length) await Promise.all(events.map((e) => this.deps.bus.publish(subject, e.profileId, e)));
    return report;
  }

  /**
   * The remembered states of profiles whose data is what their last reusing evaluation read
   * (see evaluate), with the events added since: every arrived change was pending in it (it
   * moves to `held`) or is an event, every included one is held by it or is an event. A change
   * that is not an event (an attribute write) voids the state.
   */
  private unchangedStates(
    sandboxId: string,
    profileIds: readonly string[],
    arrived: ReadonlyMap<string, ReadonlyArray<string | undefined>> | undefined,
    includes: ReadonlyMap<string, readonly string[]> | undefined,
    consumed: ConsumedKeys,
  ): Map<string, Reused> {
    const out = new Map<string, Reused>();
    if (!arrived && !includes) return out;
    for (const profileId of profileIds) {
      const seen = this.states.get(sandboxId, profileId);
      const came = arrived?.get(profileId);
      const known = includes?.get(profileId);
      if (!seen || (!came && !known)) continue;
      let same = true;
      let added: string[] | undefined;
      // Arrived keys are consumed whatever the outcome: a change is awaited only once (the
      // pending ones leave the state: see EvaluatedState.held).
      for (const k of came ?? []) {
        if (k === undefined) same = false;
        else if (seen.pending?.includes(k)) {
          seen.pending = seen.pending.length === 1 ? undefined : seen.pending.filter((p) => p !== k);
          pushTo(consumed, profileId, k);
        } else (added ??= []).push(k);
      }
      // Included keys the feed delivered first are consumed the same way: no evaluation asks again.
      for (const k of known ?? []) {
        if (seen.held?.includes(k)) {
          seen.held = seen.held.length === 1 ? undefined : seen.held.filter((h) => h !== k);
          pushTo(consumed, profileId, k);
        } else (added ??= []).push(k);
      }
      if (same) out.set(profileId, { state: seen, added });
    }
    return out;
  }

  /** Memberships of the profiles: from their views when `useViews`, the rest from the store (kept in the views). */
  private async loadMembers(
    sandboxId: string,
    profileIds: readonly string[],
    views: ReadonlyMap<string, ProfileView>,
    useViews: boolean | undefined,
  ): Promise<Map<string, ReadonlyMap<string, Membership>>> {
    const out = new Map<string, ReadonlyMap<string, Membership>>();
    const missing: string[] = [];
    for (const p of profileIds) {
      const m = useViews ? views.get(p)?.members : undefined;
      if (m) out.set(p, m);
      else missing.push(p);
    }
    if (!missing.length) return out;
    const read = await this.deps.store.memberships(sandboxId, missing);
    for (const p of missing) {
      const members = new Map((read.get(p) ?? []).map((m) => [m.audienceId, m]));
      out.set(p, members);
      const v = views.get(p);
      if (this.current(sandboxId, p, v)) v.members = members;
    }
    return out;
  }

  /**
   * Fragments and events (at or after `since`) of the profiles: with `hot`, fragments held by a
   * view are not read again (only events are), and fragments read are kept in the views; events
   * read are kept projected (`projection`: the parts the sandbox's audiences read). A view
   * holding events from before `since` serves them all (older ones are harmless to evaluate, and
   * another plan may reach further); only those before `kept` (the retention) leave it.
   */
  private async loadData(
    sandboxId: string,
    profileIds: readonly string[],
    since: number,
    kept: number,
    views: ReadonlyMap<string, ProfileView>,
    hot: boolean | undefined,
    projection: EventProjection,
  ): Promise<Map<string, LoadedProfile>> {
    const { store } = this.deps;
    // The events of the views that hold them, taken now: a view may give them up meanwhile.
    const ready: Array<{ p: string; events: readonly ViewRow[] }> = [];
    const held: string[] = [];
    const cold: string[] = [];
    for (const p of profileIds) {
      const v = views.get(p);
      if (!hot || !store.loadEvents || !v?.fragments) cold.push(p);
      else if (v.events && v.projection === projection && v.eventsSince !== undefined && v.eventsSince <= since) ready.push({ p, events: v.events });
      else held.push(p);
    }
    if (hot) {
      if (ready.length) this.readsFromView.inc(ready.length);
      if (held.length + cold.length) this.readsFromStore.inc(held.length + cold.length);
    }
    // Taken before the reads: an event reaching a profile meanwhile keeps this read out of its view.
    const gens = hot ? [...held, ...cold].map((p) => views.get(p)?.eventsGen ?? 0) : [];
    const [out, events]: [Map<string, LoadedProfile>, Map<string, EventRow[]>] = await Promise.all([
      cold.length ? store.loadProfiles(sandboxId, cold, since) : new Map<string, LoadedProfile>(),
      held.length ? store.loadEvents!(sandboxId, held, since) : new Map<string, EventRow[]>(),
    ]);
    const keep = (p: string, k: number, list: readonly EventRow[]): void => {
      const v = views.get(p);
      if (this.current(sandboxId, p, v) && (v.eventsGen ?? 0) === gens[k]) this.holdEvents(v, list, projection, since);
    };
    if (hot) {
      held.forEach((p, k) => keep(p, k, events.get(p) ?? []));
      cold.forEach((p, k) => {
        const v = views.get(p);
        const loaded = out.get(p);
        if (!loaded || !this.current(sandboxId, p, v)) return;
        v.fragments = loaded.fragments;
        keep(p, held.length + k, loaded.events);
      });
    }
    for (const p of held) out.set(p, { fragments: views.get(p)!.fragments!, events: events.get(p) ?? [] });
    for (const { p, events: taken } of ready) {
      const v = views.get(p)!;
      // Older than the retention now: they leave the view too.
      let first = 0;
      let leaving = 0;
      while (first < taken.length && taken[first]!.timestamp < kept) leaving += taken[first++]!.bytes;
      const list = first > 0 ? taken.slice(first) : taken;
      if (first > 0 && this.current(sandboxId, p, v) && v.events === taken) {
        this.setViewEvents(v, list, (v.eventBytes ?? 0) - leaving);
        v.eventsSince = Math.max(v.eventsSince!, kept);
      }
      out.set(p, { fragments: v.fragments!, events: list });
    }
    return out;
  }

  /**
   * The profile an identity belongs to: from memory when a lookup found it before and no
   * merge, eviction or delete concerning it has come through the change feed since, else from
   * the store. A change committed and not yet published can make the answer briefly stale
   * (the profile absorbed by a merge), as any read racing a write.
   */
  async profileIdOf(sandboxId: string, identity: IdentityRef): Promise<string | undefined> {
    const key = identityKey(identity);
    const hit = this.viewsOn ? this.identities.get(sandboxId, key) : undefined;
    if (hit !== undefined) {
      this.identities.use(sandboxId, key, hit);
      return hit.profileId;
    }
    const epoch = this.identityEpoch;
    const profileId = await this.deps.store.findProfileId(sandboxId, identity);
    if (profileId === undefined || !this.viewsOn || epoch !== this.identityEpoch) return profileId;
    this.holdIdentity(sandboxId, key, profileId);
    return profileId;
  }

  /** Remembers which profile an identity (its key) resolves to, until a merge, eviction or delete of the profile. */
  private holdIdentity(sandboxId: string, key: string, profileId: string): void {
    let keys = this.identitiesOf.get(sandboxId, profileId);
    if (!keys) this.identitiesOf.set(sandboxId, profileId, (keys = new Set()));
    keys.add(key);
    this.identities.use(sandboxId, key, { profileId });
  }

  /** Forgets which identities resolve to a profile (it was absorbed or deleted). */
  private dropIdentities(sandboxId: string, profileId: string): void {
    this.identityEpoch++;
    for (const k of this.identitiesOf.get(sandboxId, profileId) ?? []) this.identities.delete(sandboxId, k);
    this.identitiesOf.delete(sandboxId, profileId);
  }

  /** Forgets what is held about a profile (its view and last evaluation): for writers that change it outside the change feed's pace. */
  forget(sandboxId: string, profileId: string): void {
    this.dropView(sandboxId, profileId);
    this.states.delete(sandboxId, profileId);
  }

  /** evaluate() while the profiles are held: returns the membership events written. */
  private async evaluateHeld(
    sandboxId: string,
    allIds: readonly string[],
    plan: EvaluationPlan,
    projection: EventProjection,
    opts: { reuse?: boolean; arrived?: ReadonlyMap<string, ReadonlyArray<string | undefined>>; includes?: ReadonlyMap<string, readonly string[]>; hot?: boolean; withMemberships?: boolean },
    report: EvaluationReport,
  ): Promise<MembershipEventRow[]> {
    const { catalog, config } = this.deps;
    const { policies, compiled: planned } = plan;
    const now = this.now();
    // Events are read as far back as the plan's audiences reach (within the retention): an edge
    // plan of hour-long windows does not read a month of a profile's events.
    const kept = now - config.eventRetentionMs;
    const since = Math.max(kept, now - plan.reachMs - REACH_MARGIN_MS);
    if (opts.withMemberships) report.memberships = new Map();
    const consumed: ConsumedKeys = new Map();
    const unchanged = opts.reuse ? this.unchangedStates(sandboxId, allIds, opts.arrived, opts.includes, consumed) : new Map<string, Reused>();
    const views = new Map<string, ProfileView>();
    if (this.viewsOn) for (const p of allIds) views.set(p, this.view(sandboxId, p)!);
    let profileIds = allIds;
    let loaded: Map<string, LoadedProfile>;
    let current: Map<string, ReadonlyMap<string, Membership>>;
    if (unchanged.size === 0) {
      [loaded, current] = await Promise.all([this.loadData(sandboxId, profileIds, since, kept, views, opts.hot, projection), this.loadMembers(sandboxId, profileIds, views, opts.reuse)]);
    } else {
      // Memberships first: a profile unchanged since an evaluation of every target is not read.
      current = await this.loadMembers(sandboxId, profileIds, views, opts.reuse);
      profileIds = profileIds.filter((profileId) => {
        const reused = unchanged.get(profileId);
        if (!reused) return true;
        const seen = reused.state;
        if (!sameMembers(seen.members, current.get(profileId))) {
          unchanged.delete(profileId);
          return true;
        }
        if (reused.added || !this.covers(seen.evaluated, plan)) return true;
        report.memberships?.set(profileId, seen.members);
        return false;
      });
      loaded = profileIds.length ? await this.loadData(sandboxId, profileIds, since, kept, views, opts.hot, projection) : new Map();
    }
    const enabled = await catalog.profileEnabledIds(sandboxId);
    const writes: MembershipWrite[] = [];
    const confirms: MembershipConfirmation[] = [];
    const schedule: Array<{ profileId: string; dueAt: number }> = [];
    const remembered: Array<[string, EvaluatedState]> = [];
    const left = new Map<string, ReadonlyMap<string, Membership>>();
    const contexts: Array<AudienceContext | undefined> = new Array<AudienceContext | undefined>(policies.length);
    for (const profileId of profileIds) {
      // The view's map, or none: evaluateProfile copies it before its first change (the view
      // keeps what it read until the write succeeds), and most evaluations change nothing.
      const read = current.get(profileId) ?? NO_MEMBERS;
      let profile = loaded.get(profileId);
      if (!profile || (profile.fragments.length === 0 && profile.events.length === 0)) {
        // Nothing within the plan's reach: only memberships it still holds can change (they end,
        // as they would with its older events read: those cannot qualify it).
        if (read.size === 0) continue;
        profile = NOTHING_LOADED;
      }
      // What a reusing evaluation of this very state, or of it before some events were added,
      // already evaluated: skipped unless a membership changes earlier in this pass (targets are
      // in dependency order) or an added event can touch it (see relevance.ts in the core).
      const reused = unchanged.get(profileId);
      let done = reused?.state.evaluated;
      let added: EvalState | undefined;
      if (reused?.added) {
        const events = addedEvents(profile.events, reused.added);
        if (events) added = this.addedState.bind({ profile: {}, events: events.bodies, eventTimes: eventTimesFrom(events.times), now, inSegment: () => false });
        else done = undefined;
      }
      const { next, failed, members } = this.evaluateProfile(sandboxId, profileId, profile, read, plan, enabled, now, done, added, contexts, writes, confirms, report, opts.hot === true);
      // Earliest wins: a re-evaluation this engine scheduled, still ahead and not later, stands.
      const due = views.get(profileId)?.dueAt;
      if (next !== Infinity && !(due !== undefined && due > now && due <= next)) schedule.push({ profileId, dueAt: next });
      if (opts.reuse) {
        // Whatever the last state held was committed before this read too.
        const last = this.states.get(sandboxId, profileId);
        // The lists are never changed in place (a failed write keeps the last state as it was):
        // adding makes a new one, and a list nothing is added to is shared with the last state
        // (of the two, only one is kept). Short lists, not sets: copying a set per evaluation
        // (rehashing its keys) took half of this function's own time in a profile.
        let pending = last?.pending?.length ? last.pending : undefined;
        let held = last?.held?.length ? last.held : undefined;
        // A key both awaited and delivered (pending, then arrived; or held, then included) is
        // done with: the lists hold a change only between its two ends, so they stay short.
        const delivered = consumed.get(profileId);
        for (const k of opts.arrived?.get(profileId) ?? []) if (k !== undefined && !delivered?.includes(k)) held = withHeld(held, k);
        const included = opts.includes?.get(profileId)?.filter((k) => !held?.includes(k) && !pending?.includes(k) && !delivered?.includes(k));
        if (included?.length) pending = pending ? [...pending, ...included] : included;
        const evaluated = failed ? new Set([...planned].filter((c) => !failed!.includes(c))) : planned;
        // The same state as the last (what the streaming engine finds after the edge evaluated
        // the event): that one is kept, not a copy of it.
        const same = last !== undefined && last.members === members && last.evaluated === evaluated && last.pending === pending && last.held === held;
        remembered.push([profileId, same ? last : { members, evaluated, pending, held }]);
      }
      report.memberships?.set(profileId, members);
      left.set(profileId, members);
    }
    // Asked together: the embedded store commits both in one group; a re-evaluation asked for
    // when the membership write fails only re-evaluates once more.
    const [events] = await Promise.all([
      writes.length ? this.deps.store.writeMemberships(sandboxId, writes, now) : ([] as MembershipEventRow[]),
      schedule.length ? this.deps.store.scheduleReevaluations(sandboxId, schedule) : undefined,
    ]);
    // Only once written: a failed write leaves nothing remembered, so the next pass evaluates again.
    for (const [profileId, state] of remembered) this.remember(sandboxId, profileId, state);
    this.confirmations.add(sandboxId, confirms);
    if (this.confirmations.full) await this.confirmations.flush();
    for (const [profileId, members] of left) {
      const v = views.get(profileId);
      if (this.current(sandboxId, profileId, v)) v.members = members;
    }
    for (const { profileId, dueAt } of schedule) {
      const v = views.get(profileId);
      if (this.current(sandboxId, profileId, v)) v.dueAt = v.dueAt !== undefined && v.dueAt > now ? Math.min(v.dueAt, dueAt) : dueAt;
    }
    return events;
  }

  /**
   * Evaluates the plan's targets for one profile (skipping those in `done` until a membership
   * changes) from its memberships `read` (never changed: a copy takes the first change) and
   * appends its writes. Apart from evaluateHeld on purpose: it
   * runs per profile, so it is optimised after a few calls, whereas a loop inside the large async
   * evaluateHeld (called once per batch) ran unoptimised, allocating per target, for many batches.
   * Returns the earliest time a timed target will change by itself, and the targets that threw.
   */
  private evaluateProfile(
    sandboxId: string,
    profileId: string,
    profile: LoadedProfile,
    read: ReadonlyMap<string, Membership>,
    { targets, policies, compiled: planned, relevance }: EvaluationPlan,
    enabled: ReadonlySet<string>,
    now: number,
    done: ReadonlySet<unknown> | undefined,
    added: EvalState | undefined,
    contexts: Array<AudienceContext | undefined>,
    writes: MembershipWrite[],
    confirms: MembershipConfirmation[],
    report: EvaluationReport,
    hot: boolean,
  ): { next: number; failed: unknown[] | undefined; members: ReadonlyMap<string, Membership> } {
    let members = read;
    let own: Map<string, Membership> | undefined;
    const inSegment = (id: string): boolean => {
      const m = members.get(id);
      return m !== undefined && m.status !== 'exited';
    };
    // Every target is evaluated or skipped as done except those whose evaluation threw: what
    // the state records as evaluated is the plan's set minus those (no set built per profile).
    let failed: unknown[] | undefined;
    let changed = false;
    contexts.fill(undefined);
    let next = Infinity;
    // One evaluation state for every audience of the profile (re-bound when the policy's context changes).
    const state = this.evalState;
    let bound: AudienceContext | undefined;
    // Which targets the added events can touch, each distinct event test run once for all.
    const touched = added ? relevance.touched(added) : undefined;
    const doneAll = done !== undefined && done === planned;
    for (let i = 0; i < targets.length; i++) {
      const { row, compiled, policy, timed } = targets[i]!;
      if (!changed && (doneAll || done?.has(compiled)) && !(touched !== undefined && touched[i] === 1)) continue;
      let qualifies: boolean;
      try {
        const ctx = (contexts[policy] ??= profileContext(profile, enabled, policies[policy]!, now, inSegment, hot));
        if (bound !== ctx) {
          state.bind(ctx);
          bound = ctx;
        }
        qualifies = compiled.holds(state);
        if (timed) {
          const n = changeAfter(compiled.nextOf(state), now);
          if (n !== undefined && n > now && n < next) next = n;
        }
      } catch (err) {
        if (report.errors.length < MAX_REPORTED_ERRORS) report.errors.push({ profileId, audienceId: row.id, message: (err as Error).message });
        this.deps.log.warn({ err, sandboxId, profileId, audienceId: row.id }, 'audience evaluation failed for a profile');
        (failed ??= []).push(compiled);
        continue;
      }
      report.evaluations++;
      const prev = members.get(row.id);
      // Not in and not qualifying, or confirmed `existing`: nothing to write (the common case).
      if (qualifies ? prev?.status === 'existing' : prev === undefined || prev.status === 'exited') continue;
      const t = transition(row.id, prev, qualifies, now);
      if (!t.changed) continue;
      if (!own) members = own = new Map(read);
      if (t.next) own.set(row.id, t.next);
      else own.delete(row.id);
      // Entering or leaving is what later audiences can read (inSegment) and is written with the
      // evaluation; a confirmation (realized → existing) leaves them as they were and is written
      // after it (see confirmations.ts).
      if (!t.event) {
        if (t.next) confirms.push({ profileId, audienceId: row.id, lastQualificationTime: t.next.lastQualificationTime });
        continue;
      }
      changed = true;
      writes.push({ profileId, audienceId: row.id, membership: t.next ?? null, event: t.event });
      if (t.event === 'realized') report.realized++;
      if (t.event === 'exited') report.exited++;
    }
    return { next, failed, members };
  }
}

/** The memberships of a profile that has none. */
const NO_MEMBERS: ReadonlyMap<string, Membership> = new Map();

/**
 * Whether a list of events (in the store's order, see eventOrder) holds this one. With its time
 * known, only the events at that time are compared, walking back from the newest: a new event is
 * found missing at once instead of after comparing every event the profile has.
 */
function holdsEvent(events: readonly EventRow[], datasetId: string, eventId: string, timestamp: number | undefined): boolean {
  if (timestamp === undefined) return events.some((e) => e.eventId === eventId && e.datasetId === datasetId);
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.timestamp < timestamp) return false;
    if (e.timestamp === timestamp && e.eventId === eventId && e.datasetId === datasetId) return true;
  }
  return false;
}

/** The store's order of a profile's events: by time, then by id (bytes, as SQLite's BINARY). */
function eventOrder(a: EventRow, b: EventRow): number {
  if (a.timestamp !== b.timestamp) return a.timestamp - b.timestamp;
  return a.eventId === b.eventId ? 0 : Buffer.compare(Buffer.from(a.eventId), Buffer.from(b.eventId));
}

/** Estimated heap of an event row's own object, timestamp and size (its dataset id is shared). */
const ROW_BYTES = 80;

/** An event row as a view holds it: its body projected, and the heap it adds (see projectRow). */
type ViewRow = EventRow & { readonly bytes: number };

/**
 * An event row as a view holds it: the body projected (a row of its own: the source may carry
 * more fields). Its `bytes` count the body only when the projection made it: a body shared with
 * earlier events (see projectEvent) is counted once, with the row that made it, not with each row
 * holding it. Once that row leaves, others may still hold the body: the count then runs short by
 * at most the projection's shared bodies (MAX_SHARED, each under a few hundred bytes).
 */
function projectRow(r: EventRow, projection: EventProjection): ViewRow {
  const hits = projection.hits;
  const body = projectEvent(r.body, projection);
  const bytes = ROW_BYTES + approxJsonBytes(r.eventId) + (projection.hits === hits ? approxJsonBytes(body) : 0);
  return { datasetId: r.datasetId, eventId: r.eventId, timestamp: r.timestamp, body, bytes };
}

/**
 * The bodies and times of the events with these change keys among a profile's loaded events (oldest
 * first), or undefined when one is not there (then everything is evaluated).
 */
function addedEvents(events: readonly EventRow[], keys: readonly string[]): { bodies: Array<Record<string, unknown>>; times: number[] } | undefined {
  const bodies: Array<Record<string, unknown>> = [];
  const times: number[] = [];
  for (let i = events.length - 1; i >= 0 && bodies.length < keys.length; i--) {
    const e = events[i]!;
    if (keys.includes(eventChangeKey(e.datasetId, e.eventId))) {
      bodies.push(e.body);
      times.push(e.timestamp);
    }
  }
  return bodies.length === keys.length ? { bodies: bodies.reverse(), times: times.reverse() } : undefined;
}

/** A state's `held` with a delivered change key added: the same list when it holds the key, else a new one (the oldest forgotten past MAX_HELD). */
function withHeld(held: readonly string[] | undefined, key: string): readonly string[] {
  if (!held?.length) return [key];
  if (held.includes(key)) return held;
  const next = held.slice(held.length >= MAX_HELD ? held.length - MAX_HELD + 1 : 0);
  next.push(key);
  return next;
}

/** Key of an identity in a sandbox's part of the engine's identity map. */
function identityKey(i: IdentityRef): string {
  return `${i.ns}\u0000${i.id}`;
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
  /** The targets' event relevance, evaluated together (in target order). */
  relevance: RelevanceIndex;
  /** How far back the targets' event conditions reach (ms; Infinity when one has no window): older events cannot change a result. */
  reachMs: number;
}

/** Methods the streaming evaluator handles on each change. */
export const STREAMING_METHODS: ReadonlySet<EvaluationMethod> = new Set(['streaming', 'edge']);
/** Every method (re-evaluations on time, full batch runs). */
export const ALL_METHODS: ReadonlySet<EvaluationMethod> = new Set(['streaming', 'edge', 'batch']);
