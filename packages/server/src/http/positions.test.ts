/**
 * Log positions in queries and bodies (membership events, dead letters, webhooks) are integers
 * JavaScript holds exactly, on both stores: a larger one is refused with where it is, where
 * PostgreSQL's BIGINT failed with a 500 and SQLite answered a rounded position.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, type Harness } from '../testing/harness.js';

await describeBackends((backend) => {
  describe('log positions', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open());
    });
    after(() => h.close());

    it('refuses positions past 2^53 - 1 and takes the largest exact one', async () => {
      const refused: Array<[string, string, unknown, string]> = [
        ['GET', '/v1/membership-events?after=1e30', undefined, 'querystring.after'],
        ['GET', '/v1/membership-events?after=99999999999999999999', undefined, 'querystring.after'],
        ['GET', `/v1/membership-events?after=${Number.MAX_SAFE_INTEGER + 2}`, undefined, 'querystring.after'],
        ['GET', '/v1/dataflows/any/dead-letters?after=1e30', undefined, 'querystring.after'],
        ['POST', '/v1/webhooks', { url: 'https://hooks.example/x', fromPosition: 1e30 }, 'body.fromPosition'],
      ];
      for (const [method, url, body, path] of refused) {
        const r = await h.call(method as 'GET', url, body);
        assert.equal(r.statusCode, 400, `${url}: ${r.body}`);
        const e = (r.json() as { error: { code: string; details: Array<{ path: string; reason: string }> } }).error;
        assert.equal(e.code, 'VALIDATION_FAILED');
        assert.deepEqual(e.details.map((d) => [d.path, d.reason]), [[path, 'maximum']], url);
      }
      const last = await h.call('GET', `/v1/membership-events?after=${Number.MAX_SAFE_INTEGER}`);
      assert.equal(last.statusCode, 200, last.body);
      assert.deepEqual((last.json() as { items: unknown[] }).items, []);
    });
  });
});
