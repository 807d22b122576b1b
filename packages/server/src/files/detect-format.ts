/** Picks the parser for an uploaded file from its content type, else its file name. */

/** The batch file formats Audient parses. */
export type FileFormat = 'csv' | 'jsonl';

const BY_CONTENT_TYPE: Readonly<Record<string, FileFormat>> = {
  'text/csv': 'csv',
  'application/csv': 'csv',
  'text/comma-separated-values': 'csv',
  'application/x-ndjson': 'jsonl',
  'application/ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
  'application/x-jsonlines': 'jsonl',
  'application/jsonlines': 'jsonl',
  'application/jsonl+json': 'jsonl',
};

const BY_EXTENSION: Readonly<Record<string, FileFormat>> = {
  csv: 'csv',
  jsonl: 'jsonl',
  ndjson: 'jsonl',
};

/**
 * The format of a file: a specific content type wins (`text/csv; charset=utf-8`); a generic one
 * (`application/octet-stream`, `text/plain`) or none falls back to the extension (`.csv`,
 * `.jsonl`, `.ndjson`, any case). Undefined when neither tells, e.g. `.json` or `.csv.gz`.
 */
export function detectFormat(filename: string, contentType?: string): FileFormat | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (type && Object.hasOwn(BY_CONTENT_TYPE, type)) return BY_CONTENT_TYPE[type];
  const base = filename.split(/[\\/]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const ext = base.slice(dot + 1).toLowerCase();
  return Object.hasOwn(BY_EXTENSION, ext) ? BY_EXTENSION[ext] : undefined;
}
