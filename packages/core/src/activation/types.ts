/**
 * Declared destinations: what a destination is (settings, authentication, identity needs,
 * marketing actions, delivery mode) and the two pure functions it provides — export records to
 * request descriptors, and responses to per-item outcomes. Delivery (auth tokens, retries,
 * batching, rate limits, dead letters) is the runtime's job, done once for all destinations.
 */
import type { MembershipStatus } from '../membership/membership.js';
import type { IdentityMap } from '../profile/merge.js';

/** One setting of a destination connection; the list drives validation, the API and the console form. */
export interface SettingField {
  key: string;
  label: string;
  type: 'string' | 'password' | 'url' | 'number' | 'boolean' | 'enum' | 'headers';
  description?: string;
  required?: boolean;
  /** Stored encrypted, never returned by the API (always true for `password`). */
  secret?: boolean;
  default?: string | number | boolean;
  /** For `enum`. */
  options?: ReadonlyArray<{ value: string; label: string }>;
  /** For strings: a regular expression the value must match. */
  pattern?: string;
}

/** Values of a connection's settings, validated against its fields. */
export type SettingValues = Record<string, string | number | boolean>;

/** How the runtime authenticates requests; values name setting keys. */
export type AuthScheme =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; token: string }
  | {
      kind: 'oauth2-client-credentials';
      tokenUrl: string;
      clientId: string;
      clientSecret: string;
      /** Where the client credentials go: form body (default) or an HTTP Basic header. */
      credentialsIn?: 'body' | 'basic-header';
      scope?: string;
    }
  | { kind: 'oauth2-password'; tokenUrl: string; clientId: string; clientSecret: string; username: string; password: string; scope?: string };

/** Which target identities a destination needs in every exported profile. */
export interface IdentityRequirement {
  /** Target identity names the mapping may produce (e.g. `user_id`, `anonymous_id`). Empty: any namespace. */
  targets: readonly string[];
  /** All of these must be present. */
  required?: readonly string[];
  /** At least one of these must be present. */
  oneOf?: readonly string[];
}

/** How records are grouped into requests. */
export type DeliveryMode =
  | { kind: 'per-profile' }
  | {
      kind: 'batch';
      /** Most records per request. */
      maxSize: number;
      /** Longest a record waits for its batch to fill, ms. */
      maxAgeMs: number;
      /** Records of different keys never share a request. */
      groupBy?: 'audience' | 'identity-namespace';
    };

/** One profile to export, in the destination's terms after mapping. */
export interface ExportRecord {
  profileId: string;
  /** Mapped attributes under their target names (dot paths already expanded into objects). */
  attributes: Record<string, unknown>;
  /** Mapped identities: target identity name → ids. */
  identities: Record<string, string[]>;
  /** The profile's full identity map (seed 001 shape). */
  identityMap: IdentityMap;
  /** Membership of the dataflow's mapped audiences (seed 001 `segmentMembership`). */
  segmentMembership: { ups: Record<string, { status: MembershipStatus; lastQualificationTime: string }> };
  /** The mapped audiences with their names, for destinations that want names. */
  audiences: ReadonlyArray<{ id: string; name: string; status: MembershipStatus }>;
  /** Why this export happened. */
  reasons: ReadonlyArray<'membership' | 'identity' | 'attribute' | 'backfill' | 'delete'>;
  /** Stable per (dataflow, profile, change) so receivers can drop duplicates. */
  idempotencyKey: string;
}

/** A request the runtime will send; `items` are indexes of the records it carries. */
export interface RequestDescriptor {
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET';
  url: string;
  headers: Record<string, string>;
  body?: string;
  items: number[];
}

/** A response as the runtime hands it back for classification. */
export interface ResponseInfo {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What happened to one record of a request. */
export type ItemOutcome = { ok: true } | { ok: false; retry: boolean; message: string };

/** Context handed to a destination's pure functions. */
export interface DestinationContext {
  settings: SettingValues;
  /** Request timeout, ms (the runtime enforces it). */
  timeoutMs: number;
}

/** A declared destination. */
export interface DestinationDefinition {
  /** Stable slug, e.g. `http-api`. */
  id: string;
  name: string;
  description: string;
  category: 'streaming' | 'batch' | 'edge';
  settings: readonly SettingField[];
  auth: AuthScheme;
  identities: IdentityRequirement;
  /**
   * A target identity the mapping does not produce: activation fills it with the partner's user
   * ids synced to the profile's ECIDs for the connection (the ID-sync table); a profile with none
   * is excluded with that reason.
   */
  idSync?: { target: string };
  /** Marketing actions this destination performs (for governance). */
  marketingActions: readonly string[];
  delivery: DeliveryMode;
  /** Whether mapped attributes are allowed (profile-lookup destinations take none). */
  allowsAttributes: boolean;
  /** Default request timeout, ms. */
  timeoutMs: number;
  /** Extra checks of settings beyond field types (e.g. header syntax); messages name the key. */
  checkSettings?(settings: SettingValues): Array<{ key: string; message: string }>;
  /** Turns records into requests. Pure. */
  toRequests(records: readonly ExportRecord[], ctx: DestinationContext): RequestDescriptor[];
  /**
   * Per-item outcome of a response. Optional: by default every item of the request gets the
   * status's class (2xx ok; 408, 429, 5xx retry; other 4xx drop).
   */
  classify?(response: ResponseInfo, request: RequestDescriptor, records: readonly ExportRecord[]): ItemOutcome[];
}
