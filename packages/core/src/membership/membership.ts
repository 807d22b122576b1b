/**
 * Audience membership per profile: `realized` (entered at the last change), `existing` (still
 * in, confirmed by a later evaluation), `exited` (left). Only entering and leaving are
 * membership *events*; realized → existing is a silent confirmation.
 */

/** Membership status, as in Adobe's `segmentMembership.ups.<id>.status`. */
export type MembershipStatus = 'realized' | 'existing' | 'exited';

/** One profile's membership of one audience. */
export interface Membership {
  audienceId: string;
  status: MembershipStatus;
  /** Epoch ms of the last status change into realized or exited. */
  lastQualificationTime: number;
}

/** What an evaluation did to a membership. */
export interface Transition {
  /** The membership to store (undefined: nothing stored). */
  next: Membership | undefined;
  /** The event to publish, if the profile entered or left. */
  event: 'realized' | 'exited' | undefined;
  /** Whether storage must be written. */
  changed: boolean;
}

/** Applies one evaluation result to the previous membership. */
export function transition(audienceId: string, prev: Membership | undefined, qualifies: boolean, now: number): Transition {
  const inside = prev !== undefined && prev.status !== 'exited';
  if (qualifies && !inside) {
    return { next: { audienceId, status: 'realized', lastQualificationTime: now }, event: 'realized', changed: true };
  }
  if (qualifies && prev?.status === 'realized') {
    return { next: { ...prev, status: 'existing' }, event: undefined, changed: true };
  }
  if (!qualifies && inside) {
    return { next: { audienceId, status: 'exited', lastQualificationTime: now }, event: 'exited', changed: true };
  }
  return { next: prev, event: undefined, changed: false };
}

/** True when an exited membership is old enough to forget (default retention: 30 days). */
export function exitedExpired(m: Membership, now: number, retentionMs: number): boolean {
  return m.status === 'exited' && now - m.lastQualificationTime >= retentionMs;
}

/** Default retention of exited memberships. */
export const EXITED_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** `segmentMembership.ups` as exported (seed 001 shape). */
export function toSegmentMembership(memberships: readonly Membership[]): {
  ups: Record<string, { status: MembershipStatus; lastQualificationTime: string }>;
} {
  const ups: Record<string, { status: MembershipStatus; lastQualificationTime: string }> = {};
  for (const m of memberships) {
    ups[m.audienceId] = { status: m.status, lastQualificationTime: new Date(m.lastQualificationTime).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  }
  return { ups };
}
