/**
 * Standard field groups with XDM-compatible paths, so Adobe-shaped payloads (seed 001's profile,
 * Web SDK events) validate as they are. A schema includes groups by id and adds its own fields.
 */
import type { FieldDef, SchemaClass } from './types.js';

const str = (extra: Partial<FieldDef> = {}): FieldDef => ({ type: 'string', ...extra });
const num = (extra: Partial<FieldDef> = {}): FieldDef => ({ type: 'number', ...extra });
const int = (extra: Partial<FieldDef> = {}): FieldDef => ({ type: 'integer', ...extra });
const bool = (): FieldDef => ({ type: 'boolean' });
const obj = (properties: Record<string, FieldDef>, extra: Partial<FieldDef> = {}): FieldDef => ({
  type: 'object',
  properties,
  ...extra,
});
const measure = (): FieldDef => obj({ id: str(), value: num() });

/** XDM consent values: yes, no, pending, legitimate interest, contract, default yes/no, vital interest, unknown. */
const CONSENT_VALUES = ['y', 'n', 'p', 'LI', 'CT', 'dy', 'dn', 'VI', 'u'];
const consent = (): FieldDef => obj({ val: { type: 'enum', enum: CONSENT_VALUES }, time: { type: 'date-time' } });

/** `identityMap`: namespace code → list of identities, as in XDM and seed 001. */
export const IDENTITY_MAP_FIELD: FieldDef = {
  type: 'map',
  description: 'Identities of the record by namespace code',
  values: {
    type: 'array',
    items: obj({
      id: str({ required: true, minLength: 1 }),
      authenticatedState: { type: 'enum', enum: ['ambiguous', 'authenticated', 'loggedOut'] },
      primary: bool(),
    }),
  },
};

/** A standard field group: a named set of root fields for one class. */
export interface FieldGroup {
  id: string;
  title: string;
  class: SchemaClass;
  fields: Record<string, FieldDef>;
}

/** Fields every profile schema has. */
export const PROFILE_BASE: Record<string, FieldDef> = {
  _id: str({ description: 'Record id' }),
  identityMap: IDENTITY_MAP_FIELD,
  extSourceSystemAudit: obj({
    lastUpdatedDate: { type: 'date-time', description: 'When the source system last changed this record' },
  }),
};

/** Fields every experience-event schema has. */
export const EVENT_BASE: Record<string, FieldDef> = {
  _id: str({ required: true, minLength: 1, description: 'Event id; ingestion is idempotent by it' }),
  timestamp: { type: 'date-time', required: true, description: 'When the event happened' },
  eventType: str({ description: 'e.g. web.webpagedetails.pageViews, commerce.purchases' }),
  identityMap: IDENTITY_MAP_FIELD,
};

const address = (): FieldDef =>
  obj(
    {
      street1: str(), street2: str(), city: str(), postalCode: str(), region: str(),
      stateProvince: str(), country: str(), countryCode: str({ pattern: '^[A-Za-z]{2}$' }),
    },
    { labels: ['I2'] },
  );

/** The catalogue of standard field groups. */
export const STANDARD_FIELD_GROUPS: readonly FieldGroup[] = [
  {
    id: 'profile-person-details',
    title: 'Demographic details',
    class: 'profile',
    fields: {
      person: obj({
        name: obj(
          { firstName: str(), middleName: str(), lastName: str(), fullName: str(), courtesyTitle: str() },
          { labels: ['I1'] },
        ),
        birthDate: { type: 'date', labels: ['I2'] },
        birthYear: int({ minimum: 1800, maximum: 2200 }),
        gender: { type: 'enum', enum: ['male', 'female', 'not_specified', 'non_specific'] },
      }),
    },
  },
  {
    id: 'profile-personal-contact-details',
    title: 'Personal contact details',
    class: 'profile',
    fields: {
      personalEmail: obj({ address: str({ labels: ['I1'] }), primary: bool(), status: str() }),
      mobilePhone: obj({ number: str({ labels: ['I1'] }), primary: bool(), status: str() }),
      homePhone: obj({ number: str({ labels: ['I1'] }), primary: bool() }),
      homeAddress: address(),
    },
  },
  {
    id: 'profile-loyalty-details',
    title: 'Loyalty details',
    class: 'profile',
    fields: {
      loyalty: obj({
        loyaltyID: { type: 'array', items: str() },
        program: str(),
        tier: str(),
        status: str(),
        points: num(),
        pointsRedeemed: num(),
        pointsExpiring: num(),
        lifetimePurchases: num(),
        joinDate: { type: 'date-time' },
        memberSince: { type: 'date' },
        upgradeDate: { type: 'date-time' },
      }),
    },
  },
  {
    id: 'profile-consents',
    title: 'Consents and preferences',
    class: 'profile',
    fields: {
      consents: obj({
        collect: consent(),
        share: consent(),
        adID: consent(),
        personalize: obj({ content: consent() }),
        marketing: obj({
          preferred: str(),
          any: consent(),
          email: consent(),
          sms: consent(),
          push: consent(),
          call: consent(),
          postalMail: consent(),
        }),
        idSpecific: { type: 'map', values: { type: 'map', values: { type: 'map', values: consent() } } },
      }),
    },
  },
  {
    id: 'profile-identifiers',
    title: 'Core identifiers',
    class: 'profile',
    fields: {
      identification: obj({
        core: obj({
          ecid: str({ identity: { namespace: 'ECID' } }),
          email: str({ identity: { namespace: 'email' }, labels: ['I1'] }),
          phoneNumber: str({ identity: { namespace: 'phone' }, labels: ['I1'] }),
          crmId: str({ identity: { namespace: 'crmId' } }),
          userId: str({ identity: { namespace: 'user_id' } }),
          anonymousId: str({ identity: { namespace: 'anonymous_id' } }),
        }),
      }),
    },
  },
  {
    id: 'event-web-details',
    title: 'Web details',
    class: 'event',
    fields: {
      web: obj({
        webPageDetails: obj({
          URL: str(), name: str(), siteSection: str(), server: str(), isHomePage: bool(),
          pageViews: measure(),
        }),
        webReferrer: obj({ URL: str(), type: str() }),
        webInteraction: obj({ name: str(), type: str(), URL: str(), linkClicks: measure() }),
      }),
    },
  },
  {
    id: 'event-commerce-details',
    title: 'Commerce details',
    class: 'event',
    fields: {
      commerce: obj({
        order: obj({
          purchaseID: str(),
          purchaseOrderNumber: str(),
          priceTotal: num(),
          currencyCode: str({ pattern: '^[A-Z]{3}$' }),
          orderType: str(),
          payments: {
            type: 'array',
            items: obj({ paymentType: str(), paymentAmount: num(), currencyCode: str(), transactionID: str() }),
          },
        }),
        purchases: measure(),
        productViews: measure(),
        productListViews: measure(),
        productListAdds: measure(),
        productListRemovals: measure(),
        checkouts: measure(),
      }),
      productListItems: {
        type: 'array',
        items: obj({
          SKU: str(), name: str(), quantity: int(), priceTotal: num(), currencyCode: str(),
          productAddMethod: str(), productCategories: { type: 'array', items: obj({ categoryID: str(), categoryName: str() }) },
        }),
      },
    },
  },
  {
    id: 'event-environment-details',
    title: 'Environment and device',
    class: 'event',
    fields: {
      environment: obj({
        type: str(),
        browserDetails: obj({ name: str(), version: str(), userAgent: str(), acceptLanguage: str(), viewportWidth: int(), viewportHeight: int() }),
        ipV4: str({ labels: ['I2'] }),
        operatingSystem: str(),
      }),
      device: obj({ type: str(), manufacturer: str(), model: str(), screenWidth: int(), screenHeight: int(), screenOrientation: str() }),
      placeContext: obj({
        geo: obj({ countryCode: str(), city: str(), postalCode: str() }),
        localTime: { type: 'date-time' },
        localTimezoneOffset: int(),
        ianaTimezone: str(),
      }),
      // What the Adobe Web SDK adds to every event (library name, version, environment).
      implementationDetails: obj({ name: str(), version: str(), environment: str() }),
    },
  },
  {
    id: 'event-marketing-details',
    title: 'Marketing details',
    class: 'event',
    fields: {
      marketing: obj({ trackingCode: str(), campaignName: str(), campaignGroup: str(), channel: str() }),
    },
  },
];

/** Finds a standard field group by id. */
export function findFieldGroup(id: string): FieldGroup | undefined {
  return STANDARD_FIELD_GROUPS.find((g) => g.id === id);
}
