/**
 * CSV batch files: streamed through csv-parse, one record per row, typed by the schema field
 * each column targets. A broken row becomes an error row with its file line and the parse goes
 * on; header problems refuse the whole file before any row.
 */
import { AudientError, type ErrorDetail, type FieldDef } from '@audient/core';
import { Parser, type CsvError, type Options } from 'csv-parse';
import { toByteChunks } from './chunks.js';
import { andMore, convertCell, planColumns, type CsvMapping, type CsvPlan } from './csv-columns.js';
import { LineIndex } from './line-index.js';
import { setPath } from './set-path.js';
import { DEFAULT_MAX_RECORD_BYTES, MAX_RAW_CHARS, truncateRaw, type FileErrorRow, type FileRow } from './types.js';

/** Options of {@link parseCsv}. */
export interface CsvOptions {
  /** The schema's resolved root field: gives each column's type. */
  root: FieldDef;
  /** Source column names → paths; without it the header cells are the paths. */
  mapping?: CsvMapping;
  /** One character; default `,`. */
  delimiter?: string;
  /** Longest accepted record in bytes; a longer one (often an unterminated quote) is skipped up to the next line. Default 1 MiB. */
  maxRecordBytes?: number;
}

/** Chunks are cut to this size so memory and the record-size check stay fine-grained. */
const PIECE_BYTES = 64 * 1024;
const LF = 0x0a;

type CsvEvent =
  | { kind: 'record'; cells: string[]; raw: string; end: number }
  | { kind: 'skip'; err: CsvError | undefined; raw: string; progress: number };

interface PendingSkip {
  row: FileErrorRow;
  /** Absolute offset where the broken record starts. */
  start: number;
  prefix: string;
  codes: Set<string>;
}

function csvErrorRow(line: number, raw: string, details: ErrorDetail[]): FileErrorRow {
  const first = details[0]?.message ?? 'malformed row';
  const message = `line ${line}: ${first}${andMore(details.length, 'problem')}`;
  return { line, error: { code: 'MALFORMED_CSV', message, details }, raw: truncateRaw(raw) };
}

function withoutDelimiter(raw: string): string {
  return raw.endsWith('\r') || raw.endsWith('\n') ? raw.slice(0, -1) : raw;
}

/** Turns a csv-parse error into a sentence that names the column and not csv-parse's own line count. */
function describeCsvError(err: CsvError | undefined, column: string): { reason: string; message: string } {
  switch (err?.code) {
    case 'CSV_INVALID_CLOSING_QUOTE':
      return { reason: 'quote', message: `column ${column}: unexpected character after a closing quote (quotes inside a quoted field must be doubled)` };
    case 'INVALID_OPENING_QUOTE':
      return { reason: 'quote', message: `column ${column}: a quote inside an unquoted field (quote the whole field and double the quote)` };
    case 'CSV_QUOTE_NOT_CLOSED':
      return { reason: 'quote', message: `column ${column}: quoted field is never closed (unterminated quote)` };
    case undefined:
      return { reason: 'syntax', message: `column ${column}: malformed field` };
    default:
      return { reason: 'syntax', message: `column ${column}: ${(err?.message ?? '').replace(/\s*(?:at|on) line \d+/g, '')}` };
  }
}

/**
 * csv-parse delivers records through `this.push`; taking them there keeps them in order with
 * `on_skip` errors (both synchronous) and reads the record's end offset from the live `info`,
 * without the per-record info snapshot `on_record` would cost.
 */
class CapturingParser extends Parser {
  constructor(
    options: Options,
    private readonly sink: (value: { record: string[]; raw: string }, end: number) => void,
  ) {
    super(options);
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null) return super.push(chunk, encoding);
    this.sink(chunk as { record: string[]; raw: string }, this.info.bytes);
    return true;
  }
}

/** Awaits a stream callback; csv-parse only fails here on bugs, reported as a fatal file error. */
function settle(start: (done: (err?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    start((err) => (err ? reject(new AudientError('MALFORMED_CSV', `CSV parsing failed: ${err.message}`)) : resolve()));
  });
}

/** Drives one csv-parse instance (a new one after an over-long record) and turns its output into rows. */
class CsvSession {
  private readonly root: FieldDef;
  private readonly mapping: CsvMapping | undefined;
  private readonly delimiter: string;
  private readonly maxRecordBytes: number;
  private readonly lines = new LineIndex();
  private plan: CsvPlan | undefined;
  /** Whether some column names an array index, so records may have holes to remove. */
  private indexed = false;
  private parser: Parser | undefined;
  /** Bytes of input consumed so far. */
  private fed = 0;
  /**
   * Absolute offset where the next record starts: the end of the last record, or after a broken
   * one (whose end csv-parse does not report) the last field boundary it passed.
   */
  private lastEnd = 0;
  /** Whether `lastEnd` is exactly the end of the previous record. */
  private lastEndExact = true;
  /** Skipping input up to the next LF after an over-long record. */
  private skipping = false;
  private events: CsvEvent[] = [];
  private out: FileRow[] = [];
  private pending: PendingSkip | undefined;
  /** Input since `lastEnd` (or the pending broken record), to show the text of broken records. */
  private recent: Array<{ start: number; bytes: Buffer }> = [];

  constructor(opts: CsvOptions) {
    this.root = opts.root;
    this.mapping = opts.mapping;
    this.delimiter = opts.delimiter ?? ',';
    if ([...this.delimiter].length !== 1 || /["\r\n]/.test(this.delimiter)) {
      throw new AudientError('BAD_REQUEST', `CSV delimiter must be one character other than a quote or line break, got ${JSON.stringify(this.delimiter)}`);
    }
    this.maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    this.startParser(0);
  }

  /** Starts a parser on input from absolute offset `base` (0, or just after an over-long record). */
  private startParser(base: number): void {
    this.lastEnd = base;
    this.lastEndExact = true;
    const parser: Parser = new CapturingParser({
      delimiter: this.delimiter,
      bom: true,
      raw: true,
      // Explicit, so a file mixing LF and CRLF splits on both (auto-discovery keeps only the first seen).
      record_delimiter: ['\r\n', '\n'],
      relax_column_count: true,
      skip_records_with_error: true,
      // csv-parse's own limit loses data when combined with skip_records_with_error; ours is below.
      max_record_size: 0,
      on_skip: (err, raw) => {
        this.events.push({ kind: 'skip', err, raw: raw ?? '', progress: base + parser.info.bytes });
        return undefined;
      },
    }, (value, end) => {
      // With `raw`, csv-parse hands `{ record, raw }`.
      this.events.push({ kind: 'record', cells: value.record, raw: value.raw, end: base + end });
    });
    // Errors reach us through write/end callbacks; this keeps them from being unhandled events.
    parser.on('error', () => undefined);
    this.parser = parser;
  }

  /** Feeds the next piece of input (at most {@link PIECE_BYTES}). */
  async push(piece: Buffer): Promise<void> {
    this.lines.add(piece);
    if (this.skipping) {
      const lf = piece.indexOf(LF);
      if (lf === -1) {
        this.fed += piece.length;
        return;
      }
      this.fed += lf + 1;
      this.skipping = false;
      this.startParser(this.fed);
      piece = piece.subarray(lf + 1);
      if (piece.length === 0) return;
    }
    const parser = this.parser as Parser;
    this.recent.push({ start: this.fed, bytes: piece });
    this.fed += piece.length;
    await settle((done) => parser.write(piece, done));
    this.process();
    const keepFrom = Math.min(this.lastEnd, this.pending?.start ?? this.lastEnd);
    this.recent = this.recent.filter((r) => r.start + r.bytes.length > keepFrom);
    if (this.fed - this.lastEnd > this.maxRecordBytes) this.abandonRecord();
  }

  /** Ends the input: the last record and a trailing unterminated quote are reported. */
  async finish(): Promise<void> {
    const parser = this.parser;
    if (parser && !this.skipping) {
      await settle((done) => parser.end(done));
      this.process();
    }
    this.flushPending(this.fed);
  }

  /** Rows produced so far, in file order. */
  take(): FileRow[] {
    const rows = this.out;
    this.out = [];
    return rows;
  }

  close(): void {
    this.parser?.destroy();
    this.parser = undefined;
  }

  /** An over-long record: report it, drop the parser and resume after the next line break. */
  private abandonRecord(): void {
    if (!this.plan) {
      throw new AudientError('MALFORMED_CSV', `no CSV header row within the first ${this.maxRecordBytes} bytes`);
    }
    this.flushPending(this.lastEnd);
    const line = this.lines.lineAt(this.lastEnd);
    const raw = this.textBetween(this.lastEnd, this.fed);
    const message = `record is longer than ${this.maxRecordBytes} bytes (an unterminated quote?); skipped to the next line`;
    this.out.push(csvErrorRow(line, raw, [{ path: '', reason: 'too-large', message }]));
    this.close();
    this.recent = [];
    this.skipping = true;
  }

  /** Up to {@link MAX_RAW_CHARS} bytes of input from `from` to `to` (absolute offsets), as text. */
  private textBetween(from: number, to: number): string {
    const parts: Buffer[] = [];
    const until = Math.min(to, from + MAX_RAW_CHARS);
    for (const { start, bytes } of this.recent) {
      const lo = Math.max(from, start);
      const hi = Math.min(until, start + bytes.length);
      if (lo < hi) parts.push(bytes.subarray(lo - start, hi - start));
    }
    return new TextDecoder().decode(Buffer.concat(parts));
  }

  private process(): void {
    for (const event of this.events) {
      if (event.kind === 'skip') this.onSkip(event);
      else this.onRecord(event);
    }
    this.events = [];
  }

  private columnLabel(index: unknown): string {
    if (typeof index !== 'number') return '?';
    const column = this.plan?.columns[index];
    return JSON.stringify(column?.name || `column ${index + 1}`);
  }

  private onSkip(event: Extract<CsvEvent, { kind: 'skip' }>): void {
    if (!this.plan) {
      throw new AudientError('MALFORMED_CSV', `invalid CSV header: ${event.err?.message ?? 'malformed header row'}`);
    }
    const { reason, message } = describeCsvError(event.err, this.columnLabel(event.err?.column));
    const detail: ErrorDetail = { path: '', reason, message };
    const column = typeof event.err?.column === 'number' ? this.plan.columns[event.err.column] : undefined;
    if (column) detail.path = column.target?.path ?? column.name;
    const code = event.err?.code ?? 'unknown';
    const pending = this.pending;
    if (pending && event.raw.startsWith(pending.prefix)) {
      // csv-parse reports again inside the same broken record: one row, all its problems.
      pending.row.raw = truncateRaw(event.raw);
      if (!pending.codes.has(code)) {
        pending.codes.add(code);
        pending.row.error.details.push(detail);
      }
    } else {
      const start = this.lastEndExact ? this.lastEnd : Math.max(this.lastEnd, event.progress);
      this.flushPending(start);
      const row = csvErrorRow(this.lines.lineAt(start), event.raw, [detail]);
      this.pending = { row, start, prefix: event.raw.slice(0, MAX_RAW_CHARS), codes: new Set([code]) };
    }
    this.lastEnd = Math.max(this.lastEnd, event.progress);
    this.lastEndExact = false;
  }

  /** Emits the broken record being reported, its text taken from the input up to `end`. */
  private flushPending(end: number): void {
    if (!this.pending) return;
    const { row, start } = this.pending;
    const full = end > start ? withoutDelimiter(this.textBetween(start, end).replace(/\r?\n$/, '\n')) : '';
    if (full !== '') row.raw = truncateRaw(full);
    const { details } = row.error;
    row.error.message = `line ${row.line}: ${details[0]?.message ?? 'malformed row'}${andMore(details.length, 'problem')}`;
    this.out.push(row);
    this.pending = undefined;
  }

  private onRecord(event: Extract<CsvEvent, { kind: 'record' }>): void {
    const rawBytes = Buffer.byteLength(event.raw);
    // `raw` stops at the first byte of the record delimiter, so a CRLF's LF is not in it.
    const crlf = event.raw.endsWith('\r');
    const start = Math.max(this.lastEnd, event.end - rawBytes - (crlf ? 1 : 0));
    this.flushPending(start);
    this.lastEnd = event.end;
    this.lastEndExact = true;
    const raw = withoutDelimiter(event.raw);
    if (raw.trim() === '' && event.cells.length <= 1) return;
    const line = this.lines.lineAt(start);
    if (!this.plan) {
      this.plan = planColumns(event.cells, this.root, this.mapping);
      this.indexed = this.plan.columns.some((c) => c.target?.segments.some((seg) => 'index' in seg));
      return;
    }
    const { columns, constants } = this.plan;
    if (event.cells.length !== columns.length) {
      const message = `expected ${columns.length} columns (as in the header), got ${event.cells.length}`;
      this.out.push(csvErrorRow(line, raw, [{ path: '', reason: 'column-count', message }]));
      return;
    }
    const record: Record<string, unknown> = {};
    const details: ErrorDetail[] = [];
    for (const c of constants) setPath(record, c.segments, structuredClone(c.value));
    event.cells.forEach((cell, i) => {
      const target = columns[i]?.target;
      if (!target) return;
      const result = convertCell(cell, target.field);
      if (result.absent) return;
      if ('expected' in result) {
        const shown = cell.length > 40 ? `${cell.slice(0, 37)}...` : cell;
        details.push({
          path: target.path,
          reason: 'type',
          message: `column ${JSON.stringify(columns[i]?.name)}: expected ${result.expected}, got ${JSON.stringify(shown)}`,
          expected: result.expected,
          received: JSON.stringify(shown),
        });
        return;
      }
      setPath(record, target.segments, result.value);
    });
    if (details.length > 0) this.out.push(csvErrorRow(line, raw, details));
    else this.out.push({ line, record: this.indexed ? compactArrays(record) : record });
  }
}

/** Removes holes left by indexes whose cells were empty (`items[1]` filled, `items[0]` not). */
function compactArrays<T>(value: T): T {
  if (Array.isArray(value)) {
    const dense = value.filter(() => true).map((v: unknown) => compactArrays(v));
    return dense as T;
  }
  if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) obj[key] = compactArrays(obj[key]);
  }
  return value;
}

/**
 * Parses a CSV file into records typed by the schema. The header names each column's target as
 * a dot path (`identityMap.email[0].id`), or `mapping` maps source names to paths. Empty cells
 * are absent fields; numbers and booleans are parsed strictly; paths unknown to the schema are
 * kept as text for the validator to report. A broken row (column count, quotes, bad number)
 * yields an error row with its line and column; header problems throw
 * `AudientError('MALFORMED_CSV')` before any row.
 */
export async function* parseCsv(input: AsyncIterable<Buffer | string>, opts: CsvOptions): AsyncGenerator<FileRow> {
  const session = new CsvSession(opts);
  try {
    for await (const chunk of toByteChunks(input)) {
      for (let at = 0; at < chunk.length; at += PIECE_BYTES) {
        await session.push(chunk.subarray(at, at + PIECE_BYTES));
        yield* session.take();
      }
    }
    await session.finish();
    yield* session.take();
  } finally {
    session.close();
  }
}
