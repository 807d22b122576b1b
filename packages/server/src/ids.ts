/** Identifier generation for the server side (the core gets ids injected). */
import { randomBytes, randomUUID } from 'node:crypto';

/** A random UUID, used for profile (graph) ids. */
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
