/**
 * Finds every identity a record carries (identity fields and `identityMap`), normalises each for
 * its namespace, and picks the primary one. Problems come back as precise details, never throws.
 */
import type { ErrorDetail } from '../errors.js';
import type { ResolvedSchema } from '../schema/resolve.js';
import { namespaceKey, normalizeIdentity, type NamespaceRegistry } from './namespaces.js';

/** One identity: namespace key (lower-cased code) and normalised id. */
export interface IdentityRef {
  ns: string;
  id: string;
}

/** The identities found in a record, the primary one first. */
export interface ExtractedIdentities {
  identities: IdentityRef[];
  primary: IdentityRef | undefined;
  errors: ErrorDetail[];
}

function getPath(record: Record<string, unknown>, path: readonly string[]): unknown {
  let cur: unknown = record;
  for (const seg of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    cur = Object.prototype.hasOwnProperty.call(cur, seg) ? (cur as Record<string, unknown>)[seg] : undefined;
  }
  return cur;
}

/** Identities of a (schema-valid) record, normalised; `maxIdentities` bounds how many a record may carry. */
export function extractIdentities(
  schema: ResolvedSchema,
  record: Record<string, unknown>,
  registry: NamespaceRegistry,
  maxIdentities: number,
): ExtractedIdentities {
  const errors: ErrorDetail[] = [];
  const seen = new Map<string, IdentityRef>();
  let primary: IdentityRef | undefined;
  let firstMapPrimary: IdentityRef | undefined;
  /** The identity `add` last added (undefined when it added none). */
  let added: IdentityRef | undefined;

  const add = (code: string, raw: unknown, path: string, isPrimary: boolean): void => {
    added = undefined;
    const ns = registry.get(code);
    if (!ns) {
      errors.push({
        path,
        reason: 'unknown-namespace',
        message: `unknown identity namespace ${JSON.stringify(code)}; create it first or use a standard one`,
        received: code,
      });
      return;
    }
    if (typeof raw !== 'string') {
      errors.push({ path, reason: 'type', message: 'identity ids are strings', expected: 'string', received: typeof raw });
      return;
    }
    const result = normalizeIdentity(ns, raw);
    if (!result.ok) {
      errors.push({ path, reason: 'invalid-identity', message: `${ns.code}: ${result.reason}`, received: raw.slice(0, 64) });
      return;
    }
    const ref: IdentityRef = { ns: namespaceKey(ns.code), id: result.id };
    const key = `${ref.ns}\u0000${ref.id}`;
    let known = seen.get(key);
    if (!known) seen.set(key, (known = added = ref));
    if (isPrimary && !primary) primary = known;
  };

  for (const field of schema.identityFields) {
    const value = getPath(record, field.path);
    if (value !== undefined && value !== null) add(field.namespace, value, field.path.join('.'), field.primary);
  }
  const map = record['identityMap'];
  if (typeof map === 'object' && map !== null && !Array.isArray(map)) {
    for (const [code, list] of Object.entries(map as Record<string, unknown>)) {
      if (!Array.isArray(list)) continue; // the schema validator reports the shape
      for (let i = 0; i < list.length; i++) {
        const entry: unknown = list[i];
        if (typeof entry !== 'object' || entry === null) continue;
        const e = entry as Record<string, unknown>;
        add(code, e['id'], `identityMap.${code}[${i}].id`, false);
        if (e['primary'] === true && !firstMapPrimary && added) firstMapPrimary = added;
      }
    }
  }
  const identities = [...seen.values()];
  if (identities.length > maxIdentities) {
    errors.push({
      path: 'identityMap',
      reason: 'too-many-identities',
      message: `a record may carry at most ${maxIdentities} identities, this one has ${identities.length}`,
      expected: `<= ${maxIdentities}`,
      received: String(identities.length),
    });
  }
  primary = primary ?? firstMapPrimary ?? identities[0];
  if (primary && identities[0] !== primary) identities.sort((a, b) => (a === primary ? -1 : b === primary ? 1 : 0));
  return { identities, primary, errors };
}
