import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, type Harness } from '../testing/harness.js';

// Seed 001's exported profile, as it arrives at a destination: it must validate as-is.
const seedProfile = {
  person: { birthDate: '1980-05-25', name: { firstName: 'John', lastName: 'Doe' } },
  personalEmail: { address: 'john.doe@acme.com' },
  identityMap: {
    ecid: [{ id: '14575006536349286404619648085736425115' }, { id: '66478888669296734530114754794777368480' }],
    email_lc_sha256: [{ id: '655332b5fa2aea4498bf7a290cff017cb4' }, { id: '66baf76ef9de8b42df8903f00e0e3dc0b7' }],
  },
};

await describeBackends((backend) => {
  describe('seed 001 profile round trip', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open());
      const schemas = [
        { id: 'crm', name: 'CRM profile', class: 'profile', fieldGroups: ['profile-person-details', 'profile-personal-contact-details'], fields: {} },
        { id: 'web', name: 'Web events', class: 'event', fieldGroups: ['event-web-details', 'event-commerce-details'], fields: {} },
      ];
      for (const s of schemas) assert.equal((await h.call('POST', '/v1/schemas', s)).statusCode, 201);
      assert.equal((await h.call('POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true })).statusCode, 201);
      assert.equal((await h.call('POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true })).statusCode, 201);
    });
    after(() => h.close());

    it('merges the profile and an event into one profile readable by every identity', async () => {
      const p = await h.call('POST', '/v1/datasets/crm/records', seedProfile);
      assert.equal(p.statusCode, 200, p.body);
      const e = await h.call('POST', '/v1/datasets/web/records', [
        {
          _id: 'evt-1',
          timestamp: '2024-05-25T21:24:39Z',
          eventType: 'commerce.purchases',
          commerce: { order: { purchaseID: 'o-1', priceTotal: 99.5, currencyCode: 'EUR' } },
          identityMap: { ECID: [{ id: '66478888669296734530114754794777368480', primary: true }] },
        },
      ]);
      assert.equal(e.statusCode, 200, e.body);
      const ids = [
        ['ECID', '14575006536349286404619648085736425115'],
        ['ecid', '66478888669296734530114754794777368480'],
        ['email_lc_sha256', '655332b5fa2aea4498bf7a290cff017cb4'],
        ['email_lc_sha256', '66BAF76EF9DE8B42DF8903F00E0E3DC0B7'],
      ];
      const seen = new Set<string>();
      for (const [ns, id] of ids) {
        const r = await h.call('GET', `/v1/profiles?ns=${ns}&id=${id}`);
        assert.equal(r.statusCode, 200, r.body);
        const body = r.json();
        seen.add(body.profileId);
        assert.deepEqual(body.attributes, { person: seedProfile.person, personalEmail: seedProfile.personalEmail });
        assert.deepEqual(
          Object.fromEntries(Object.entries(body.identityMap as Record<string, Array<{ id: string }>>).map(([k, v]) => [k, v.map((x) => x.id).sort()])),
          { ecid: seedProfile.identityMap.ecid.map((x) => x.id).sort(), email_lc_sha256: seedProfile.identityMap.email_lc_sha256.map((x) => x.id).sort() },
        );
        assert.deepEqual(body.segmentMembership, { ups: {} });
        assert.equal(body.events.items.length, 1);
        assert.equal(body.events.items[0]._id, 'evt-1');
      }
      assert.equal(seen.size, 1, 'every identity resolves to the same profile');
    });

    it('rejects bad records precisely and keeps the good ones of the same request', async () => {
      const r = await h.call('POST', '/v1/datasets/crm/records', [
        { person: { name: { firstName: 'Ann' } }, identityMap: { email: [{ id: 'Ann@Example.com ' }] } },
        { person: { name: { firstName: 42 } }, identityMap: { email: [{ id: 'bob@example.com' }] } },
        { person: { nmae: { firstName: 'Cid' } }, identityMap: { email: [{ id: 'cid@example.com' }] } },
        { person: { name: { firstName: 'Dan' } } },
        { person: { name: { firstName: 'Eve' } }, identityMap: { ECID: [{ id: '123' }] } },
      ]);
      assert.equal(r.statusCode, 207);
      const body = r.json();
      assert.equal(body.accepted, 1);
      assert.deepEqual(body.results.map((x: { status: string }) => x.status), ['accepted', 'rejected', 'rejected', 'rejected', 'rejected']);
      assert.equal(body.results[1].details[0].path, 'person.name.firstName');
      assert.match(body.results[1].details[0].message, /expected string, got number 42/);
      assert.match(body.results[2].details[0].message, /did you mean person\.name\?/);
      assert.equal(body.results[3].code, 'MISSING_IDENTITY');
      assert.equal(body.results[4].code, 'INVALID_IDENTITY');
      const ann = await h.call('GET', '/v1/profiles?ns=email&id=ann@example.com');
      assert.equal(ann.statusCode, 200);
      const failed = await h.call('GET', '/v1/failed-records?datasetId=crm');
      assert.equal(failed.json().items.length, 4);
    });
  });
});
