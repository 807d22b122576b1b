/**
 * The mapping step of a dataflow: source profile fields or identities → target attributes or
 * target identities (renaming allowed, e.g. `person.name.lastName` → `Last_Name`).
 */
import type { ErrorDetail } from '../errors.js';
import { namespaceKey } from '../identity/namespaces.js';
import type { IdentityMap } from '../profile/merge.js';
import { fieldAt } from '../schema/resolve.js';
import type { FieldDef } from '../schema/types.js';
import type { IdentityRequirement } from './types.js';

/** One mapping line. */
export interface MappingEntry {
  /** A profile attribute path (`person.name.lastName`) or an identity namespace (`identity:email`). */
  source: string;
  /** The target: an attribute name/path, or an identity name of the destination. */
  target: { kind: 'attribute'; name: string } | { kind: 'identity'; name: string };
}

const IDENTITY_PREFIX = 'identity:';
const TARGET_RE = /^[A-Za-z_][A-Za-z0-9_$-]*(\.[A-Za-z_][A-Za-z0-9_$-]*)*$/;

function getPath(obj: Record<string, unknown>, path: readonly string[]): unknown {
  let cur: unknown = obj;
  for (const seg of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.prototype.hasOwnProperty.call(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  path.forEach((seg, i) => {
    if (i === path.length - 1) {
      cur[seg] = value;
      return;
    }
    const next = cur[seg];
    cur = typeof next === 'object' && next !== null && !Array.isArray(next) ? (next as Record<string, unknown>) : (cur[seg] = {});
  });
}

/** Applies a mapping to a profile; absent sources are left out. */
export function applyMapping(
  mapping: readonly MappingEntry[],
  attributes: Record<string, unknown>,
  identityMap: IdentityMap,
): { attributes: Record<string, unknown>; identities: Record<string, string[]> } {
  const out: Record<string, unknown> = {};
  const identities: Record<string, string[]> = {};
  for (const m of mapping) {
    let value: unknown;
    if (m.source.startsWith(IDENTITY_PREFIX)) {
      const ids = identityMap[namespaceKey(m.source.slice(IDENTITY_PREFIX.length))]?.map((i) => i.id);
      value = ids && ids.length ? ids : undefined;
    } else {
      value = getPath(attributes, m.source.split('.'));
    }
    if (value === undefined || value === null) continue;
    if (m.target.kind === 'identity') {
      const list = (Array.isArray(value) ? value : [value]).filter((v): v is string | number => typeof v === 'string' || typeof v === 'number').map(String);
      if (list.length) identities[m.target.name] = [...(identities[m.target.name] ?? []), ...list];
    } else {
      setPath(out, m.target.name.split('.'), Array.isArray(value) && m.source.startsWith(IDENTITY_PREFIX) ? value[0] : value);
    }
  }
  return { attributes: out, identities };
}

/** The source attribute paths a mapping reads (for "a mapped attribute was written"). */
export function mappedSourcePaths(mapping: readonly MappingEntry[]): string[] {
  return mapping.filter((m) => !m.source.startsWith(IDENTITY_PREFIX)).map((m) => m.source);
}

/**
 * Checks a mapping before a dataflow is saved: sources exist in the profile union schema (or are
 * known namespaces), targets are well formed and allowed, required identities are mapped.
 */
export function checkMapping(
  mapping: readonly MappingEntry[],
  opts: { profileRoot: FieldDef; namespaces: ReadonlySet<string>; identities: IdentityRequirement; allowsAttributes: boolean },
): ErrorDetail[] {
  const errors: ErrorDetail[] = [];
  const targets = new Set<string>();
  mapping.forEach((m, i) => {
    const path = `mapping[${i}]`;
    if (m.source.startsWith(IDENTITY_PREFIX)) {
      const ns = m.source.slice(IDENTITY_PREFIX.length);
      if (!opts.namespaces.has(namespaceKey(ns))) errors.push({ path: `${path}.source`, reason: 'unknown-namespace', message: `no identity namespace ${ns}` });
    } else if (!fieldAt(opts.profileRoot, m.source.split('.'))) {
      errors.push({ path: `${path}.source`, reason: 'unknown-field', message: `no profile field ${m.source} in this sandbox's schemas` });
    }
    if (!TARGET_RE.test(m.target.name)) {
      errors.push({ path: `${path}.target.name`, reason: 'format', message: `target ${JSON.stringify(m.target.name)} is not a valid name or dot path` });
    }
    if (m.target.kind === 'identity' && opts.identities.targets.length && !opts.identities.targets.includes(m.target.name)) {
      errors.push({ path: `${path}.target.name`, reason: 'identity', message: `this destination takes identities ${opts.identities.targets.join(', ')}, not ${m.target.name}` });
    }
    if (m.target.kind === 'attribute' && !opts.allowsAttributes) {
      errors.push({ path, reason: 'attribute', message: 'this destination takes no attributes: map audiences only' });
    }
    const key = `${m.target.kind}:${m.target.name}`;
    if (targets.has(key)) errors.push({ path: `${path}.target.name`, reason: 'duplicate', message: `${m.target.name} is mapped twice` });
    targets.add(key);
  });
  const mappedIds = new Set(mapping.filter((m) => m.target.kind === 'identity').map((m) => m.target.name));
  for (const r of opts.identities.required ?? []) {
    if (!mappedIds.has(r)) errors.push({ path: 'mapping', reason: 'required-identity', message: `the destination requires identity ${r}: map a source to it` });
  }
  const oneOf = opts.identities.oneOf ?? [];
  if (oneOf.length && !oneOf.some((r) => mappedIds.has(r))) {
    errors.push({ path: 'mapping', reason: 'required-identity', message: `the destination requires one of the identities ${oneOf.join(', ')}: map a source to one of them` });
  }
  return errors;
}

/** Which required identity a mapped profile lacks, if any (the exclusion reason). */
export function missingIdentity(identities: Record<string, string[]>, req: IdentityRequirement): string | undefined {
  for (const r of req.required ?? []) if (!identities[r]?.length) return `missing required identity ${r}`;
  const oneOf = req.oneOf ?? [];
  if (oneOf.length && !oneOf.some((r) => identities[r]?.length)) return `missing identity: needs one of ${oneOf.join(', ')}`;
  return undefined;
}
