/** Small collection helpers shared by the services. */

/** Appends `value` to the list under `key`, creating it (linear overall, unlike copying the list). */
export function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
