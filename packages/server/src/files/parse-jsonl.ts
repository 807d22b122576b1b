/**
 * JSON Lines: one JSON object per line. Streams byte chunks, never holding more than one line
 * (capped), and turns each bad line into an error row so one broken line never fails the file.
 */
import { describeValue } from '@audient/core';
import { toByteChunks } from './chunks.js';
import { DEFAULT_MAX_RECORD_BYTES, MAX_RAW_CHARS, truncateRaw, type FileRow } from './types.js';

/** Options of {@link parseJsonLines}. */
export interface JsonLinesOptions {
  /** Longest accepted line in bytes (without its line break); longer lines become error rows. Default 1 MiB. */
  maxLineBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;

/** Accumulates the bytes of the current line, keeping only a prefix once it is over the cap. */
class LineBuffer {
  private parts: Buffer[] = [];
  private kept = 0;
  /** Bytes of the line seen so far, kept or not. */
  length = 0;

  constructor(private readonly maxBytes: number) {}

  append(bytes: Buffer): void {
    this.length += bytes.length;
    // One byte past the cap is enough to know the line is too long; the rest is dropped.
    const room = this.maxBytes + 1 - this.kept;
    if (room <= 0) return;
    const part = bytes.length > room ? bytes.subarray(0, room) : bytes;
    this.parts.push(part);
    this.kept += part.length;
  }

  take(): { bytes: Buffer; length: number } {
    const bytes = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    const length = this.length;
    this.parts = [];
    this.kept = 0;
    this.length = 0;
    return { bytes, length };
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

function errorRow(line: number, raw: string, reason: string, message: string): FileRow {
  return {
    line,
    error: { code: 'MALFORMED_JSON', message: `line ${line}: ${message}`, details: [{ path: '', reason, message }] },
    raw: truncateRaw(raw),
  };
}

/** Turns the bytes of one line (without its LF) into a row, or undefined for a blank line. */
function parseLine(line: number, bytes: Buffer, length: number, maxLineBytes: number): FileRow | undefined {
  let body = bytes;
  let size = length;
  if (body.length > 0 && body[body.length - 1] === CR && length === body.length) {
    body = body.subarray(0, body.length - 1);
    size -= 1;
  }
  if (line === 1 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) {
    body = body.subarray(3);
    size -= 3;
  }
  if (size > maxLineBytes) {
    const raw = lenientUtf8.decode(body.subarray(0, MAX_RAW_CHARS));
    return errorRow(line, raw, 'too-large', `line is ${size} bytes, longer than the limit of ${maxLineBytes} bytes`);
  }
  let text: string;
  try {
    text = strictUtf8.decode(body);
  } catch {
    return errorRow(line, lenientUtf8.decode(body), 'encoding', 'line is not valid UTF-8');
  }
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return errorRow(line, text, 'syntax', `invalid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return errorRow(line, text, 'type', `expected a JSON object, got ${describeValue(value)}`);
  }
  return { line, record: value as Record<string, unknown> };
}

/**
 * Parses JSON Lines from a stream of chunks (bytes or text, split anywhere, even inside a UTF-8
 * character). Blank lines are skipped; CRLF and a UTF-8 BOM on line 1 are tolerated. A line that
 * is not valid UTF-8, not valid JSON, not an object, or over `maxLineBytes` yields an error row
 * carrying its line number, and parsing goes on with the next line.
 */
export async function* parseJsonLines(
  input: AsyncIterable<Buffer | string>,
  opts: JsonLinesOptions = {},
): AsyncGenerator<FileRow> {
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const current = new LineBuffer(maxLineBytes);
  let line = 1;
  for await (const chunk of toByteChunks(input)) {
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, start)) {
      current.append(chunk.subarray(start, lf));
      const { bytes, length } = current.take();
      const row = parseLine(line, bytes, length, maxLineBytes);
      if (row) yield row;
      line += 1;
      start = lf + 1;
    }
    if (start < chunk.length) current.append(chunk.subarray(start));
  }
  if (current.length > 0) {
    const { bytes, length } = current.take();
    const row = parseLine(line, bytes, length, maxLineBytes);
    if (row) yield row;
  }
}
