/**
 * Merge policies: how the fragments of one identity graph become one profile. Timestamp order
 * (default: the most recently updated value wins) or dataset precedence (listed datasets win, in
 * order; unlisted ones fall back to timestamp order beneath them).
 */
import type { IdentityRef } from '../identity/extract.js';
import { isPlainObject } from '../json.js';

/** A profile fragment: the attributes one dataset holds for one primary identity. */
export interface Fragment {
  datasetId: string;
  attributes: Record<string, unknown>;
  /** Epoch ms of the fragment's last update (source timestamp when given, else ingestion time). */
  timestamp: number;
}

/** How fragments are merged. */
export type MergePolicy = { kind: 'timestamp' } | { kind: 'dataset-precedence'; order: string[] };

/** The default policy. */
export const DEFAULT_MERGE_POLICY: MergePolicy = { kind: 'timestamp' };

/** Deep-merges `source` over `target` in place: objects merge, arrays and scalars replace, null removes. */
export function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(source)) {
    if (k === '__proto__') continue;
    if (v === null) {
      delete target[k];
    } else if (isPlainObject(v)) {
      const cur = target[k];
      target[k] = deepMerge(isPlainObject(cur) ? cur : {}, v);
    } else if (v !== undefined) {
      target[k] = v;
    }
  }
  return target;
}

/** A deep copy of a JSON value (arrays and objects copied; scalars as they are). */
function copyJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copyJson);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) if (k !== '__proto__') out[k] = copyJson(v[k]);
    return out;
  }
  return v;
}

/**
 * Like `deepMerge(target, structuredClone(source))` for JSON data, without the intermediate
 * copy: objects are merged key by key into `target` (new objects where it has none), and arrays
 * are copied, so `target` never shares structure with `source`. Keys listed in `skip` are left
 * out at the top level.
 */
export function deepMergeCopy(target: Record<string, unknown>, source: Record<string, unknown>, skip?: string): Record<string, unknown> {
  for (const k of Object.keys(source)) {
    if (k === '__proto__' || k === skip) continue;
    const v = source[k];
    if (v === null) {
      delete target[k];
    } else if (isPlainObject(v)) {
      const cur = target[k];
      target[k] = deepMergeCopy(isPlainObject(cur) ? cur : {}, v);
    } else if (Array.isArray(v)) {
      target[k] = copyJson(v);
    } else if (v !== undefined) {
      target[k] = v;
    }
  }
  return target;
}

/** Fragments in the order they are applied: lowest priority first, winner last. */
export function orderFragments(fragments: readonly Fragment[], policy: MergePolicy): Fragment[] {
  const byTime = (a: Fragment, b: Fragment): number => a.timestamp - b.timestamp || a.datasetId.localeCompare(b.datasetId);
  if (policy.kind === 'timestamp') return [...fragments].sort(byTime);
  const rank = (f: Fragment): number => {
    const i = policy.order.indexOf(f.datasetId);
    return i === -1 ? -1 : policy.order.length - i;
  };
  return [...fragments].sort((a, b) => rank(a) - rank(b) || byTime(a, b));
}

/** Merges fragments under a policy into one attribute object (identityMap excluded: the graph owns it). */
export function mergeFragments(fragments: readonly Fragment[], policy: MergePolicy): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ordered = fragments.length === 1 ? fragments : orderFragments(fragments, policy);
  for (const f of ordered) deepMergeCopy(out, f.attributes, 'identityMap');
  return out;
}

/** An identity map in the XDM / seed 001 shape: namespace key → [{id}], primary flagged. */
export type IdentityMap = Record<string, Array<{ id: string; primary?: boolean }>>;

/** Builds the identity map of a graph's identities. */
export function buildIdentityMap(identities: ReadonlyArray<IdentityRef & { primary?: boolean }>): IdentityMap {
  const map: IdentityMap = {};
  for (const i of identities) {
    (map[i.ns] ??= []).push(i.primary ? { id: i.id, primary: true } : { id: i.id });
  }
  return map;
}
