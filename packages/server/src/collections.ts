/** Small collection helpers shared by the services. */

/** Appends `value` to the list under `key`, creating it (linear overall, unlike copying the list). */
export function pushTo<K, V>(map: { get(key: K): V[] | undefined; set(key: K, value: V[]): unknown }, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Whether two sets hold the same values. */
export function sameSet<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
