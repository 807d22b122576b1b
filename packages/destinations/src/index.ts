/** Audient's destination catalogue: one folder per destination, pure definitions, one registry. */
export * from './registry.js';
export { httpApi, httpApiBody } from './http-api/index.js';
export { moengage, moengageUrl, moengageAttributes, audienceNames, DEFAULT_AUDIENCE_ATTRIBUTE } from './moengage/index.js';
export { moengageAttributeNameProblem, MOENGAGE_DATA_CENTRES } from './moengage/contract.js';
export { partnerPush, partnerUsers, type PartnerMessage, type PartnerUserUpdate } from './partner-push/index.js';
