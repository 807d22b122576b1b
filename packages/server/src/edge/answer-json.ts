/**
 * The interact answer's JSON text, written directly: the same text as `JSON.stringify(answer)`.
 *
 * The answer's largest part is its profile-lookup entries: per connection, the ids of the
 * audiences the visitor is in, as `{"id": …}` objects. Fastify's compiled serialiser wrote each
 * handle's payload with JSON.stringify (payloads differ by handle type, so the schema leaves them
 * open) and joined the pieces: per edge request, about 4 KB of intermediate strings and ~4 % of
 * the main thread's time in the edge benchmark. Here each audience id's `{"id":…}` text is made
 * once and reused, and the other handles, a few small objects, go through JSON.stringify.
 */
import type { EdgeHandle, InteractResponse } from './edge-service.js';

/** Distinct audience ids whose text is kept (a sandbox has far fewer audiences; past it the table starts over). */
const MAX_SEGMENT_TEXTS = 10_000;
const segmentTexts = new Map<string, string>();

function segmentText(id: string): string {
  let text = segmentTexts.get(id);
  if (text === undefined) {
    if (segmentTexts.size >= MAX_SEGMENT_TEXTS) segmentTexts.clear();
    text = `{"id":${JSON.stringify(id)}}`;
    segmentTexts.set(id, text);
  }
  return text;
}

function lookupsText(payload: Extract<EdgeHandle, { type: 'activation:pull' }>['payload']): string {
  let out = '{"type":"activation:pull","payload":[';
  for (let i = 0; i < payload.length; i++) {
    const c = payload[i]!;
    if (i > 0) out += ',';
    out += `{"type":${JSON.stringify(c.type)},"destinationId":${JSON.stringify(c.destinationId)},"alias":${JSON.stringify(c.alias)},"segments":[`;
    for (let k = 0; k < c.segments.length; k++) out += k > 0 ? `,${segmentText(c.segments[k]!.id)}` : segmentText(c.segments[k]!.id);
    out += ']}';
  }
  return `${out}]}`;
}

/** `JSON.stringify(answer)`, written faster for the answer's shape. */
export function interactJson(answer: InteractResponse): string {
  let out = `{"requestId":${JSON.stringify(answer.requestId)},"handle":[`;
  for (let i = 0; i < answer.handle.length; i++) {
    const h = answer.handle[i]!;
    if (i > 0) out += ',';
    out += h.type === 'activation:pull' ? lookupsText(h.payload) : JSON.stringify(h);
  }
  out += ']';
  if (answer.warnings !== undefined) out += `,"warnings":${JSON.stringify(answer.warnings)}`;
  return `${out}}`;
}
