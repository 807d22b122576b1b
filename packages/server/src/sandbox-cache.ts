/**
 * A per-sandbox value built on demand and kept in memory: dropped when a write through the owning
 * service invalidates it, and rebuilt after `ttlMs` in any case (writes by another process over the
 * same store). The promise itself is kept, so concurrent readers share one build; a failed build
 * is not kept.
 */
export class SandboxCache<T> {
  private readonly entries = new Map<string, { at: number; value: Promise<T> }>();

  constructor(
    private readonly ttlMs = 5_000,
    /** Wall clock for the TTL (not the injectable business clock). */
    private readonly clock: () => number = Date.now,
  ) {}

  get(sandboxId: string, build: () => Promise<T>): Promise<T> {
    const now = this.clock();
    const hit = this.entries.get(sandboxId);
    if (hit && now - hit.at < this.ttlMs) return hit.value;
    const entry = { at: now, value: build() };
    this.entries.set(sandboxId, entry);
    entry.value.catch(() => {
      if (this.entries.get(sandboxId) === entry) this.entries.delete(sandboxId);
    });
    return entry.value;
  }

  /** Forgets the sandbox's value: the next read rebuilds it (a build under way is not kept). */
  drop(sandboxId: string): void {
    this.entries.delete(sandboxId);
  }
}
