/**
 * The batch-evaluation snapshot of a profile as both adapters store it: one JSON text
 * `{"f":[[datasetId, ns, id, ts, attributes]…],"e":[[datasetId, eventId, ts, body]…]}` (events
 * oldest first), built by SQL from the stored fragment and event texts, decoded by one
 * JSON.parse. Events are kept from the retention horizon of the refresh; reads drop those that
 * aged out since.
 */
import type { StoredFragment } from '@audient/core';
import type { EventRow, ProfileSnapshot } from './port.js';

type FragmentTuple = [string, string, string, number, Record<string, unknown>];
type EventTuple = [string, string, number, Record<string, unknown>];

/**
 * Decodes a snapshot text, or the value it parses to (a batch page parses many snapshots with
 * one JSON.parse); events before `eventsSince` are left out.
 */
export function decodeSnapshot(profileId: string, body: string | object, eventsSince: number): ProfileSnapshot {
  const raw = (typeof body === 'string' ? JSON.parse(body) : body) as { f: FragmentTuple[]; e: EventTuple[] };
  const fragments: StoredFragment[] = new Array<StoredFragment>(raw.f.length);
  for (let i = 0; i < raw.f.length; i++) {
    const [datasetId, ns, id, timestamp, attributes] = raw.f[i]!;
    fragments[i] = { datasetId, ns, id, graphId: profileId, attributes, timestamp };
  }
  const events: EventRow[] = [];
  for (const [datasetId, eventId, timestamp, body] of raw.e) {
    if (timestamp >= eventsSince) events.push({ datasetId, eventId, timestamp, body });
  }
  return { profileId, fragments, events };
}
