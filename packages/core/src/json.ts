/** Helpers over plain JSON values, shared by the core's modules. */

/** Whether a JSON value is an object (not null, not an array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
