/**
 * The shape every batch-file parser yields: one row per record of the file, either a record or a
 * precise error, always with its 1-based line number so a batch report can point at the file.
 */
import type { ErrorDetail } from '@audient/core';

/** Error codes a file row can carry (both drop-class in the error catalogue). */
export type FileRowErrorCode = 'MALFORMED_JSON' | 'MALFORMED_CSV';

/** Why one row of a file could not become a record. */
export interface FileRowError {
  code: FileRowErrorCode;
  message: string;
  details: ErrorDetail[];
}

/** A record parsed from a file. */
export interface FileRecordRow {
  /** 1-based line of the file where the record starts. */
  line: number;
  record: Record<string, unknown>;
  error?: undefined;
  raw?: undefined;
}

/** A row of a file that failed to parse; the parse goes on with the next row. */
export interface FileErrorRow {
  /** 1-based line of the file where the offending row starts. */
  line: number;
  error: FileRowError;
  /** The offending text, truncated to {@link MAX_RAW_CHARS}. */
  raw: string;
  record?: undefined;
}

/** One row of a parsed batch file, in file order. Narrow with `row.error`. */
export type FileRow = FileRecordRow | FileErrorRow;

/** How much of an offending row an error row keeps (10 KB). */
export const MAX_RAW_CHARS = 10 * 1024;

/** Default cap on one line (JSON Lines) or one record (CSV): 1 MiB. */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

/** Cuts the offending text so error reports stay small whatever the file holds. */
export function truncateRaw(raw: string): string {
  return raw.length > MAX_RAW_CHARS ? `${raw.slice(0, MAX_RAW_CHARS)}…` : raw;
}
