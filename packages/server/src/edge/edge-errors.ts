/**
 * The edge endpoint's error format, shaped like Adobe Experience Edge's so Web SDK pages log
 * something they understand: `{type, status, title, detail, report?}` (RFC 7807 problem details).
 * `type` is a stable URI per cause; `report.requestId` ties the error to the request.
 */

/** Every cause the edge endpoint reports, with its status and title. */
export const EDGE_ERRORS = {
  MISSING_CONFIG_ID: { code: 'EDGE-0001', status: 400, title: 'Missing or invalid configId' },
  UNKNOWN_DATASTREAM: { code: 'EDGE-0002', status: 404, title: 'Unknown datastream' },
  DATASTREAM_DISABLED: { code: 'EDGE-0003', status: 403, title: 'Datastream disabled' },
  MALFORMED_REQUEST: { code: 'EDGE-0004', status: 400, title: 'Malformed request' },
  REQUEST_TOO_LARGE: { code: 'EDGE-0005', status: 413, title: 'Request too large' },
  INVALID_ECID: { code: 'EDGE-0006', status: 400, title: 'Invalid ECID' },
  ORIGIN_NOT_ALLOWED: { code: 'EDGE-0007', status: 403, title: 'Origin not allowed' },
  UNSUPPORTED_MEDIA_TYPE: { code: 'EDGE-0008', status: 415, title: 'Unsupported media type' },
  NOT_FOUND: { code: 'EDGE-0009', status: 404, title: 'Not found' },
  INTERNAL: { code: 'EDGE-0500', status: 500, title: 'Internal error' },
} as const;

/** A cause of `EDGE_ERRORS`. */
export type EdgeErrorKind = keyof typeof EDGE_ERRORS;

/** The JSON body of an edge error. */
export interface EdgeErrorBody {
  type: string;
  status: number;
  title: string;
  detail: string;
  report?: { requestId?: string; details?: Array<{ path: string; message: string }> };
}

/** An error the edge endpoint answers with its own format. */
export class EdgeError extends Error {
  readonly status: number;

  constructor(
    readonly kind: EdgeErrorKind,
    readonly detail: string,
    readonly details: Array<{ path: string; message: string }> = [],
  ) {
    super(detail);
    this.status = EDGE_ERRORS[kind].status;
  }

  /** The response body; `requestId` is added when known. */
  toBody(requestId?: string): EdgeErrorBody {
    const e = EDGE_ERRORS[this.kind];
    const report = {
      ...(requestId ? { requestId } : {}),
      ...(this.details.length ? { details: this.details } : {}),
    };
    return {
      type: `https://ns.audient.dev/edge/errors/${e.code}-${e.status}`,
      status: e.status,
      title: e.title,
      detail: this.detail,
      ...(Object.keys(report).length ? { report } : {}),
    };
  }
}
