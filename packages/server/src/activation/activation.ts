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
  type ExportDecision,
  type ExportRecord,
  type ExportTrigger,
  type IdentityMap,
  type IdentityRef,
  type Membership,
  type RequestDescriptor,
} from '@audient/core';
import type { OutboxRow, Store } from '@audient/storage';
import type { Logger } from 'pino';
import type { Bus } from '../bus/port.js';
import type { AudienceService } from '../services/audiences.js';
import type { Catalog } from '../services/catalog.js';
import type { Jobs } from '../services/jobs.js';
import type { Connections } from './connections.js';
import type { Dataflow, Dataflows } from './dataflows.js';
import { authHeadersForDryRun } from './delivery.js';
import { pushTo } from '../collections.js';

const PAGE = 500;
const HOUR = 3_600_000;

/** The profile as exports see it. */
interface ProfileSnapshot {
  profileId: string;
  attributes: Record<string, unknown>;
  identityMap: IdentityMap;
  memberships: Membership[];
}

/** A row to queue in the outbox. */
type QueuedExport = Pick<OutboxRow, 'sandboxId' | 'dataflowId' | 'profileId' | 'idempotencyKey' | 'payload' | 'createdAt'>;

/** Hour bucket of a time. */
export const hourOf = (t: number): number => Math.floor(t / HOUR) * HOUR;

/** Export decisions for every sandbox. */
export class ActivationService {
  private draining: Promise<void> | undefined;
  private again = false;
  private unsubscribers: Array<() => void> = [];
  private readonly wakeDelivery: Array<() => void> = [];

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
    // Starting the backfill job (not waiting for it) is part of saving the dataflow.
    deps.dataflows.onSaved(async (sandboxId, flow, added) => {
      if (added.length && flow.status === 'active') await this.backfill(sandboxId, flow, added);
    });
  }

  /** Called whenever exports were queued (the delivery runtime wakes up). */
  onQueued(fn: () => void): void {
    this.wakeDelivery.push(fn);
  }

  start(): void {
    this.unsubscribers.push(
      this.deps.bus.subscribe('memberships.*', 'activation', async () => this.poke()),
      this.deps.bus.subscribe('changes.*', 'activation', async () => this.poke()),
    );
    this.poke();
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribers) u();
    await this.flush();
  }

  /** Processes whatever the logs hold past the cursors. */
  poke(): void {
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain()
      .catch((err: unknown) => this.deps.log.error({ err }, 'activation drain failed; resuming from the durable cursors'))
      .finally(() => {
        this.draining = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  /** Resolves once everything logged so far has been decided. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
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

  private async audienceNames(sandboxId: string): Promise<Map<string, string>> {
    return new Map((await this.deps.audiences.list(sandboxId)).map((a) => [a.id, a.name]));
  }

  /** Decides and queues exports of one profile for the given dataflows. */
  private async decide(
    sandboxId: string,
    flows: readonly Dataflow[],
    profile: ProfileSnapshot,
    trigger: ExportTrigger,
    keySuffix: string,
    names: ReadonlyMap<string, string>,
    queue: QueuedExport[],
    stats: Map<string, Record<string, number>>,
  ): Promise<void> {
    for (const flow of flows) {
      const conn = await this.deps.connections.open(sandboxId, flow.connectionId).catch(() => undefined);
      // Edge destinations are pulled by the page within its request: nothing to push.
      if (!conn || conn.definition.category === 'edge') continue;
      const d = decideExport({
        dataflow: flow,
        identities: conn.definition.identities,
        trigger,
        profile,
        audienceNames: names,
        idempotencyKey: `${flow.id}:${profile.profileId}:${keySuffix}`,
      });
      if (d.action === 'skip') continue;
      const s = stats.get(flow.id) ?? {};
      s['received'] = (s['received'] ?? 0) + 1;
      if (d.action === 'exclude') {
        s[`excluded:${d.reason}`] = (s[`excluded:${d.reason}`] ?? 0) + 1;
      } else {
        queue.push({ sandboxId, dataflowId: flow.id, profileId: profile.profileId, idempotencyKey: d.record.idempotencyKey, payload: d.record, createdAt: this.deps.now() });
      }
      stats.set(flow.id, s);
    }
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

  private async drain(): Promise<void> {
    const { store, catalog } = this.deps;
    const flowsOf = new Map<string, Dataflow[]>();
    const enabledOf = new Map<string, Set<string>>();
    const namesOf = new Map<string, Map<string, string>>();
    const context = async (sandboxId: string) => {
      if (!flowsOf.has(sandboxId)) {
        flowsOf.set(sandboxId, (await this.deps.dataflows.list(sandboxId)).filter((f) => f.status === 'active'));
        enabledOf.set(sandboxId, new Set((await catalog.listDatasets(sandboxId)).filter((d) => d.profileEnabled).map((d) => d.id)));
        namesOf.set(sandboxId, await this.audienceNames(sandboxId));
      }
      return { flows: flowsOf.get(sandboxId)!, enabled: enabledOf.get(sandboxId)!, names: namesOf.get(sandboxId)! };
    };

    // Membership events → exports of the dataflows that map the audience.
    let cursor = await store.getCursor('activation-memberships');
    for (;;) {
      const events = await store.readMembershipEvents(undefined, cursor, PAGE);
      if (!events.length) break;
      const bySandbox = new Map<string, typeof events>();
      for (const e of events) pushTo(bySandbox, e.sandboxId, e);
      for (const [sandboxId, list] of bySandbox) {
        const { flows, enabled, names } = await context(sandboxId);
        const queue: QueuedExport[] = [];
        const stats = new Map<string, Record<string, number>>();
        for (const e of list) {
          const relevant = flows.filter((f) => f.audienceIds.includes(e.audienceId));
          if (!relevant.length) continue;
          const profile = await this.loadProfile(sandboxId, e.profileId, enabled);
          if (!profile) continue;
          await this.decide(sandboxId, relevant, profile, { kind: 'membership', audienceId: e.audienceId }, `m${e.seq}`, names, queue, stats);
        }
        await this.commit(sandboxId, queue, stats);
      }
      cursor = events.at(-1)!.seq;
      await store.setCursor('activation-memberships', cursor);
      if (events.length < PAGE) break;
    }

    // Profile changes → exports when a mapped attribute or the identity map changed.
    let changeCursor = await store.getCursor('activation-changes');
    for (;;) {
      const rows = await store.readChanges(changeCursor, PAGE);
      if (!rows.length) break;
      for (const row of rows) {
        const c = row.change;
        const identitiesChanged = !!(c.identitiesAdded?.length || c.identitiesEvicted?.length);
        const attributePaths = c.attributePaths ?? [];
        if (c.type === 'delete' || c.type === 'merge' || (!identitiesChanged && !attributePaths.length)) continue;
        const { flows, enabled, names } = await context(row.sandboxId);
        if (!flows.length) continue;
        const profile = await this.loadProfile(row.sandboxId, c.profileId, enabled);
        if (!profile) continue;
        const queue: QueuedExport[] = [];
        const stats = new Map<string, Record<string, number>>();
        await this.decide(row.sandboxId, flows, profile, { kind: 'profile', identitiesChanged, attributePaths }, `c${row.seq}`, names, queue, stats);
        await this.commit(row.sandboxId, queue, stats);
      }
      changeCursor = rows.at(-1)!.seq;
      await store.setCursor('activation-changes', changeCursor);
      if (rows.length < PAGE) break;
    }
  }

  /** Exports the current members of newly mapped audiences (a job). */
  private async backfill(sandboxId: string, flow: Dataflow, audienceIds: readonly string[]): Promise<void> {
    await this.deps.jobs.start(sandboxId, 'dataflow-backfill', { dataflowId: flow.id, audienceIds, queued: 0 }, async (update) => {
      const enabled = new Set((await this.deps.catalog.listDatasets(sandboxId)).filter((d) => d.profileEnabled).map((d) => d.id));
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
            if (profile) await this.decide(sandboxId, [flow], profile, { kind: 'backfill' }, `b${flow.updatedAt}`, names, queue, stats);
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
    const enabled = new Set((await this.deps.catalog.listDatasets(sandboxId)).filter((d) => d.profileEnabled).map((d) => d.id));
    const profile = (await this.loadProfile(sandboxId, profileId, enabled))!;
    const conn = await this.deps.connections.open(sandboxId, flow.connectionId);
    const audienceId = flow.audienceIds[0];
    if (!audienceId) throw new AudientError('BAD_REQUEST', 'the dataflow maps no audience');
    const d: ExportDecision = decideExport({
      dataflow: flow,
      identities: conn.definition.identities,
      trigger: { kind: 'membership', audienceId },
      profile,
      audienceNames: await this.audienceNames(sandboxId),
      idempotencyKey: `${flow.id}:${profileId}:dry-run`,
    });
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
