/**
 * The pure half of ingestion: a raw record becomes either a prepared record (validated, identities
 * normalised, timestamp parsed) or a rejection that says exactly what is wrong. Storage does the rest.
 */
import type { ErrorCode, ErrorDetail } from '../errors.js';
import { extractIdentities, type IdentityRef } from '../identity/extract.js';
import type { NamespaceRegistry } from '../identity/namespaces.js';
import type { ResolvedSchema } from '../schema/resolve.js';
import { unstorableText, validateRecord } from '../schema/validate.js';

/** Guardrails on records; defaults follow Adobe's documented limits. */
export interface IngestLimits {
  /** Largest experience event, bytes of JSON. */
  maxEventBytes: number;
  /** Largest profile record, bytes of JSON. */
  maxProfileBytes: number;
  /** Most identities one record may carry. */
  maxIdentitiesPerRecord: number;
  /** Most identities one graph may hold before eviction. */
  maxGraphSize: number;
}

/** Adobe's guardrails: event 10 KB, profile record 100 KB, 20 identities per record, 50 per graph. */
export const DEFAULT_LIMITS: IngestLimits = {
  maxEventBytes: 10 * 1024,
  maxProfileBytes: 100 * 1024,
  maxIdentitiesPerRecord: 20,
  maxGraphSize: 50,
};

/** A record ready to be stored. */
export type PreparedRecord =
  | {
      ok: true;
      kind: 'profile';
      identities: IdentityRef[];
      primary: IdentityRef;
      attributes: Record<string, unknown>;
      /** Source timestamp (extSourceSystemAudit.lastUpdatedDate) in epoch ms, if the record has one. */
      sourceTime: number | undefined;
    }
  | {
      ok: true;
      kind: 'event';
      identities: IdentityRef[];
      primary: IdentityRef;
      eventId: string;
      timestamp: number;
      body: Record<string, unknown>;
      /** `body` as JSON text (made for the size check; storage keeps it as it is). */
      bodyJson?: string;
    };

/** Why a record was refused. */
export interface RejectedRecord {
  ok: false;
  code: ErrorCode;
  message: string;
  details: ErrorDetail[];
}

/** UTF-8 byte length of a string without allocating when it is clearly short. */
export function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * `value` as JSON text (undefined for undefined), or null when it nests too deeply for
 * JSON.stringify, whose recursion runs out of call stack a few thousand levels down: input
 * parsed from a request can nest that deep, and must then be refused, not fail the request.
 */
export function jsonTextOf(value: unknown): string | undefined | null {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (err instanceof RangeError) return null;
    throw err;
  }
}

/** Validates and prepares one record of a dataset whose schema is `schema`. */
export function prepareRecord(
  record: unknown,
  schema: ResolvedSchema,
  registry: NamespaceRegistry,
  limits: IngestLimits,
): PreparedRecord | RejectedRecord {
  const isEvent = schema.class === 'event';
  const max = isEvent ? limits.maxEventBytes : limits.maxProfileBytes;
  const text = jsonTextOf(record);
  if (text === null) {
    return {
      ok: false,
      code: 'VALIDATION_FAILED',
      message: 'record nests too deeply to be read (thousands of levels)',
      details: [{ path: '', reason: 'depth', message: 'nested too deeply', expected: 'a record as deep as its schema' }],
    };
  }
  const json = text ?? '';
  const size = json.length * 3 <= max ? json.length : utf8Length(json);
  if (size > max) {
    return {
      ok: false,
      code: 'RECORD_TOO_LARGE',
      message: `${isEvent ? 'an experience event' : 'a profile record'} may be at most ${max} bytes, this one is ${size}`,
      details: [{ path: '', reason: 'size', message: 'record too large', expected: `<= ${max} bytes`, received: `${size} bytes` }],
    };
  }
  const unstorable = unstorableText(record, json);
  if (unstorable.length > 0) return { ok: false, code: 'VALIDATION_FAILED', message: 'record holds text no store keeps (U+0000 or an unpaired surrogate)', details: unstorable };
  const details = validateRecord(schema.root, record);
  if (details.length > 0) {
    return { ok: false, code: 'VALIDATION_FAILED', message: `record does not match schema ${schema.id}`, details };
  }
  const body = record as Record<string, unknown>;
  const found = extractIdentities(schema, body, registry, limits.maxIdentitiesPerRecord);
  if (found.errors.length > 0) {
    const tooMany = found.errors.some((e) => e.reason === 'too-many-identities');
    return {
      ok: false,
      code: tooMany ? 'TOO_MANY_IDENTITIES' : 'INVALID_IDENTITY',
      message: tooMany ? 'record carries too many identities' : 'record has an invalid identity',
      details: found.errors,
    };
  }
  if (!found.primary) {
    return {
      ok: false,
      code: 'MISSING_IDENTITY',
      message: 'record carries no identity, so it cannot be joined to a profile',
      details: [{ path: 'identityMap', reason: 'required', message: 'at least one identity (identity field or identityMap entry) is required' }],
    };
  }
  if (isEvent) {
    return {
      ok: true,
      kind: 'event',
      identities: found.identities,
      primary: found.primary,
      eventId: body['_id'] as string,
      timestamp: Date.parse(body['timestamp'] as string),
      body,
      bodyJson: json,
    };
  }
  const audit = body['extSourceSystemAudit'] as Record<string, unknown> | undefined;
  const updated = typeof audit?.['lastUpdatedDate'] === 'string' ? Date.parse(audit['lastUpdatedDate']) : undefined;
  return { ok: true, kind: 'profile', identities: found.identities, primary: found.primary, attributes: body, sourceTime: updated };
}
