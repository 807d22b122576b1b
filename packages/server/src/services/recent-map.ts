/**
 * Maps keyed by a pair of strings (a sandbox and a profile, say), for the segmentation engine's
 * per-profile memory. A map per first key: a lookup hashes two strings the caller already holds
 * (their hashes are cached on them), where one map keyed by `a\0b` built that string on every
 * lookup, then flattened and hashed it (measured 0.3–1 µs a lookup against ~0.06 µs).
 */
export class PairMap<V> {
  private readonly outer = new Map<string, Map<string, V>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(a: string, b: string): V | undefined {
    return this.outer.get(a)?.get(b);
  }

  set(a: string, b: string, value: V): void {
    let inner = this.outer.get(a);
    if (!inner) this.outer.set(a, (inner = new Map()));
    const before = inner.size;
    inner.set(b, value);
    this.count += inner.size - before;
  }

  delete(a: string, b: string): boolean {
    const inner = this.outer.get(a);
    if (!inner?.delete(b)) return false;
    this.count--;
    if (inner.size === 0) this.outer.delete(a);
    return true;
  }

  /** The second keys under `a` (a copy: callers delete while going through them). */
  keysOf(a: string): string[] {
    return [...(this.outer.get(a)?.keys() ?? [])];
  }

  *entries(): IterableIterator<[string, string, V]> {
    for (const [a, inner] of this.outer) for (const [b, v] of inner) yield [a, b, v];
  }

  clear(): void {
    this.outer.clear();
    this.count = 0;
  }
}

/**
 * A bounded pair-keyed map that forgets its least recently used entries, approximately, for the
 * segmentation engine's per-profile memory (views, remembered states, identities).
 *
 * Entries live in two generations. Using an entry of the young one costs one lookup (an exact
 * LRU re-inserts the key on every use: a delete and a set on a map of 50,000 keys, several times
 * per edge request); using one of the old generation moves it to the young one. When the young
 * generation reaches half the bound, the old one is forgotten whole and the young one becomes
 * old. So at most `max` entries are held, and the `max / 2` most recently used always are.
 * Values are never null or undefined (a miss reads as undefined).
 */
export class RecentMap<V extends {}> {
  private young = new PairMap<V>();
  private old = new PairMap<V>();

  /** `onForget` is told of each entry forgotten for the bound (not of deletes). */
  constructor(
    private readonly max: number,
    private readonly onForget?: (a: string, b: string, value: V) => void,
  ) {
    if (!(max >= 2)) throw new RangeError(`RecentMap bound must be at least 2, not ${max}`);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /** The entry's value, without counting it as used. */
  get(a: string, b: string): V | undefined {
    return this.young.get(a, b) ?? this.old.get(a, b);
  }

  /** Sets the entry's value and counts it as used now. */
  use(a: string, b: string, value: V): void {
    if (this.young.get(a, b) === value) return;
    this.old.delete(a, b);
    this.young.set(a, b, value);
    if (this.young.size >= this.max / 2) this.turn();
  }

  delete(a: string, b: string): boolean {
    return this.young.delete(a, b) || this.old.delete(a, b);
  }

  /** The second keys held under `a` (a copy). */
  keysOf(a: string): string[] {
    return [...this.young.keysOf(a), ...this.old.keysOf(a)];
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }

  private turn(): void {
    const gone = this.old;
    this.old = this.young;
    this.young = new PairMap();
    if (this.onForget) for (const [a, b, v] of gone.entries()) this.onForget(a, b, v);
  }
}
