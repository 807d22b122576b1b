/**
 * Activation: decides, per dataflow, which profiles to export (seed 001's rules) from the
 * membership-event log and the profile change log — each read from a durable cursor, so a crash
 * loses nothing — and writes the exports to the durable outbox. Also backfills newly mapped
 * audiences and builds dry runs.
 */
import {
  DEFAULT_MERGE_POLICY,
  AudientError,
  buildIdentityMap,
  decideExport,
  mergeFragments,
  namespaceKey,
  type ExportDecision,
  type ExportRecord,
  type ExportTrigger,
  type IdentityMap,
  type IdentityRef,
  type Membership,
  type ProfileChange,
  type RequestDescriptor,
} from '@audient/core';
import type { MembershipEventRow, OutboxRow, Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Bus } from '../bus/port.js';
import type { AudienceService } from '../services/audiences.js';
import type { Catalog } from '../services/catalog.js';
import type { ChangeMessage } from '../services/change-feed.js';
import type { Jobs } from '../services/jobs.js';
import type { Connections } from './connections.js';
import type { Dataflow, Dataflows } from './dataflows.js';
import { mappedIdentities } from './dataflows.js';
import { authHeadersForDryRun } from './delivery.js';
import { SandboxCache } from '../sandbox-cache.js';
import { CursorKeeper } from '../services/cursor-keeper.js';

const PAGE = 500;
const HOUR = 3_600_000;
/** Messages taken from the bus per handler call. */
const BUS_BATCH = 1000;
/** How long a sandbox's cached dataflows and audience names are trusted without a change seen here. */
const CONTEXT_TTL_MS = 5_000;
/** Delay before a failed drain is retried from the durable cursors. */
const RETRY_MS = 1_000;
const MEMBER_CURSOR = 'activation-memberships';
const CHANGE_CURSOR = 'activation-changes';

/** A change as decisions read it: from the bus (a ChangeMessage) or from the log (a ChangeRow). */
interface SeqChange {
  seq: number;
  sandboxId: string;
  change: ProfileChange;
}

/**
 * One log's position and what the bus delivered past it. Messages continuing the cursor without a
 * gap are decided from memory; a gap (a restart, an event written by another process, a failure)
 * switches to reading the durable log until it is caught up.
 */
class LogTail<T extends { seq: number }> {
  /** The cursor as last read or written (undefined: read the durable one). */
  cursor: number | undefined;
  /** Read the log (not the inbox) until a short page: at start and after a gap or a failure. */
  lagging = true;
  private inbox: T[] = [];
  private sorted = true;

  push(item: T): void {
    const last = this.inbox.at(-1);
    if (last && last.seq > item.seq) this.sorted = false;
    this.inbox.push(item);
  }

  /** Forgets delivered messages: everything past the durable cursor is read from the log again. */
  reset(): void {
    this.cursor = undefined;
    this.lagging = true;
    this.inbox = [];
    this.sorted = true;
  }

  /**
   * The next items past the cursor, up to `limit`: the inbox's contiguous run when it continues
   * the cursor, else a page of the log (`read`).
   */
  async next(limit: number, read: (after: number, limit: number) => Promise<T[]>): Promise<T[]> {
    const cursor = this.cursor!;
    if (!this.sorted) {
      this.inbox.sort((a, b) => a.seq - b.seq);
      this.sorted = true;
    }
    let from = 0;
    while (from < this.inbox.length && this.inbox[from]!.seq <= cursor) from++;
    if (from) this.inbox = this.inbox.slice(from);
    if (!this.lagging) {
      if (!this.inbox.length) return [];
      if (this.inbox[0]!.seq === cursor + 1) {
        let to = 1;
        while (to < this.inbox.length && to < limit && this.inbox[to]!.seq <= this.inbox[to - 1]!.seq + 1) to++;
        // Duplicates (same seq twice) are dropped here; the run is strictly increasing.
        const run = this.inbox.slice(0, to).filter((x, i, a) => i === 0 || x.seq !== a[i - 1]!.seq);
        this.inbox = this.inbox.slice(to);
        return run;
      }
      this.lagging = true;
    }
    const rows = await read(cursor, limit);
    if (rows.length < limit) {
      this.lagging = false;
      // Everything published was committed before: messages the log does not hold past the cursor are not ours.
      if (!rows.length) this.inbox = [];
    }
    return rows;
  }
}

/** The profile as exports see it. */
interface ProfileSnapshot {
  profileId: string;
  attributes: Record<string, unknown>;
  identityMap: IdentityMap;
  memberships: Membership[];
}

/** A row to queue in the outbox. */
type QueuedExport = Pick<OutboxRow, 'sandboxId' | 'dataflowId' | 'profileId' | 'idempotencyKey' | 'payload' | 'createdAt'>;

/** What the logs' page says about one profile. */
interface PendingProfile {
  /** Audiences whose membership changed → the first event's seq. */
  audiences: Map<string, number>;
  identitiesChanged: boolean;
  attributePaths: Set<string>;
  /** The first relevant change's seq, when a change is in the page. */
  changeSeq: number | undefined;
}

/** Exclusion reason of a profile with no partner id synced to its ECIDs. */
export const NO_SYNCED_ID = 'no partner id synced to its ECIDs';

/** Hour bucket of a time. */
export const hourOf = (t: number): number => Math.floor(t / HOUR) * HOUR;

/** Export decisions for every sandbox. */
export class ActivationService {
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private unsubscribers: Array<() => void> = [];
  private readonly wakeDelivery: Array<() => void> = [];
  private readonly members = new LogTail<MembershipEventRow>();
  private readonly changes = new LogTail<SeqChange>();
  /** The logs' durable cursors, written behind the drain (see cursor-keeper.ts). */
  private readonly memberCursor: CursorKeeper;
  private readonly changeCursor: CursorKeeper;
  /** Active dataflows per sandbox (dropped when a dataflow changes, rebuilt after CONTEXT_TTL_MS). */
  private readonly flowCache = new SandboxCache<Dataflow[]>(CONTEXT_TTL_MS);
  /** Audience names per sandbox (dropped when an audience changes, rebuilt after CONTEXT_TTL_MS). */
  private readonly nameCache = new SandboxCache<Map<string, string>>(CONTEXT_TTL_MS);

  constructor(
    private readonly deps: {
      store: Store;
      bus: Bus;
      catalog: Catalog;
      audiences: AudienceService;
      connections: Connections;
      dataflows: Dataflows;
      jobs: Jobs;
      log: Logger;
      now: () => number;
    },
  ) {
    this.memberCursor = new CursorKeeper(deps.store, MEMBER_CURSOR, deps.log);
    this.changeCursor = new CursorKeeper(deps.store, CHANGE_CURSOR, deps.log);
    deps.dataflows.onChanged((sandboxId) => this.flowCache.drop(sandboxId));
    deps.connections.onChanged((sandboxId) => this.flowCache.drop(sandboxId));
    deps.audiences.onChanged((sandboxId) => this.nameCache.drop(sandboxId));
    // Starting the backfill job (not waiting for it) is part of saving the dataflow.
    deps.dataflows.onSaved(async (sandboxId, flow, added) => {
      if (added.length && flow.status === 'active') await this.backfill(sandboxId, flow, added);
    });
  }

  /** Called whenever exports were queued (the delivery runtime wakes up). */
  onQueued(fn: () => void): void {
    this.wakeDelivery.push(fn);
  }

  /**
   * Takes membership events and profile changes from the bus in batches; the handler returns once
   * they are decided (so `bus.drain()` covers activation). A drain at start catches up from the
   * durable cursors.
   */
  start(): void {
    this.stopped = false;
    // Whatever was published while not subscribed is only in the logs: read them from the durable cursors.
    this.members.reset();
    this.changes.reset();
    this.unsubscribers.push(
      this.deps.bus.subscribeBatch<MembershipEventRow>('memberships.*', 'activation', BUS_BATCH, async (msgs) => {
        for (const m of msgs) this.members.push(m.payload);
        this.poke();
        await this.flush();
      }),
      this.deps.bus.subscribeBatch<ChangeMessage>('changes.*', 'activation', BUS_BATCH, async (msgs) => {
        for (const m of msgs) this.changes.push({ seq: m.payload.seq, sandboxId: m.payload.sandboxId, change: m.payload });
        this.poke();
        await this.flush();
      }),
    );
    this.poke();
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.flush();
    await this.cursorsWritten();
  }

  /** Resolves once the cursors' latest positions are durable (they are written behind the drain). */
  async cursorsWritten(): Promise<void> {
    await Promise.all([this.memberCursor.settled(), this.changeCursor.settled()]);
  }

  /** Decides whatever was delivered or logged past the cursors. */
  poke(): void {
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain()
      .catch((err: unknown) => {
        this.deps.log.error({ err }, 'activation drain failed; resuming from the durable cursors');
        // The durable cursors did not move past what was not decided: read the logs from them.
        this.members.reset();
        this.changes.reset();
        if (!this.stopped && !this.retryTimer) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            if (!this.stopped) this.poke();
          }, RETRY_MS);
          this.retryTimer.unref();
        }
      })
      .finally(() => {
        this.draining = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  /** Resolves once everything delivered or logged so far has been decided. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * The active dataflows that push: those of edge (pull-only) connections are left out here, so
   * that membership events of audiences mapped only to the edge load no profile (the page pulls
   * them within its request). A connection that cannot be opened is left out, as decide would.
   */
  private activeFlows(sandboxId: string): Promise<Dataflow[]> {
    return this.flowCache.get(sandboxId, async () => {
      const out: Dataflow[] = [];
      for (const f of await this.deps.dataflows.list(sandboxId)) {
        if (f.status !== 'active') continue;
        const conn = await this.deps.connections.open(sandboxId, f.connectionId).catch(() => undefined);
        if (conn && conn.definition.category !== 'edge') out.push(f);
      }
      return out;
    });
  }

  private async loadProfile(sandboxId: string, profileId: string, enabled: ReadonlySet<string>): Promise<ProfileSnapshot | undefined> {
    const { store } = this.deps;
    const [identities, fragments, memberships] = await Promise.all([
      store.profileIdentities(sandboxId, profileId),
      store.profileFragments(sandboxId, profileId),
      store.memberships(sandboxId, [profileId]),
    ]);
    if (!identities.length) return undefined;
    return {
      profileId,
      attributes: mergeFragments(fragments.filter((f) => enabled.has(f.datasetId)), DEFAULT_MERGE_POLICY),
      identityMap: buildIdentityMap(identities),
      memberships: memberships.get(profileId) ?? [],
    };
  }

  /** Snapshots of many profiles: fragments and memberships read for all of them at once. */
  private async loadProfiles(sandboxId: string, profileIds: readonly string[], enabled: ReadonlySet<string>): Promise<Map<string, ProfileSnapshot>> {
    const out = new Map<string, ProfileSnapshot>();
    if (!profileIds.length) return out;
    const { store } = this.deps;
    const [loaded, memberships] = await Promise.all([
      store.loadProfiles(sandboxId, profileIds, Number.MAX_SAFE_INTEGER), // no events: exports carry none
      store.memberships(sandboxId, profileIds),
    ]);
    for (const profileId of profileIds) {
      const identities = await store.profileIdentities(sandboxId, profileId);
      if (!identities.length) continue;
      const fragments = loaded.get(profileId)?.fragments ?? [];
      out.set(profileId, {
        profileId,
        attributes: mergeFragments(fragments.filter((f) => enabled.has(f.datasetId)), DEFAULT_MERGE_POLICY),
        identityMap: buildIdentityMap(identities),
        memberships: memberships.get(profileId) ?? [],
      });
    }
    return out;
  }

  private audienceNames(sandboxId: string): Promise<Map<string, string>> {
    return this.nameCache.get(sandboxId, async () => new Map((await this.deps.audiences.list(sandboxId)).map((a) => [a.id, a.name])));
  }

  private enabledDatasets(sandboxId: string): Promise<ReadonlySet<string>> {
    return this.deps.catalog.profileEnabledIds(sandboxId);
  }

  /**
   * Decides and queues exports of one profile for the given dataflows: one export per dataflow
   * however many triggers (its reasons together; the first trigger's key), or one exclusion.
   * Destinations that address users by synced ids get them from the ID-sync table here.
   */
  private async decide(
    sandboxId: string,
    flows: readonly Dataflow[],
    profile: ProfileSnapshot,
    triggers: ReadonlyArray<{ trigger: ExportTrigger; key: string }>,
    names: ReadonlyMap<string, string>,
    queue: QueuedExport[],
    stats: Map<string, Record<string, number>>,
  ): Promise<void> {
    for (const flow of flows) {
      const conn = await this.deps.connections.open(sandboxId, flow.connectionId).catch(() => undefined);
      // Edge destinations are pulled by the page within its request: nothing to push (activeFlows
      // leaves them out already; a backfill can name one).
      if (!conn || conn.definition.category === 'edge') continue;
      let exported: ExportRecord | undefined;
      let excluded: string | undefined;
      const reasons = new Set<ExportRecord['reasons'][number]>();
      for (const { trigger, key } of triggers) {
        const d = decideExport({
          dataflow: flow,
          identities: mappedIdentities(conn.definition),
          trigger,
          profile,
          audienceNames: names,
          idempotencyKey: `${flow.id}:${profile.profileId}:${key}`,
        });
        if (d.action === 'export') {
          exported ??= d.record;
          for (const r of d.record.reasons) reasons.add(r);
        } else if (d.action === 'exclude') excluded ??= d.reason;
      }
      if (!exported && excluded === undefined) continue;
      const s = stats.get(flow.id) ?? {};
      s['received'] = (s['received'] ?? 0) + 1;
      if (exported && conn.definition.idSync) {
        const uids = await this.syncedIds(sandboxId, conn.id, profile.identityMap);
        if (uids.length) exported = { ...exported, identities: { ...exported.identities, [conn.definition.idSync.target]: uids } };
        else {
          exported = undefined;
          excluded = NO_SYNCED_ID;
        }
      }
      if (exported) {
        const record = { ...exported, reasons: [...reasons] };
        queue.push({ sandboxId, dataflowId: flow.id, profileId: profile.profileId, idempotencyKey: record.idempotencyKey, payload: record, createdAt: this.deps.now() });
      } else {
        s[`excluded:${excluded}`] = (s[`excluded:${excluded}`] ?? 0) + 1;
      }
      stats.set(flow.id, s);
    }
  }

  /** The partner ids synced to a profile's ECIDs for one connection (partner), distinct. */
  private async syncedIds(sandboxId: string, partnerId: string, identityMap: IdentityMap): Promise<string[]> {
    const ecids = Object.entries(identityMap)
      .filter(([ns]) => namespaceKey(ns) === 'ecid')
      .flatMap(([, ids]) => ids.map((i) => i.id));
    if (!ecids.length) return [];
    return [...new Set((await this.deps.store.idSyncsOf(sandboxId, partnerId, ecids)).map((r) => r.partnerUid))];
  }

  private async commit(
    sandboxId: string,
    queue: readonly QueuedExport[],
    stats: Map<string, Record<string, number>>,
  ): Promise<void> {
    if (queue.length) await this.deps.store.enqueueExports(queue);
    const hour = hourOf(this.deps.now());
    for (const [flowId, deltas] of stats) await this.deps.store.addActivationStats(sandboxId, flowId, hour, deltas);
    if (queue.length) for (const fn of this.wakeDelivery) fn();
  }

  /**
   * Takes the next run of membership events and of profile changes past the in-memory cursors —
   * from the bus messages when they continue the cursor, else a page of the durable log (after a
   * restart, a gap or a failure) — decides them together (`decidePage`), then moves the cursors
   * (their durable copies are written behind). A crash before they are written replays the run
   * from the log: the same idempotency keys, so receivers drop duplicates.
   */
  private async drain(): Promise<void> {
    const { store } = this.deps;
    this.members.cursor ??= await store.getCursor(MEMBER_CURSOR);
    this.changes.cursor ??= await store.getCursor(CHANGE_CURSOR);
    for (;;) {
      const events = await this.members.next(PAGE, (after, limit) => store.readMembershipEvents(undefined, after, limit));
      const rows = await this.changes.next(PAGE, async (after, limit) =>
        (await store.readChanges(after, limit)).map((r) => ({ seq: r.seq, sandboxId: r.sandboxId, change: r.change })),
      );
      if (!events.length && !rows.length) break;
      await this.decidePage(events, rows);
      if (events.length) {
        this.memberCursor.set(events.at(-1)!.seq);
        this.members.cursor = events.at(-1)!.seq;
      }
      if (rows.length) {
        this.changeCursor.set(rows.at(-1)!.seq);
        this.changes.cursor = rows.at(-1)!.seq;
      }
    }
  }

  /**
   * Decides one page: groups what it says per sandbox and profile, keeps the profiles an active
   * dataflow of their sandbox can be concerned by (a flow mapping a changed audience; any flow for
   * a profile change), loads those profiles once (after the read, so the snapshot holds everything
   * the page says), decides one export per dataflow and profile with the page's triggers together
   * and writes the page's exports in one outbox write per sandbox. A sandbox without an active
   * dataflow costs nothing more than the grouping.
   */
  private async decidePage(events: readonly MembershipEventRow[], rows: readonly SeqChange[]): Promise<void> {
    // The active dataflows of the page's sandboxes, and the audiences they map.
    const flowsOf = new Map<string, Dataflow[]>();
    const mappedOf = new Map<string, Set<string>>();
    for (const item of [events, rows]) {
      for (const { sandboxId } of item) {
        if (flowsOf.has(sandboxId)) continue;
        const flows = await this.activeFlows(sandboxId);
        flowsOf.set(sandboxId, flows);
        mappedOf.set(sandboxId, new Set(flows.flatMap((f) => f.audienceIds)));
      }
    }
    // What the page says per sandbox and profile, for what an active dataflow can be concerned by.
    const work = new Map<string, Map<string, PendingProfile>>();
    const pending = (sandboxId: string, profileId: string): PendingProfile => {
      let bySandbox = work.get(sandboxId);
      if (!bySandbox) work.set(sandboxId, (bySandbox = new Map()));
      let p = bySandbox.get(profileId);
      if (!p) bySandbox.set(profileId, (p = { audiences: new Map(), identitiesChanged: false, attributePaths: new Set(), changeSeq: undefined }));
      return p;
    };
    for (const e of events) {
      if (!mappedOf.get(e.sandboxId)!.has(e.audienceId)) continue;
      const p = pending(e.sandboxId, e.profileId);
      if (!p.audiences.has(e.audienceId)) p.audiences.set(e.audienceId, e.seq);
    }
    for (const row of rows) {
      if (!flowsOf.get(row.sandboxId)!.length) continue;
      const c = row.change;
      const identitiesChanged = !!(c.identitiesAdded?.length || c.identitiesEvicted?.length);
      const attributePaths = c.attributePaths ?? [];
      if (c.type === 'delete' || c.type === 'merge' || (!identitiesChanged && !attributePaths.length)) continue;
      const p = pending(row.sandboxId, c.profileId);
      p.identitiesChanged ||= identitiesChanged;
      for (const a of attributePaths) p.attributePaths.add(a);
      p.changeSeq ??= row.seq;
    }
    for (const [sandboxId, profiles] of work) {
      const flows = flowsOf.get(sandboxId)!;
      const relevantOf = new Map<string, Dataflow[]>();
      for (const [profileId, p] of profiles) {
        const relevant = flows.filter((f) => p.changeSeq !== undefined || f.audienceIds.some((a) => p.audiences.has(a)));
        if (relevant.length) relevantOf.set(profileId, relevant);
      }
      if (!relevantOf.size) continue;
      const [enabled, names] = await Promise.all([this.enabledDatasets(sandboxId), this.audienceNames(sandboxId)]);
      const queue: QueuedExport[] = [];
      const stats = new Map<string, Record<string, number>>();
      const snapshots = await this.loadProfiles(sandboxId, [...relevantOf.keys()], enabled);
      for (const [profileId, relevant] of relevantOf) {
        const p = profiles.get(profileId)!;
        const profile = snapshots.get(profileId);
        if (!profile) continue;
        for (const flow of relevant) {
          const triggers: Array<{ trigger: ExportTrigger; key: string }> = [];
          for (const a of flow.audienceIds) {
            const seq = p.audiences.get(a);
            if (seq !== undefined) triggers.push({ trigger: { kind: 'membership', audienceId: a }, key: `m${seq}` });
          }
          if (p.changeSeq !== undefined) {
            triggers.push({ trigger: { kind: 'profile', identitiesChanged: p.identitiesChanged, attributePaths: [...p.attributePaths] }, key: `c${p.changeSeq}` });
          }
          await this.decide(sandboxId, [flow], profile, triggers, names, queue, stats);
        }
      }
      await this.commit(sandboxId, queue, stats);
    }
  }

  /** Exports the current members of newly mapped audiences (a job). */
  private async backfill(sandboxId: string, flow: Dataflow, audienceIds: readonly string[]): Promise<void> {
    await this.deps.jobs.start(sandboxId, 'dataflow-backfill', { dataflowId: flow.id, audienceIds, queued: 0 }, async (update) => {
      const enabled = await this.enabledDatasets(sandboxId);
      const names = await this.audienceNames(sandboxId);
      const seen = new Set<string>();
      let queued = 0;
      for (const audienceId of audienceIds) {
        let after: string | undefined;
        for (;;) {
          const page = await this.deps.store.listMembers(sandboxId, audienceId, { statuses: ['realized', 'existing'], limit: PAGE, after });
          const queue: QueuedExport[] = [];
          const stats = new Map<string, Record<string, number>>();
          for (const m of page) {
            if (seen.has(m.profileId)) continue;
            seen.add(m.profileId);
            const profile = await this.loadProfile(sandboxId, m.profileId, enabled);
            if (profile) await this.decide(sandboxId, [flow], profile, [{ trigger: { kind: 'backfill' }, key: `b${flow.updatedAt}` }], names, queue, stats);
          }
          await this.commit(sandboxId, queue, stats);
          queued += queue.length;
          await update({ queued });
          if (page.length < PAGE) break;
          after = page.at(-1)!.profileId;
        }
      }
      return { queued };
    });
  }

  /** The exact requests a dataflow would send for one profile now, secrets masked. */
  async dryRun(
    sandboxId: string,
    dataflowId: string,
    identity: IdentityRef,
  ): Promise<{ decision: 'export' | 'exclude'; reason?: string; record?: ExportRecord; requests: RequestDescriptor[] }> {
    const flow = await this.deps.dataflows.get(sandboxId, dataflowId);
    const profileId = await this.deps.store.findProfileId(sandboxId, identity);
    if (!profileId) throw new AudientError('NOT_FOUND', `no profile has the identity ${identity.ns}:${identity.id}`);
    const enabled = await this.enabledDatasets(sandboxId);
    const profile = (await this.loadProfile(sandboxId, profileId, enabled))!;
    const conn = await this.deps.connections.open(sandboxId, flow.connectionId);
    const audienceId = flow.audienceIds[0];
    if (!audienceId) throw new AudientError('BAD_REQUEST', 'the dataflow maps no audience');
    let d: ExportDecision = decideExport({
      dataflow: flow,
      identities: mappedIdentities(conn.definition),
      trigger: { kind: 'membership', audienceId },
      profile,
      audienceNames: await this.audienceNames(sandboxId),
      idempotencyKey: `${flow.id}:${profileId}:dry-run`,
    });
    if (d.action === 'export' && conn.definition.idSync) {
      const uids = await this.syncedIds(sandboxId, conn.id, profile.identityMap);
      d = uids.length
        ? { ...d, record: { ...d.record, identities: { ...d.record.identities, [conn.definition.idSync.target]: uids } } }
        : { action: 'exclude', reason: NO_SYNCED_ID };
    }
    if (d.action !== 'export') return { decision: 'exclude', reason: d.action === 'exclude' ? d.reason : d.why, requests: [] };
    const mask = (s: string): string => conn.secretValues.filter((v) => v.length >= 3).reduce((acc, v) => acc.split(v).join('••••••'), s);
    const requests = conn.definition.toRequests([d.record], { settings: conn.settings, timeoutMs: conn.definition.timeoutMs }).map((r) => ({
      ...r,
      url: mask(r.url),
      headers: Object.fromEntries(Object.entries({ ...r.headers, ...authHeadersForDryRun(conn.definition.auth) }).map(([k, v]) => [k, mask(v)])),
      ...(r.body !== undefined ? { body: mask(r.body) } : {}),
    }));
    return { decision: 'export', record: d.record, requests };
  }
}
