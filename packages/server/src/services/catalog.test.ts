import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SqliteStore } from '@audient/storage';
import { Catalog } from './catalog.js';

describe('Catalog.profileEnabledIds', () => {
  it('hands out the same set while the enabled datasets stay the same, a new one when they change', async () => {
    const store = new SqliteStore(':memory:');
    try {
      await store.migrate();
      await store.createSandbox({ id: 'sb', name: 'sb' });
      await store.putDataset('sb', { id: 'crm', name: 'CRM', schemaId: 's', profileEnabled: true });
      await store.putDataset('sb', { id: 'web', name: 'Web', schemaId: 's', profileEnabled: false });
      const catalog = new Catalog(store);
      const first = await catalog.profileEnabledIds('sb');
      assert.deepEqual([...first], ['crm']);
      // A rename re-reads the list (a new array): the enabled ids are equal, so the set is the same.
      const listBefore = await catalog.listDatasets('sb');
      await catalog.updateDataset('sb', 'crm', { name: 'CRM records' });
      assert.notEqual(await catalog.listDatasets('sb'), listBefore);
      assert.equal(await catalog.profileEnabledIds('sb'), first);
      // Enabling another dataset changes the ids: a new set.
      await catalog.updateDataset('sb', 'web', { profileEnabled: true });
      const second = await catalog.profileEnabledIds('sb');
      assert.notEqual(second, first);
      assert.deepEqual([...second].sort(), ['crm', 'web']);
    } finally {
      await store.close();
    }
  });
});
