/**
 * Test helpers of the destination catalogue (`@audient/destinations/testing`): a strict local
 * MoEngage server and an export-record builder. Not for production code.
 */
export { startMoEngageServer, type MoEngageServer, type MoEngageServerOptions, type MoEngageSeenRequest, type MoEngageWorkspace } from '../moengage/testing/moengage-server.js';
export { makeRecord, type TestAudience } from './records.js';
