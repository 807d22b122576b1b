/** Identifier generation for the server side (the core gets ids injected). */
import { randomBytes, randomUUID } from 'node:crypto';

/** A random UUID (datastream ids, audience ids; the edge mints event ids with timeOrderedUuid). */
export const newUuid = (): string => randomUUID();

let lastTime = 0;
let counter = 0;

/**
 * A time-sortable id (`<ms base36><counter><random>`): newest-first listing and cursor paging
 * can order by id alone.
 */
export function sortableId(prefix: string): string {
  const now = Date.now();
  counter = now === lastTime ? counter + 1 : 0;
  lastTime = now;
  return `${prefix}_${now.toString(36).padStart(9, '0')}${counter.toString(36).padStart(3, '0')}${randomBytes(5).toString('hex')}`;
}

let uuidTime = 0;
let uuidSeq = 0;

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond time, then a 12-bit counter that keeps ids of one
 * millisecond in order, then random bits. New profiles' ids sort by creation time, so their
 * index entries land at the end of the B-trees instead of on random pages.
 */
export function timeOrderedUuid(): string {
  const now = Date.now();
  if (now > uuidTime) (uuidTime = now, uuidSeq = 0);
  else if (++uuidSeq > 0xfff) (uuidTime += 1, uuidSeq = 0);
  // The random part comes from randomUUID (v4: its variant bits are already RFC 9562's), whose
  // entropy is drawn in bulk; the first 64 bits are replaced by time, version and counter.
  const t = uuidTime.toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8)}-7${uuidSeq.toString(16).padStart(3, '0')}${randomUUID().slice(18)}`;
}
