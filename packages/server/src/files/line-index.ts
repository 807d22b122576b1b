/**
 * Maps byte offsets of a stream to 1-based line numbers without keeping the bytes: it remembers
 * the offsets of LFs (which also end CRLF lines) not yet passed by a query.
 */

const LF = 0x0a;

/** Line numbers for non-decreasing byte offsets of one stream. */
export class LineIndex {
  private breaks: number[] = [];
  private head = 0;
  private passed = 0;
  private scanned = 0;

  /** Records the line breaks of the next chunk of the stream. */
  add(chunk: Buffer): void {
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) this.breaks.push(this.scanned + i);
    this.scanned += chunk.length;
  }

  /** Line of the byte at `offset`; offsets must not decrease between calls. */
  lineAt(offset: number): number {
    const { breaks } = this;
    while (this.head < breaks.length && (breaks[this.head] as number) < offset) {
      this.head += 1;
      this.passed += 1;
    }
    if (this.head > 4096 && this.head * 2 > breaks.length) {
      this.breaks = breaks.slice(this.head);
      this.head = 0;
    }
    return this.passed + 1;
  }
}
