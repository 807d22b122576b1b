/**
 * The Experience Edge interact protocol as Audient's edge speaks it (see the server's
 * `edge/edge-service.ts`): the request the SDK sends and the handles it reads back.
 */

/** One event of a request. */
export interface EdgeEvent {
  xdm: Record<string, unknown>;
  data?: Record<string, unknown>;
}

/** A first-party cookie echoed to the edge, or one it asks the browser to keep. */
export interface StateEntry {
  key: string;
  value: string;
}

/** The interact request body. */
export interface InteractRequest {
  events: EdgeEvent[];
  meta: { state: { domain: string; cookiesEnabled: boolean; entries: StateEntry[] } };
}

/** Seed 000's profile-lookup entry: the mapped audiences the visitor is in, per alias. */
export interface ProfileLookup {
  type: 'profileLookup';
  destinationId: string;
  alias: string;
  segments: Array<{ id: string }>;
}

/** A URL (pixel) or cookie sync the edge asks the browser to fire. */
export type SyncSpec =
  | { type: 'url'; id: string; spec: { url: string; hideReferrer: boolean; ttlMinutes: number } }
  | { type: 'cookie'; id: string; spec: { name: string; value: string; domain?: string; ttlDays: number } };

/** One handle of the interact answer; unknown types are ignored. */
export type Handle =
  | { type: 'identity:result'; payload: Array<{ id: string; namespace: { code: string } }> }
  | { type: 'state:store'; payload: Array<StateEntry & { maxAge?: number; attrs?: Record<string, string | boolean> }> }
  | { type: 'activation:pull'; payload: ProfileLookup[] }
  | { type: 'activation:push'; payload: SyncSpec[] };

/** The interact answer. */
export interface InteractResponse {
  requestId: string;
  handle: Handle[];
}

/** The edge's error body (RFC 7807). */
export interface EdgeErrorBody {
  type?: string;
  status?: number;
  title?: string;
  detail?: string;
  report?: { requestId?: string };
}
