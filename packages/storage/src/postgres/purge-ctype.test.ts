/**
 * A privacy delete on a PostgreSQL database created with the `C` ctype, where `lower()` folds
 * ASCII letters only: failed records holding the person's identity in capitals beyond ASCII are
 * still purged (the payloads are folded under the ICU root collation).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { describeBackends, pgTestUrl, withClient } from '../testing.js';
import { PostgresStore } from './postgres-store.js';

await describeBackends((backend) => {
  if (backend.name !== 'postgres') return;
  describe('privacy purge on a database with the C ctype', () => {
    const name = `audient_test_ctype_${randomBytes(5).toString('hex')}`;
    const url = new URL(pgTestUrl());
    url.pathname = `/${name}`;
    let store: PostgresStore | undefined;
    before(async () => {
      await withClient(pgTestUrl(), (c) => c.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`));
      store = new PostgresStore(url.toString());
      await store.migrate();
      await store.createSandbox({ id: 'a', name: 'a' });
    });
    after(async () => {
      await store?.close();
      await withClient(pgTestUrl(), (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    });

    it('purges payloads whose identity is in non-ASCII capitals', async () => {
      // The premise: this database's own lower() leaves É as it is.
      const folded = await withClient(url.toString(), (c) => c.query<{ l: string }>(`SELECT lower('JOSÉ') AS l`));
      assert.equal(folded.rows[0]?.l, 'josÉ');
      const row = (id: string, payload: string) => ({
        id, sandboxId: 'a', datasetId: 'web', source: 'stream', position: 0, code: 'VALIDATION', message: 'bad', details: [], payload,
      });
      await store!.addFailedRecords([
        row('f1', '{"email":"JOSÉ.ÑÚÑEZ@ÉXAMPLE.COM"}'),
        row('f2', '{"name":"ΣΩΚΡΑΤΗΣ"}'),
        row('f3', '{"email":"jose.nunez@example.com"}'),
      ]);
      assert.equal(await store!.purgeFailedRecords('a', ['José.Ñúñez@éxample.com', 'ΣΩΚΡΑΤ']), 2);
      assert.deepEqual((await store!.listFailedRecords('a', {}, { limit: 10 })).map((r) => r.id), ['f3']);
    });
  });
});
