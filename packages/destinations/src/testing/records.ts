/** Export records for destination tests (the shape the activation step produces). */
import type { ExportRecord, MembershipStatus } from '@audient/core';

/** An audience of a test record: id, name, status and qualification time. */
export interface TestAudience {
  id: string;
  name?: string;
  status: MembershipStatus;
  at?: string;
}

/** Builds an ExportRecord; membership and audience list are derived from `audiences`. */
export function makeRecord(opts: {
  profileId?: string;
  attributes?: Record<string, unknown>;
  identities?: Record<string, string[]>;
  identityMap?: ExportRecord['identityMap'];
  audiences?: readonly TestAudience[];
  idempotencyKey?: string;
}): ExportRecord {
  const audiences = opts.audiences ?? [];
  const ups: ExportRecord['segmentMembership']['ups'] = {};
  for (const a of audiences) ups[a.id] = { lastQualificationTime: a.at ?? '2024-01-01T00:00:00Z', status: a.status };
  const profileId = opts.profileId ?? 'p-1';
  return {
    profileId,
    attributes: opts.attributes ?? {},
    identities: opts.identities ?? {},
    identityMap: opts.identityMap ?? {},
    segmentMembership: { ups },
    audiences: audiences.map((a) => ({ id: a.id, name: a.name ?? a.id, status: a.status })),
    reasons: ['membership'],
    idempotencyKey: opts.idempotencyKey ?? `df-1:${profileId}:1`,
  };
}
