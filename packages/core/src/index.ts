/** Audient's pure core: data model, identity, profile merge and the error catalogue. No I/O. */
export * from './errors.js';
export * from './suggest.js';
export * from './schema/types.js';
export * from './schema/field-groups.js';
export * from './schema/resolve.js';
export * from './schema/validate.js';
export * from './identity/sha256.js';
export * from './identity/namespaces.js';
export * from './identity/extract.js';
export * from './identity/graph.js';
export * from './profile/merge.js';
export * from './ingest/prepare.js';
export * from './ingest/plan.js';
