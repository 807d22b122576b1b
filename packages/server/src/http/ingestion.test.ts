import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeBackends } from '@audient/storage/testing';
import type { ChangeMessage } from '../services/change-feed.js';
import { createHarness, type Harness } from '../testing/harness.js';

const ecid = (n: number): string => String(n).padStart(38, '1');

async function setup(h: Harness): Promise<void> {
  const ok = async (method: 'POST', url: string, body: unknown): Promise<void> => {
    const r = await h.call(method, url, body);
    assert.ok(r.statusCode < 300, r.body);
  };
  await ok('POST', '/v1/schemas', {
    id: 'crm', name: 'CRM', class: 'profile',
    fieldGroups: ['profile-person-details', 'profile-personal-contact-details', 'profile-loyalty-details'], fields: {},
  });
  await ok('POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details'], fields: {} });
  await ok('POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
  await ok('POST', '/v1/datasets', { id: 'loyalty', name: 'Loyalty', schemaId: 'crm', profileEnabled: true });
  await ok('POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
}

async function waitJob(h: Harness, id: string): Promise<{ status: string; state: Record<string, unknown> }> {
  await h.ctx.jobs.idle();
  const r = await h.call('GET', `/v1/jobs/${id}`);
  assert.equal(r.statusCode, 200, r.body);
  return r.json();
}

await describeBackends((backend) => {
  describe('ingestion, identity and profiles', () => {
    let h: Harness;
    const changes: ChangeMessage[] = [];
    before(async () => {
      h = await createHarness(await backend.open(), { limits: { maxGraphSize: 4 } });
      h.ctx.bus.subscribe<ChangeMessage>('changes.>', 'test', async (m) => {
        changes.push(m.payload);
      });
      await setup(h);
    });
    after(() => h.close());

    it('ingests a CSV upload as a job, keeping bad rows with their line numbers', async () => {
      const csv = [
        'identityMap.email[0].id,person.name.firstName,loyalty.points,person.birthDate',
        'ann@example.com,Ann,12,1990-01-01',
        'bob@example.com,Bob,many,1990-01-01',
        'cid@example.com,Cid,3,1990-02-30',
        'dan@example.com,Dan,4,1991-03-04',
      ].join('\n');
      const up = await h.app.inject({
        method: 'POST', url: '/v1/datasets/crm/batches?fileName=people.csv',
        headers: { authorization: `Bearer ${h.apiKey}`, 'content-type': 'text/csv' }, payload: csv,
      });
      assert.equal(up.statusCode, 202, up.body);
      const job = await waitJob(h, up.json().id);
      assert.equal(job.status, 'succeeded');
      assert.deepEqual({ rows: job.state['rows'], accepted: job.state['accepted'], rejected: job.state['rejected'] }, { rows: 4, accepted: 2, rejected: 2 });
      const failed = (await h.call('GET', `/v1/failed-records?source=batch:${up.json().id}`)).json().items as Array<{ position: number; code: string; details: Array<{ path: string }> }>;
      assert.deepEqual(failed.map((f) => [f.position, f.code]).sort(), [[3, 'MALFORMED_CSV'], [4, 'VALIDATION_FAILED']]);
      assert.equal(failed.find((f) => f.position === 4)!.details[0]!.path, 'person.birthDate');
      const dl = await h.call('GET', '/v1/failed-records/download?datasetId=crm');
      assert.equal(dl.statusCode, 200);
      assert.equal(dl.body.trim().split('\n').length, 2);
      assert.equal((await h.call('GET', '/v1/profiles?ns=email&id=dan@example.com')).json().attributes.person.name.firstName, 'Dan');
    });

    it('replays failed records after the schema is fixed, or with corrected data', async () => {
      const bad = await h.call('POST', '/v1/datasets/crm/records', {
        identityMap: { email: [{ id: 'eve@example.com' }] }, person: { name: { firstName: 'Eve' } }, _acme: { tier: 'gold' },
      });
      assert.equal(bad.statusCode, 400);
      const failedId = bad.json().failedRecordId as string;
      const wrong = await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'fay@example.com' }] }, loyalty: { points: 'x' } });
      const wrongId = wrong.json().failedRecordId as string;

      const stillBad = await h.call('POST', '/v1/failed-records/replay', { ids: [failedId] });
      assert.equal(stillBad.json().results[0].status, 'failed');

      const breaking = await h.call('PUT', '/v1/schemas/crm', { name: 'CRM', class: 'profile', fieldGroups: ['profile-person-details'], fields: {} });
      assert.equal(breaking.statusCode, 409);
      assert.equal(breaking.json().error.code, 'BREAKING_SCHEMA_CHANGE');
      const evolved = await h.call('PUT', '/v1/schemas/crm', {
        name: 'CRM', class: 'profile',
        fieldGroups: ['profile-person-details', 'profile-personal-contact-details', 'profile-loyalty-details'],
        fields: { _acme: { type: 'object', properties: { tier: { type: 'enum', enum: ['gold', 'silver'] } } } },
      });
      assert.equal(evolved.statusCode, 200, evolved.body);
      assert.equal(evolved.json().version, 2);

      const replay = await h.call('POST', '/v1/failed-records/replay', {
        ids: [failedId, wrongId, 'fr_missing'],
        fixes: { [wrongId]: { identityMap: { email: [{ id: 'fay@example.com' }] }, loyalty: { points: 7 } } },
      });
      assert.deepEqual(replay.json().results.map((r: { status: string }) => r.status), ['replayed', 'replayed', 'not-found']);
      assert.equal((await h.call('GET', '/v1/profiles?ns=email&id=eve@example.com')).json().attributes._acme.tier, 'gold');
      assert.equal((await h.call('GET', '/v1/profiles?ns=email&id=fay@example.com')).json().attributes.loyalty.points, 7);
      const left = (await h.call('GET', '/v1/failed-records?status=failed&source=stream')).json().items;
      assert.ok(!left.some((f: { id: string }) => f.id === failedId || f.id === wrongId));
    });

    it('links identities across records, merges graphs and publishes each change once, in order', async () => {
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      changes.length = 0;
      const ev = (id: string, identityMap: Record<string, Array<{ id: string }>>, ts: string): unknown => ({
        _id: id, timestamp: ts, eventType: 'web.webpagedetails.pageViews', web: { webPageDetails: { name: 'home' } }, identityMap,
      });
      const r = await h.call('POST', '/v1/datasets/web/records', [
        ev('e1', { ECID: [{ id: ecid(1) }] }, '2024-01-01T10:00:00Z'),
        ev('e2', { ECID: [{ id: ecid(2) }], email: [{ id: 'gus@example.com' }] }, '2024-01-01T10:01:00Z'),
        ev('e3', { ECID: [{ id: ecid(1) }, { id: ecid(2) }] }, '2024-01-01T10:02:00Z'),
        ev('e1', { ECID: [{ id: ecid(1) }] }, '2024-01-01T10:00:00Z'),
      ]);
      assert.equal(r.statusCode, 200, r.body);
      const results = r.json().results as Array<{ profileId: string; duplicate?: boolean }>;
      assert.equal(results[3]!.duplicate, true);
      const profile = (await h.call('GET', `/v1/profiles?ns=ECID&id=${ecid(1)}`)).json();
      assert.equal(profile.profileId, (await h.call('GET', '/v1/profiles?ns=email&id=gus@example.com')).json().profileId);
      assert.deepEqual(profile.events.items.map((e: { _id: string }) => e._id), ['e3', 'e2', 'e1']);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      assert.deepEqual(changes.map((c) => [c.type, c.eventId ?? null]), [['event', 'e1'], ['event', 'e2'], ['merge', null], ['event', 'e3']]);
      assert.ok(changes.every((c, i) => i === 0 || c.seq > changes[i - 1]!.seq));
      const merge = changes[2]!;
      assert.equal(merge.profileId, profile.profileId);
      assert.equal(merge.mergedFrom?.length, 1);

      const page1 = (await h.call('GET', `/v1/profiles?ns=ECID&id=${ecid(1)}&eventsLimit=2`)).json();
      assert.equal(page1.events.items.length, 2);
      const page2 = (await h.call('GET', `/v1/profiles?ns=ECID&id=${ecid(1)}&eventsLimit=2&eventsCursor=${page1.events.next}`)).json();
      assert.deepEqual(page2.events.items.map((e: { _id: string }) => e._id), ['e1']);
      assert.equal(page2.events.next, undefined);
    });

    it('bounds graph size by evicting cookies first, oldest first', async () => {
      const ids = [1, 2, 3, 4, 5].map((n) => ({ id: ecid(100 + n) }));
      for (const [i, e] of ids.entries()) {
        const r = await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'hal@example.com' }], ECID: [e] }, person: { name: { firstName: `H${i}` } } });
        assert.equal(r.statusCode, 200, r.body);
      }
      const p = (await h.call('GET', '/v1/profiles?ns=email&id=hal@example.com')).json();
      assert.deepEqual(p.identityMap.ecid.map((x: { id: string }) => x.id).sort(), [ecid(103), ecid(104), ecid(105)]);
      assert.equal((await h.call('GET', `/v1/profiles?ns=ECID&id=${ecid(101)}`)).statusCode, 404);
    });

    it('merges fragments by timestamp or by dataset precedence', async () => {
      const rec = (name: string, at: string): unknown => ({
        identityMap: { email: [{ id: 'ida@example.com' }] }, person: { name: { firstName: name } }, extSourceSystemAudit: { lastUpdatedDate: at },
      });
      await h.call('POST', '/v1/datasets/loyalty/records', rec('FromLoyalty', '2024-03-01T00:00:00Z'));
      await h.call('POST', '/v1/datasets/crm/records', rec('FromCrm', '2024-01-01T00:00:00Z'));
      const byTime = (await h.call('GET', '/v1/profiles?ns=email&id=ida@example.com')).json();
      assert.equal(byTime.attributes.person.name.firstName, 'FromLoyalty');
      const byDataset = (await h.call('GET', '/v1/profiles?ns=email&id=ida@example.com&mergePolicy=dataset-precedence&datasetOrder=crm,loyalty')).json();
      assert.equal(byDataset.attributes.person.name.firstName, 'FromCrm');
    });

    it('deletes a person everywhere on a privacy request', async () => {
      await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'jo@example.com' }], ECID: [{ id: ecid(900) }] }, person: { name: { firstName: 'Jo' } } });
      await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'jo@example.com' }] }, loyalty: { points: 'bad' } });
      await h.call('POST', '/v1/datasets/web/records', { _id: 'jo-1', timestamp: '2024-01-01T00:00:00Z', identityMap: { ECID: [{ id: ecid(900) }] } });
      const before = (await h.call('GET', '/v1/profiles?ns=email&id=jo@example.com')).json();
      await h.ctx.feed.flush();
      changes.length = 0;
      const del = await h.call('POST', '/v1/privacy/deletes', { ns: 'ECID', id: ecid(900) });
      assert.equal(del.statusCode, 202);
      const job = await waitJob(h, del.json().id);
      assert.equal(job.status, 'succeeded');
      assert.deepEqual(job.state['deleted'], { identities: 2, fragments: 1, events: 1, failedRecords: 1 });
      assert.equal((await h.call('GET', '/v1/profiles?ns=email&id=jo@example.com')).statusCode, 404);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      assert.deepEqual(changes.map((c) => [c.type, c.profileId]), [['delete', before.profileId]]);
    });
  });

  describe('sandboxes and keys', () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(await backend.open());
      await setup(h);
      await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'kim@example.com' }] }, person: { name: { firstName: 'Kim' } } });
    });
    after(() => h.close());

    it('keeps sandboxes apart and enforces key roles', async () => {
      const created = await h.call('POST', '/v1/sandboxes', { id: 'dev' });
      assert.equal(created.statusCode, 201, created.body);
      const devKey = created.json().apiKey as string;
      assert.equal((await h.call('GET', '/v1/datasets', undefined, devKey)).json().items.length, 0);
      assert.equal((await h.call('GET', '/v1/datasets/crm', undefined, devKey)).statusCode, 404);
      assert.equal((await h.call('GET', '/v1/profiles?ns=email&id=kim@example.com', undefined, devKey)).statusCode, 404);
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'x@example.com' }] } }, devKey)).statusCode, 404);
      assert.equal((await h.call('POST', '/v1/sandboxes', { id: 'other' }, devKey)).statusCode, 403);

      const reader = (await h.call('POST', '/v1/api-keys', { name: 'ro', role: 'reader' })).json();
      assert.equal((await h.call('GET', '/v1/profiles?ns=email&id=kim@example.com', undefined, reader.apiKey)).statusCode, 200);
      assert.equal((await h.call('POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: 'y@example.com' }] } }, reader.apiKey)).statusCode, 403);
      const keys = (await h.call('GET', '/v1/api-keys')).json().items as Array<Record<string, unknown>>;
      assert.ok(keys.every((k) => !('keyHash' in k) && !('apiKey' in k)));
      assert.equal((await h.call('DELETE', `/v1/api-keys/${reader.key.id}`)).statusCode, 204);
      assert.equal((await h.call('GET', '/v1/schemas', undefined, reader.apiKey)).statusCode, 401);
    });

    it('answers bad requests with specific errors', async () => {
      const cases: Array<[string, string, unknown, number, string]> = [
        ['POST', '/v1/datasets', { id: 'x', name: 'x', schemaId: 'nope' }, 404, 'NOT_FOUND'],
        ['POST', '/v1/datasets', { id: 'x', name: 'x', schemaId: 'crm', extra: 1 }, 400, 'VALIDATION_FAILED'],
        ['POST', '/v1/schemas', { id: 'bad', name: 'b', class: 'profile', fieldGroups: ['event-web-details'], fields: {} }, 400, 'VALIDATION_FAILED'],
        ['POST', '/v1/namespaces', { code: 'email', name: 'dup', type: 'person' }, 409, 'CONFLICT'],
        ['GET', '/v1/profiles?ns=nope&id=1', undefined, 400, 'UNKNOWN_NAMESPACE'],
        ['GET', '/v1/profiles?ns=ECID&id=12', undefined, 400, 'INVALID_IDENTITY'],
        ['GET', '/v1/jobs/nope', undefined, 404, 'NOT_FOUND'],
        ['POST', '/v1/datasets/crm/records', 42, 400, 'BAD_REQUEST'],
      ];
      for (const [method, url, body, status, code] of cases) {
        const r = await h.call(method as 'GET', url, body);
        assert.equal(r.statusCode, status, `${method} ${url}: ${r.body}`);
        assert.equal(r.json().error.code, code, `${method} ${url}`);
      }
      const ns = await h.call('POST', '/v1/namespaces', { code: 'loyaltyId', name: 'Loyalty', type: 'person', pattern: '^L\\d+$' });
      assert.equal(ns.statusCode, 201);
      const r = await h.call('POST', '/v1/datasets/crm/records', { identityMap: { LOYALTYID: [{ id: 'X1' }] } });
      assert.equal(r.json().error.code, 'INVALID_IDENTITY');
    });
  });
});
