/**
 * Batch-ingestion files: streaming parsers that turn CSV and JSON Lines into records, one row per
 * record with its file line, bad rows reported precisely without failing their neighbours.
 */
export { parseJsonLines, type JsonLinesOptions } from './parse-jsonl.js';
export { parseCsv, type CsvOptions } from './parse-csv.js';
export { planColumns, convertCell, fieldAtSegments, type CsvMapping, type CsvPlan, type ColumnPlan } from './csv-columns.js';
export { setPath, parsePath, formatPath, MAX_ARRAY_INDEX, type PathSegment } from './set-path.js';
export {
  DEFAULT_MAX_RECORD_BYTES,
  MAX_RAW_CHARS,
  type FileErrorRow,
  type FileRecordRow,
  type FileRow,
  type FileRowError,
  type FileRowErrorCode,
} from './types.js';
export { detectFormat, type FileFormat } from './detect-format.js';
