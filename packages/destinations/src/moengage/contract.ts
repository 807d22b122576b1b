/**
 * MoEngage Data API contract, as documented — declared once, used by the destination and by our
 * strict test server. Sources (MoEngage developer documentation, page titles):
 * - "Bulk Import" / "Bulk Import Users and Events" (developers.moengage.com/hc/en-us/articles/4413174113044,
 *   moengage.com/docs/api/bulk/bulk-import-users-and-events): `POST https://api-0X.moengage.com/v1/transition/<Workspace_ID>`,
 *   body `{"type":"transition","elements":[{"type":"customer","customer_id":…,"attributes":{…}}]}`
 *   (`type` values case-sensitive; elements may also be `event` / `device`), at most 100 kB per
 *   call, rate limit "10,000 users and 30,000 events per minute" (an older revision says 60,000
 *   users), "all bulk API requests return a 200 response code" — no per-element result.
 * - "Data API" / "Data API Overview" (developers.moengage.com/hc/en-us/articles/4404674776724,
 *   moengage.com/docs/api/data/data-overview): headers `Authorization: Basic base64(<Workspace ID>:<Data API key>)`,
 *   `Content-Type: application/json`, `MOE-APPKEY: <Workspace ID>`; `customer_id` is required and
 *   may not be one of a list of placeholder values.
 * - "Introduction" (moengage.com/docs/api/introduction): data centres DC-01…DC-06 and DC-101,
 *   REST host `https://api-<dc>.moengage.com`.
 * - "Track User" (moengage.com/docs/api/user/track-user): error body
 *   `{"status":"fail","error":{"attribute"?,"message","type","request_id"}}` with 400
 *   (MissingAttributeError, AttributeError, "Malformed JSON"), 401 ("Authentication required"),
 *   403 (BlockedClient / Account Suspended), 413 (PayloadTooLarge), 415 (MediaTypeError),
 *   429 (RateLimitError), 500; success `{"status":"success","message":"Your request has been accepted and will be processed soon."}`.
 *   User attributes: "id", "_id" and "" are blocked names; the "moe_" prefix is reserved for
 *   MoEngage's standard attributes.
 * - "How to Understand the MoEngage Data Tracking Policy" (help.moengage.com): attribute names up
 *   to 200 characters, values up to 512, arrays up to 50 elements of at most 512 characters, all
 *   of one type; dictionary values are rejected.
 */

/** Data centres and their API hosts ("Introduction"). */
export const MOENGAGE_DATA_CENTRES = [
  { value: '01', label: 'DC-01 (US)' },
  { value: '02', label: 'DC-02 (EU)' },
  { value: '03', label: 'DC-03 (India)' },
  { value: '04', label: 'DC-04 (US)' },
  { value: '05', label: 'DC-05 (Singapore)' },
  { value: '06', label: 'DC-06 (Indonesia)' },
  { value: '101', label: 'DC-101' },
] as const;

/** The REST API host of a data centre. */
export const moengageApiHost = (dc: string): string => `https://api-${dc}.moengage.com`;

/** Path of the Bulk Import API for a workspace. */
export const moengageBulkPath = (workspaceId: string): string => `/v1/transition/${encodeURIComponent(workspaceId)}`;

/** Largest bulk request body, bytes ("maximum of 100 kB in a single API call"; kB read as 1000). */
export const MOENGAGE_MAX_BODY_BYTES = 100_000;

/** Users per minute across all bulk requests of a workspace (the lower documented figure). */
export const MOENGAGE_USERS_PER_MINUTE = 10_000;

/** Attribute limits ("Data Tracking Policy"). */
export const MOENGAGE_LIMITS = { nameChars: 200, valueChars: 512, arrayElements: 50 } as const;

/** Blocked user attribute names ("Track User"). */
export const MOENGAGE_BLOCKED_NAMES: ReadonlySet<string> = new Set(['id', '_id', '']);

/** MoEngage's own `moe_` attributes a mapping may target (standard attributes of "Track User"). */
export const MOENGAGE_STANDARD_MOE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'moe_wa_subscription',
  'moe_em_unsub_categories',
  'moe_sub_w',
  'moe_spam',
  'moe_unsubscribe',
  'moe_hard_bounce',
  'moe_sms_subscription',
  'moe_email_optin_status',
]);

/** Placeholder values MoEngage refuses as `customer_id` ("Data API Overview"; SDK unique-id notes). */
export const MOENGAGE_REFUSED_CUSTOMER_IDS: ReadonlySet<string> = new Set([
  'unknown', 'guest', 'null', '0', '1', '2', '-1', '-2', 'true', 'false', 'user_attribute_unique_id', '(empty)',
  'na', 'n/a', '', 'dummy_seller_code', 'user_id', 'id', 'customer_id', 'uid', 'userid', 'none',
]);

/** Why MoEngage would refuse a user attribute name, or undefined when it is fine. */
export function moengageAttributeNameProblem(name: string): string | undefined {
  if (MOENGAGE_BLOCKED_NAMES.has(name)) return `${JSON.stringify(name)} is a blocked attribute name`;
  if (name.toLowerCase().startsWith('moe_') && !MOENGAGE_STANDARD_MOE_ATTRIBUTES.has(name)) return `${name}: the moe_ prefix is reserved by MoEngage`;
  if (name.length > MOENGAGE_LIMITS.nameChars) return `${name.slice(0, 20)}…: attribute names are at most ${MOENGAGE_LIMITS.nameChars} characters`;
  return undefined;
}

/** True when MoEngage accepts the value as a `customer_id`. */
export function moengageCustomerIdAccepted(id: string): boolean {
  return id.trim().length > 1 && !MOENGAGE_REFUSED_CUSTOMER_IDS.has(id.trim().toLowerCase());
}

/** MoEngage's error body. */
export interface MoEngageErrorBody {
  status: 'fail';
  error: { attribute?: string; message: string; type: string; request_id: string };
}

/** MoEngage's success body. */
export const MOENGAGE_SUCCESS_BODY = { status: 'success', message: 'Your request has been accepted and will be processed soon.' } as const;
