/**
 * One catalogue of stable error codes. Every error Audient returns carries a code from here, an
 * HTTP status and a retry class, so API users, the CLI and destinations react to codes, not text.
 */

/** What a caller should do about an error. */
export type RetryClass = 'drop' | 'fix-config' | 'refresh-auth' | 'retry-after' | 'rate-limited' | 'retry';

interface CatalogueEntry {
  status: number;
  retry: RetryClass;
}

/** Stable codes: never renamed once published; add new ones at will. */
export const ERROR_CATALOGUE = {
  BAD_REQUEST: { status: 400, retry: 'drop' },
  VALIDATION_FAILED: { status: 400, retry: 'drop' },
  MALFORMED_JSON: { status: 400, retry: 'drop' },
  MALFORMED_CSV: { status: 400, retry: 'drop' },
  RECORD_TOO_LARGE: { status: 413, retry: 'drop' },
  BODY_TOO_LARGE: { status: 413, retry: 'drop' },
  TOO_MANY_IDENTITIES: { status: 400, retry: 'drop' },
  MISSING_IDENTITY: { status: 400, retry: 'drop' },
  INVALID_IDENTITY: { status: 400, retry: 'drop' },
  UNKNOWN_NAMESPACE: { status: 400, retry: 'drop' },
  UNAUTHENTICATED: { status: 401, retry: 'refresh-auth' },
  FORBIDDEN: { status: 403, retry: 'fix-config' },
  NOT_FOUND: { status: 404, retry: 'drop' },
  CONFLICT: { status: 409, retry: 'drop' },
  BREAKING_SCHEMA_CHANGE: { status: 409, retry: 'fix-config' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retry: 'drop' },
  RATE_LIMITED: { status: 429, retry: 'rate-limited' },
  INTERNAL: { status: 500, retry: 'retry' },
  UNAVAILABLE: { status: 503, retry: 'retry-after' },
} as const satisfies Record<string, CatalogueEntry>;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** One precise problem inside a request or record: where, what was expected, what came. */
export interface ErrorDetail {
  /** Dot/bracket path of the offending field, e.g. `person.name.firstName` or `productListItems[2].SKU`. */
  path: string;
  /** Machine-readable reason, e.g. `type`, `required`, `unknown-field`, `enum`, `format`. */
  reason: string;
  /** Human sentence saying what was wrong. */
  message: string;
  expected?: string;
  received?: string;
}

/** The only error type Audient's code throws on purpose. */
export class AudientError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retry: RetryClass;
  readonly details: ErrorDetail[];

  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = []) {
    super(message);
    this.name = 'AudientError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.retry = ERROR_CATALOGUE[code].retry;
    this.details = details;
  }

  /** The JSON body the API returns for this error. */
  toJSON(): { error: { code: ErrorCode; message: string; details?: ErrorDetail[] } } {
    return {
      error: { code: this.code, message: this.message, ...(this.details.length ? { details: this.details } : {}) },
    };
  }
}

/** Maps an HTTP status from a remote system to how we treat it: retry 408, 429 and 5xx, never other 4xx. */
export function retryClassForStatus(status: number): RetryClass {
  if (status === 401) return 'refresh-auth';
  if (status === 429) return 'rate-limited';
  if (status === 408 || status >= 500) return 'retry';
  if (status >= 400) return 'drop';
  return 'drop';
}

/** Short textual description of a JSON value's kind, for "received" in error details. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return `string ${JSON.stringify(shown)}`;
  }
  if (typeof value === 'number') return `number ${value}`;
  if (typeof value === 'boolean') return `boolean ${value}`;
  return typeof value;
}
