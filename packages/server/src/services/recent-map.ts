/**
 * A bounded map that forgets its least recently used entries, approximately, for the
 * segmentation engine's per-profile memory (views, remembered states, identities).
 *
 * Entries live in two generations. Using an entry of the young one costs one lookup (an exact
 * LRU re-inserts the key on every use: a delete and a set on a map of 50,000 keys, several times
 * per edge request); using one of the old generation moves it to the young one. When the young
 * generation reaches half the bound, the old one is forgotten whole and the young one becomes
 * old. So at most `max` entries are held, and the `max / 2` most recently used always are.
 * Values are never null or undefined (a miss reads as undefined).
 */
export class RecentMap<K, V extends {}> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();

  /** `onForget` is told of each entry forgotten for the bound (not of deletes). */
  constructor(
    private readonly max: number,
    private readonly onForget?: (key: K, value: V) => void,
  ) {
    if (!(max >= 2)) throw new RangeError(`RecentMap bound must be at least 2, not ${max}`);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /** The entry's value, without counting it as used. */
  get(key: K): V | undefined {
    return this.young.get(key) ?? this.old.get(key);
  }

  /** Sets the entry's value and counts it as used now. */
  use(key: K, value: V): void {
    if (this.young.get(key) === value) return;
    this.old.delete(key);
    this.young.set(key, value);
    if (this.young.size >= this.max / 2) this.turn();
  }

  delete(key: K): boolean {
    return this.young.delete(key) || this.old.delete(key);
  }

  *keys(): IterableIterator<K> {
    // Copied: callers delete while iterating.
    yield* [...this.young.keys(), ...this.old.keys()];
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }

  private turn(): void {
    const gone = this.old;
    this.old = this.young;
    this.young = new Map();
    if (this.onForget) for (const [k, v] of gone) this.onForget(k, v);
  }
}
