/**
 * Export semantics (seed 001): for a dataflow, a profile is exported when a mapped audience's
 * membership changed, or — while it belongs to a mapped audience — its identity map changed or a
 * mapped attribute was written. Every export carries all mapped attributes, the identity map and
 * the membership of the mapped audiences. Profiles lacking a required identity are excluded with
 * the reason. Pure: the activation service gathers the inputs.
 */
import type { Membership } from '../membership/membership.js';
import { toSegmentMembership } from '../membership/membership.js';
import type { IdentityMap } from '../profile/merge.js';
import { applyMapping, mappedSourcePaths, missingIdentity, type MappingEntry } from './mapping.js';
import type { ExportRecord, IdentityRequirement } from './types.js';

/** What may cause an export. */
export type ExportTrigger =
  | { kind: 'membership'; audienceId: string }
  | { kind: 'profile'; identitiesChanged: boolean; attributePaths: readonly string[] }
  | { kind: 'backfill' };

/** The decision for one profile and one dataflow. */
export type ExportDecision =
  | { action: 'skip'; why: string }
  | { action: 'exclude'; reason: string }
  | { action: 'export'; record: ExportRecord };

/** Everything the decision needs. */
export interface ExportInput {
  dataflow: { id: string; audienceIds: readonly string[]; mapping: readonly MappingEntry[] };
  identities: IdentityRequirement;
  trigger: ExportTrigger;
  profile: { profileId: string; attributes: Record<string, unknown>; identityMap: IdentityMap; memberships: readonly Membership[] };
  audienceNames: ReadonlyMap<string, string>;
  idempotencyKey: string;
}

/** True when `written` touches `mapped` (equal, or one is a prefix path of the other). */
function touches(written: string, mapped: string): boolean {
  return written === mapped || written.startsWith(`${mapped}.`) || mapped.startsWith(`${written}.`);
}

/** Decides whether and what to export. */
export function decideExport(input: ExportInput): ExportDecision {
  const { dataflow, trigger, profile } = input;
  const mapped = new Set(dataflow.audienceIds);
  const memberships = profile.memberships.filter((m) => mapped.has(m.audienceId));
  const inside = memberships.some((m) => m.status !== 'exited');
  const reasons: ExportRecord['reasons'][number][] = [];
  switch (trigger.kind) {
    case 'membership':
      if (!mapped.has(trigger.audienceId)) return { action: 'skip', why: 'audience not mapped to this dataflow' };
      reasons.push('membership');
      break;
    case 'profile': {
      if (!inside) return { action: 'skip', why: 'profile is in none of the mapped audiences' };
      if (trigger.identitiesChanged) reasons.push('identity');
      const sources = mappedSourcePaths(dataflow.mapping);
      if (trigger.attributePaths.some((w) => sources.some((s) => touches(w, s)))) reasons.push('attribute');
      if (!reasons.length) return { action: 'skip', why: 'no mapped attribute or identity changed' };
      break;
    }
    case 'backfill':
      if (!inside) return { action: 'skip', why: 'profile is in none of the mapped audiences' };
      reasons.push('backfill');
      break;
    default: {
      const never: never = trigger;
      return never;
    }
  }
  const { attributes, identities } = applyMapping(dataflow.mapping, profile.attributes, profile.identityMap);
  const missing = missingIdentity(identities, input.identities);
  if (missing) return { action: 'exclude', reason: missing };
  return {
    action: 'export',
    record: {
      profileId: profile.profileId,
      attributes,
      identities,
      identityMap: profile.identityMap,
      segmentMembership: toSegmentMembership(memberships),
      audiences: memberships.map((m) => ({ id: m.audienceId, name: input.audienceNames.get(m.audienceId) ?? m.audienceId, status: m.status })),
      reasons,
      idempotencyKey: input.idempotencyKey,
    },
  };
}
