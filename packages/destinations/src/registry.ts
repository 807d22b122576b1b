/**
 * The one registry of destinations. Core never imports a destination; the server and the
 * runtime find them here by id.
 */
import type { AuthScheme, DeliveryMode, DestinationDefinition, IdentityRequirement, SettingField } from '@audient/core';
import { httpApi } from './http-api/index.js';
import { moengage } from './moengage/index.js';
import { partnerPush } from './partner-push/index.js';
import { customPersonalization } from './custom-personalization/index.js';

/** Every destination, in catalogue order. */
export const destinationList: readonly DestinationDefinition[] = [httpApi, moengage, partnerPush, customPersonalization];

function byId(list: readonly DestinationDefinition[]): ReadonlyMap<string, DestinationDefinition> {
  const map = new Map<string, DestinationDefinition>();
  for (const d of list) {
    if (map.has(d.id)) throw new Error(`destination id ${d.id} is declared twice`);
    map.set(d.id, d);
  }
  return map;
}

/** Destinations by id. */
export const destinations: ReadonlyMap<string, DestinationDefinition> = byId(destinationList);

/** The destination with this id, or undefined. */
export function getDestination(id: string): DestinationDefinition | undefined {
  return destinations.get(id);
}

/** What the API and the console show of a destination: its declaration without the functions. */
export interface DestinationSummary {
  id: string;
  name: string;
  description: string;
  category: DestinationDefinition['category'];
  settings: readonly SettingField[];
  auth: AuthScheme['kind'];
  identities: IdentityRequirement;
  marketingActions: readonly string[];
  delivery: DeliveryMode;
  allowsAttributes: boolean;
  timeoutMs: number;
}

/** The catalogue for the API, sorted by id. */
export function listDestinations(): DestinationSummary[] {
  return [...destinationList]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((d) => ({
      id: d.id,
      name: d.name,
      description: d.description,
      category: d.category,
      settings: d.settings,
      auth: d.auth.kind,
      identities: d.identities,
      marketingActions: d.marketingActions,
      delivery: d.delivery,
      allowsAttributes: d.allowsAttributes,
      timeoutMs: d.timeoutMs,
    }));
}
