/**
 * Custom personalization (seed 000, Adobe's "Custom Personalization connection"): a profile-lookup
 * destination. Nothing is pushed: the page's Web SDK asks Audient's edge endpoint
 * (`/ee/v1/interact?configId=<datastreamId>`) and the answer carries, per custom personalization
 * connection of that datastream, the seed's `event.destinations` entry:
 *
 *     {"type": "profileLookup", "destinationId": "<connection id>", "alias": "<integrationAlias>",
 *      "segments": [{"id": "<audience id>"}, …]}
 *
 * listing the dataflow's mapped audiences the visitor is in. Several connections (a
 * personalization app, an ad server) may share one datastream, each with its own alias and
 * audiences. Audiences are activated without attribute mapping and with any identity.
 */
import type { DestinationDefinition, ExportRecord, RequestDescriptor, SettingValues } from '@audient/core';

/** The destination id the edge looks for when it answers a datastream. */
export const CUSTOM_PERSONALIZATION_ID = 'custom-personalization';

/** What the edge returns per connection (seed 000's `event.destinations` entry). */
export interface ProfileLookupEntry {
  type: 'profileLookup';
  destinationId: string;
  alias: string;
  segments: Array<{ id: string }>;
}

/** Builds one seed 000 entry; segment ids are sorted so answers are stable. */
export function profileLookupEntry(opts: { connectionId: string; alias: string; audienceIds: Iterable<string> }): ProfileLookupEntry {
  return {
    type: 'profileLookup',
    destinationId: opts.connectionId,
    alias: opts.alias,
    segments: [...new Set(opts.audienceIds)].sort().map((id) => ({ id })),
  };
}

/** Nothing is delivered: the edge pulls memberships at page time. */
function toRequests(_records: readonly ExportRecord[], _ctx: { settings: SettingValues }): RequestDescriptor[] {
  return [];
}

/** Settings accepted by validation, as documentation and for tests. */
export const exampleSettings: SettingValues = {
  name: 'Home page personalization',
  description: 'Audiences for the home page hero banner',
  integrationAlias: 'personalizationAlias',
  datastreamId: '7bb4cb8d-8c2e-4450-871d-b7824f547111',
};

/** The custom personalization destination. */
export const customPersonalization: DestinationDefinition = {
  id: CUSTOM_PERSONALIZATION_ID,
  name: 'Custom personalization',
  description:
    'Profile lookup for on-site personalization, content management systems and ad servers: the Web SDK receives the mapped audiences a visitor is in, under an integration alias, in the edge response of the page (same-page and next-page).',
  category: 'edge',
  settings: [
    { key: 'name', label: 'Name', type: 'string', description: 'A name you choose for this destination.' },
    { key: 'description', label: 'Description', type: 'string', description: 'What this destination is for, e.g. the campaign.' },
    {
      key: 'integrationAlias',
      label: 'Integration alias',
      type: 'string',
      required: true,
      pattern: '^[A-Za-z0-9_.-]{1,128}$',
      description: 'Sent to the Web SDK as the `alias` of this destination, so page code can pick its audiences.',
    },
    {
      key: 'datastreamId',
      label: 'Datastream ID',
      type: 'string',
      required: true,
      pattern: '^[A-Za-z0-9_-]{1,64}$',
      description: 'The datastream whose edge responses carry these audiences (see /v1/datastreams).',
    },
  ],
  auth: { kind: 'none' },
  identities: { targets: [] },
  marketingActions: ['onsite-personalization', 'segment-sharing'],
  delivery: { kind: 'per-profile' },
  allowsAttributes: false,
  timeoutMs: 1000,
  toRequests,
};
