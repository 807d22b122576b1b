/**
 * Conformance suite of the storage port: the same behaviour on every adapter (SQLite, the
 * reference, and PostgreSQL). Plans are hand-built, so these tests pin storage, not planning.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { fragmentKey, eventKey, type DatasetDef, type NamespaceDef, type SchemaDef } from '@audient/core';
import type { FailedRecordRow, JobRow, Store } from './port.js';
import { describeBackends, eachStoreWithSandboxes, writePlan as plan } from './testing.js';

const T0 = 1_700_000_000_000;

const schema = (id: string, name = id): SchemaDef => ({ id, name, class: 'profile', fieldGroups: [], fields: { score: { type: 'number' } }, version: 1 });
const dataset = (id: string): DatasetDef => ({ id, name: `Dataset ${id}`, schemaId: 's1', profileEnabled: true });
const ns = (code: string): NamespaceDef => ({ code, name: code, type: 'person', standard: false });

const ident = (nsCode: string, id: string, graphId: string, lastSeen = T0) => ({ ns: nsCode, id, graphId, type: 'person' as const, lastSeen });
const event = (eventId: string, graphId: string, timestamp: number, datasetId = 'web') =>
  ({ datasetId, eventId, graphId, timestamp, body: { eventType: 'page', nested: { n: 1, list: [1, 'two'] }, eventId } });
const fragment = (id: string, graphId: string, attributes: Record<string, unknown>, timestamp = T0) =>
  ({ datasetId: 'crm', ns: 'email', id, graphId, attributes, timestamp });

const failed = (id: string, over: Partial<Omit<FailedRecordRow, 'status' | 'createdAt' | 'replayedAt'>> = {}) => ({
  id, sandboxId: 'a', datasetId: 'web', source: 'stream', position: 0, code: 'VALIDATION',
  message: 'bad', details: [{ path: 'x', reason: 'type', message: 'x must be a number' }], payload: `{"id":"${id}"}`, ...over,
});

const job = (id: string, over: Partial<JobRow> = {}): JobRow => ({
  id, sandboxId: 'a', kind: 'batch', status: 'queued', state: { done: 0 },
  createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z', ...over,
});

await describeBackends((backend) => {
  let store: Store;
  eachStoreWithSandboxes(backend, (s) => (store = s));

  it('reports its kind and migrates idempotently', async () => {
    assert.equal(store.kind, backend.name);
    await store.migrate();
    assert.equal((await store.listSandboxes()).length, 2);
  });

  it('stores sandboxes', async () => {
    const a = await store.getSandbox('a');
    assert.equal(a?.name, 'Sandbox A');
    assert.match(a?.createdAt ?? '', /^\d{4}-\d\d-\d\dT/);
    assert.equal(await store.getSandbox('zz'), undefined);
    assert.deepEqual((await store.listSandboxes()).map((s) => s.id), ['a', 'b']);
  });

  it('finds API keys by hash, lists them per sandbox and revokes them once', async () => {
    await store.createApiKey({ id: 'k1', sandboxId: 'a', name: 'admin', keyHash: 'h1', role: 'admin', instanceAdmin: true });
    await store.createApiKey({ id: 'k2', sandboxId: 'a', name: 'ingest', keyHash: 'h2', role: 'ingest', instanceAdmin: false });
    await store.createApiKey({ id: 'k3', sandboxId: 'b', name: 'other', keyHash: 'h3', role: 'admin', instanceAdmin: false });
    const k1 = await store.findApiKeyByHash('h1');
    assert.deepEqual({ ...k1, createdAt: 'x' }, {
      id: 'k1', sandboxId: 'a', name: 'admin', keyHash: 'h1', role: 'admin', instanceAdmin: true, createdAt: 'x', revokedAt: null,
    });
    assert.equal((await store.findApiKeyByHash('h2'))?.instanceAdmin, false);
    assert.equal(await store.findApiKeyByHash('nope'), undefined);
    assert.deepEqual((await store.listApiKeys('a')).map((k) => k.id).sort(), ['k1', 'k2']);
    assert.equal(await store.revokeApiKey('b', 'k1'), false, 'another sandbox cannot revoke it');
    assert.equal(await store.revokeApiKey('a', 'k1'), true);
    assert.equal(await store.revokeApiKey('a', 'k1'), false, 'already revoked');
    assert.match((await store.findApiKeyByHash('h1'))?.revokedAt ?? '', /^\d{4}-/);
    assert.equal((await store.findApiKeyByHash('h3'))?.revokedAt, null);
  });

  it('upserts, gets and lists schemas, datasets and namespaces, per sandbox', async () => {
    await store.putSchema('a', schema('s2'));
    await store.putSchema('a', schema('s1'));
    await store.putSchema('a', schema('s1', 'renamed'));
    await store.putDataset('a', dataset('web'));
    await store.putDataset('a', { ...dataset('web'), profileEnabled: false });
    await store.putNamespace('a', ns('Loyalty'));
    await store.putNamespace('a', { ...ns('loyalty'), name: 'Loyalty ID' });
    await store.putNamespace('a', ns('crm'));

    assert.deepEqual(await store.getSchema('a', 's1'), schema('s1', 'renamed'));
    assert.deepEqual((await store.listSchemas('a')).map((s) => s.id), ['s1', 's2']);
    assert.deepEqual(await store.getDataset('a', 'web'), { ...dataset('web'), profileEnabled: false });
    assert.deepEqual(await store.listDatasets('a'), [{ ...dataset('web'), profileEnabled: false }]);
    const nss = await store.listNamespaces('a');
    assert.deepEqual(nss.map((n) => n.name).sort(), ['Loyalty ID', 'crm'], 'namespace codes are matched case-insensitively');

    assert.equal(await store.getSchema('b', 's1'), undefined);
    assert.equal(await store.getDataset('b', 'web'), undefined);
    assert.deepEqual(await store.listSchemas('b'), []);
    assert.deepEqual(await store.listDatasets('b'), []);
    assert.deepEqual(await store.listNamespaces('b'), []);
    await store.putSchema('b', schema('s1', 'B only'));
    assert.equal((await store.getSchema('a', 's1'))?.name, 'renamed');
  });

  it('applies a plan: identities, fragments, events, lake records, changes', async () => {
    const seqs = await store.ingest('a', async (tx) => {
      const seqs = await tx.apply(plan({
        newIdentities: [ident('email', 'x@e.com', 'g1'), ident('crmId', '1', 'g1'), ident('email', 'y@e.com', 'g2')],
        fragments: [fragment('x@e.com', 'g1', { person: { name: 'X' } }, T0 + 5)],
        events: [event('e1', 'g1', T0 + 1), event('e2', 'g2', T0 + 2)],
        changes: [
          { profileId: 'g1', type: 'profile', datasetId: 'crm', attributePaths: ['person.name'] },
          { profileId: 'g1', type: 'event', datasetId: 'web', eventId: 'e1', eventTime: T0 + 1 },
          { profileId: 'g2', type: 'event', datasetId: 'web', eventId: 'e2', eventTime: T0 + 2 },
        ],
      }), T0 + 10);
      await tx.appendLake([{ datasetId: 'raw', body: { a: 1 } }, { datasetId: 'raw', body: { a: 2 } }], T0 + 10);
      return seqs;
    });
    assert.equal(seqs.length, 3);
    assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!, `increasing: ${seqs.join(',')}`);

    assert.equal(await store.findProfileId('a', { ns: 'crmId', id: '1' }), 'g1');
    assert.equal(await store.findProfileId('b', { ns: 'crmId', id: '1' }), undefined);
    assert.deepEqual(await store.profileIdentities('a', 'g1'), [ident('crmId', '1', 'g1'), ident('email', 'x@e.com', 'g1')]);
    assert.deepEqual(await store.profileFragments('a', 'g1'), [fragment('x@e.com', 'g1', { person: { name: 'X' } }, T0 + 5)]);
    const events = await store.profileEvents('a', 'g1', { limit: 10 });
    assert.deepEqual(events, [{ datasetId: 'web', eventId: 'e1', timestamp: T0 + 1, body: event('e1', 'g1', 0).body }]);
    assert.equal(typeof events[0]?.timestamp, 'number');
    assert.equal(await store.countLake('a', 'raw'), 2);
    assert.equal(await store.countLake('a', 'other'), 0);
    assert.equal(await store.countLake('b', 'raw'), 0);

    const changes = await store.readChanges(0, 100);
    assert.deepEqual(changes.map((c) => c.seq), seqs);
    assert.deepEqual(changes[1], {
      seq: seqs[1], sandboxId: 'a', at: T0 + 10,
      change: { profileId: 'g1', type: 'event', datasetId: 'web', eventId: 'e1', eventTime: T0 + 1 },
    });
  });

  it('reads the snapshot of a batch: graph members, fragments, known events', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('email', 'x', 'g1'), ident('crmId', '1', 'g1'), ident('email', 'y', 'g2'), ident('email', 'z', 'g3')],
      fragments: [fragment('x', 'g1', { a: 1 }), fragment('y', 'g2', { b: 2 })],
      events: [event('e1', 'g1', T0), event('e2', 'g2', T0)],
    }), T0));
    await store.ingest('b', (tx) => tx.apply(plan({ newIdentities: [ident('email', 'x', 'gb')], fragments: [fragment('x', 'gb', { b: true })], events: [event('e1', 'gb', T0)] }), T0));

    await store.ingest('a', async (tx) => {
      const members = await tx.graphMembersOf([{ ns: 'email', id: 'x' }, { ns: 'email', id: 'y' }, { ns: 'email', id: 'unknown' }, { ns: 'crmId', id: 'x' }]);
      const keys = members.map((m) => `${m.graphId}/${m.ns}/${m.id}`).sort();
      assert.deepEqual(keys, ['g1/crmId/1', 'g1/email/x', 'g2/email/y']);
      assert.deepEqual(members.find((m) => m.id === '1'), ident('crmId', '1', 'g1'));
      assert.deepEqual(await tx.graphMembersOf([]), []);

      const frags = await tx.fragments([
        { datasetId: 'crm', identity: { ns: 'email', id: 'x' } },
        { datasetId: 'crm', identity: { ns: 'email', id: 'nope' } },
        { datasetId: 'other', identity: { ns: 'email', id: 'y' } },
      ]);
      assert.deepEqual([...frags.keys()], [fragmentKey('crm', { ns: 'email', id: 'x' })]);
      assert.deepEqual(frags.get(fragmentKey('crm', { ns: 'email', id: 'x' })), fragment('x', 'g1', { a: 1 }));

      const known = await tx.existingEvents([{ datasetId: 'web', eventId: 'e1' }, { datasetId: 'web', eventId: 'e9' }, { datasetId: 'app', eventId: 'e2' }]);
      assert.deepEqual([...known], [eventKey('web', 'e1')]);
      assert.deepEqual([...(await tx.existingEvents([]))], []);
    });
  });

  it('applies merges (chained, in order), evictions, touches and fragment upserts', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('email', 'a', 'gA'), ident('email', 'b', 'gB'), ident('email', 'c', 'gC'), ident('ecid', 'old', 'gC'), ident('email', 'd', 'gD')],
      fragments: [fragment('a', 'gA', { a: 1 }), fragment('b', 'gB', { b: 1 })],
      events: [event('ea', 'gA', T0), event('eb', 'gB', T0 + 1), event('ed', 'gD', T0 + 2)],
    }), T0));

    const seqs = await store.ingest('a', (tx) => tx.apply(plan({
      // B into A, then A into C: everything of A and B ends in C; D is untouched.
      graphMerges: [{ from: 'gB', to: 'gA' }, { from: 'gA', to: 'gC' }],
      evictedIdentities: [{ ns: 'ecid', id: 'old' }],
      newIdentities: [ident('phone', '+1', 'gC', T0 + 100)],
      touchedIdentities: [{ ns: 'email', id: 'a', lastSeen: T0 + 100 }],
      fragments: [fragment('a', 'gC', { a: 2, merged: true }, T0 + 100), fragment('c', 'gC', { c: 1 }, T0 + 100)],
      events: [event('ec', 'gC', T0 + 100)],
      changes: [{ profileId: 'gC', type: 'merge', mergedFrom: ['gA', 'gB'] }, { profileId: 'gC', type: 'profile', datasetId: 'crm' }],
    }), T0 + 100));
    assert.equal(seqs.length, 2);

    assert.deepEqual((await store.profileIdentities('a', 'gC')).map((i) => `${i.ns}/${i.id}/${i.lastSeen - T0}`), [
      'email/a/100', 'email/b/0', 'email/c/0', 'phone/+1/100',
    ]);
    assert.deepEqual(await store.profileIdentities('a', 'gA'), []);
    assert.deepEqual(await store.profileIdentities('a', 'gB'), []);
    assert.equal(await store.findProfileId('a', { ns: 'ecid', id: 'old' }), undefined);
    assert.equal(await store.findProfileId('a', { ns: 'email', id: 'd' }), 'gD');

    const frags = (await store.profileFragments('a', 'gC')).sort((x, y) => x.id.localeCompare(y.id));
    assert.deepEqual(frags, [
      fragment('a', 'gC', { a: 2, merged: true }, T0 + 100), fragment('b', 'gC', { b: 1 }), fragment('c', 'gC', { c: 1 }, T0 + 100),
    ]);
    assert.deepEqual((await store.profileEvents('a', 'gC', { limit: 10 })).map((e) => e.eventId), ['ec', 'eb', 'ea']);
    assert.deepEqual((await store.profileEvents('a', 'gD', { limit: 10 })).map((e) => e.eventId), ['ed']);

    await store.ingest('a', async (tx) => {
      const members = await tx.graphMembersOf([{ ns: 'email', id: 'b' }]);
      assert.equal(members.length, 4);
      assert.ok(members.every((m) => m.graphId === 'gC'));
    });
  });

  it('reads each graph as last written, when it was read before every kind of identity write', async () => {
    const graphOf = async (ns: string, id: string): Promise<string[]> =>
      store.ingest('a', async (tx) => (await tx.graphMembersOf([{ ns, id }])).map((m) => `${m.graphId}/${m.ns}/${m.id}/${m.lastSeen - T0}`).sort());
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('email', 'a', 'gA'), ident('ecid', 'a1', 'gA'), ident('email', 'b', 'gB'), ident('ecid', 'b1', 'gB')],
    }), T0));
    assert.deepEqual(await graphOf('email', 'a'), ['gA/ecid/a1/0', 'gA/email/a/0']);
    assert.deepEqual(await graphOf('email', 'b'), ['gB/ecid/b1/0', 'gB/email/b/0']);
    // A touch, a new member.
    await store.ingest('a', (tx) => tx.apply(plan({ touchedIdentities: [{ ns: 'ecid', id: 'a1', lastSeen: T0 + 5 }] }), T0 + 5));
    assert.deepEqual(await graphOf('email', 'a'), ['gA/ecid/a1/5', 'gA/email/a/0']);
    await store.ingest('a', (tx) => tx.apply(plan({ newIdentities: [ident('phone', 'p', 'gA', T0 + 5)] }), T0 + 5));
    assert.deepEqual(await graphOf('ecid', 'a1'), ['gA/ecid/a1/5', 'gA/email/a/0', 'gA/phone/p/5']);
    // A merge, read through the absorbed graph's member.
    await store.ingest('a', (tx) => tx.apply(plan({ graphMerges: [{ from: 'gB', to: 'gA' }] }), T0 + 6));
    assert.deepEqual(await graphOf('ecid', 'b1'), ['gA/ecid/a1/5', 'gA/ecid/b1/0', 'gA/email/a/0', 'gA/email/b/0', 'gA/phone/p/5']);
    // An eviction.
    await store.ingest('a', (tx) => tx.apply(plan({ evictedIdentities: [{ ns: 'email', id: 'b' }] }), T0 + 7));
    assert.deepEqual(await graphOf('email', 'b'), []);
    assert.equal((await graphOf('ecid', 'a1')).length, 4);
    // A rolled-back write leaves the graph as committed.
    await assert.rejects(store.ingest('a', async (tx) => {
      await tx.apply(plan({ newIdentities: [ident('phone', 'q', 'gA')] }), T0 + 8);
      assert.equal((await tx.graphMembersOf([{ ns: 'email', id: 'a' }])).length, 5, 'the transaction reads its own write');
      throw new Error('abort');
    }), /abort/);
    assert.equal((await graphOf('email', 'a')).length, 4);
    // A deleted profile.
    await store.deleteProfile('a', 'gA', T0 + 9);
    assert.deepEqual(await graphOf('email', 'a'), []);
  });

  it('re-adds an identity evicted earlier in the same plan', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({ newIdentities: [ident('ecid', 'c1', 'g1')] }), T0));
    await store.ingest('a', (tx) => tx.apply(plan({ evictedIdentities: [{ ns: 'ecid', id: 'c1' }], newIdentities: [ident('ecid', 'c1', 'g2')] }), T0));
    assert.equal(await store.findProfileId('a', { ns: 'ecid', id: 'c1' }), 'g2');
  });

  it('rolls back everything when the batch fails', async () => {
    await assert.rejects(
      store.ingest('a', async (tx) => {
        await tx.apply(plan({
          newIdentities: [ident('email', 'x', 'g1')], fragments: [fragment('x', 'g1', { a: 1 })], events: [event('e1', 'g1', T0)],
          changes: [{ profileId: 'g1', type: 'event' }],
        }), T0);
        await tx.appendLake([{ datasetId: 'raw', body: {} }], T0);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await store.findProfileId('a', { ns: 'email', id: 'x' }), undefined);
    assert.deepEqual(await store.profileFragments('a', 'g1'), []);
    assert.deepEqual(await store.profileEvents('a', 'g1', { limit: 10 }), []);
    assert.equal(await store.countLake('a', 'raw'), 0);
    assert.deepEqual(await store.readChanges(0, 10), []);

    // A store error (duplicate event) rolls back too, and the store stays usable.
    await store.ingest('a', (tx) => tx.apply(plan({ events: [event('e1', 'g1', T0)] }), T0));
    await assert.rejects(store.ingest('a', (tx) => tx.apply(plan({ newIdentities: [ident('email', 'y', 'g1')], events: [event('e1', 'g1', T0)] }), T0)));
    assert.equal(await store.findProfileId('a', { ns: 'email', id: 'y' }), undefined);
    const seqs = await store.ingest('a', (tx) => tx.apply(plan({ changes: [{ profileId: 'g1', type: 'profile' }] }), T0));
    assert.equal(seqs.length, 1);
  });

  it('serialises concurrent batches: seqs follow call order', async () => {
    const runs = Array.from({ length: 8 }, (_, i) =>
      store.ingest(i % 2 ? 'a' : 'b', async (tx) => {
        await new Promise((r) => setTimeout(r, 8 - i));
        return tx.apply(plan({ events: [event(`e${i}`, 'g', T0 + i)], changes: [{ profileId: 'g', type: 'event', eventId: `e${i}` }, { profileId: 'g', type: 'profile' }] }), T0);
      }),
    );
    const seqs = (await Promise.all(runs)).flat();
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.equal(new Set(seqs).size, 16);
    const read = await store.readChanges(0, 100);
    assert.deepEqual(read.map((c) => c.change.eventId).filter(Boolean), ['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7']);
  });

  it('applies a large batch (multi-row paths)', async () => {
    const n = 1000;
    const ids = Array.from({ length: n }, (_, i) => ident('email', `u${i}@e.com`, `g${i % 10}`));
    const seqs = await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: ids,
      fragments: ids.map((i) => fragment(i.id, i.graphId, { id: i.id, quote: `it's "${i.id}" \\ ok` })),
      events: ids.map((i, k) => event(`e${k}`, i.graphId, T0 + k)),
      changes: ids.map((i, k) => ({ profileId: i.graphId, type: 'event' as const, eventId: `e${k}` })),
    }), T0));
    assert.equal(seqs.length, n);
    const read = await store.readChanges(0, n);
    assert.deepEqual(read.map((c) => c.change.eventId), ids.map((_, k) => `e${k}`), 'change seqs follow the plan order');
    assert.deepEqual(read.map((c) => c.seq), seqs, 'apply returns the seq the log gave each change');
    assert.equal((await store.profileIdentities('a', 'g3')).length, 100);
    const frag = (await store.profileFragments('a', 'g3')).find((f) => f.id === 'u3@e.com');
    assert.deepEqual(frag?.attributes, { id: 'u3@e.com', quote: `it's "u3@e.com" \\ ok` });
    await store.ingest('a', async (tx) => {
      assert.equal((await tx.graphMembersOf(ids.slice(0, 2))).length, 200);
      assert.equal((await tx.existingEvents(ids.map((_, k) => ({ datasetId: 'web', eventId: `e${k}` })))).size, n);
      assert.equal((await tx.fragments(ids.map((i) => ({ datasetId: 'crm', identity: i })))).size, n);
    });
  });

  it('pages profile events newest first, ties broken by event id', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      events: [event('e1', 'g', T0 + 1), event('e2', 'g', T0 + 2), event('e3b', 'g', T0 + 3), event('e3a', 'g', T0 + 3), event('e4', 'g', T0 + 4), event('x', 'h', T0 + 9)],
    }), T0));
    const p1 = await store.profileEvents('a', 'g', { limit: 2 });
    assert.deepEqual(p1.map((e) => e.eventId), ['e4', 'e3b']);
    const last = p1[1]!;
    const p2 = await store.profileEvents('a', 'g', { limit: 2, before: { timestamp: last.timestamp, eventId: last.eventId } });
    assert.deepEqual(p2.map((e) => e.eventId), ['e3a', 'e2']);
    const p3 = await store.profileEvents('a', 'g', { limit: 2, before: { timestamp: T0 + 2, eventId: 'e2' } });
    assert.deepEqual(p3.map((e) => e.eventId), ['e1']);
    assert.deepEqual(await store.profileEvents('b', 'g', { limit: 2 }), []);
  });

  it('deletes a profile and records a delete change', async () => {
    await store.ingest('a', (tx) => tx.apply(plan({
      newIdentities: [ident('email', 'x', 'g1'), ident('crmId', '1', 'g1'), ident('email', 'y', 'g2')],
      fragments: [fragment('x', 'g1', {}), fragment('y', 'g2', {})],
      events: [event('e1', 'g1', T0), event('e2', 'g1', T0), event('e3', 'g1', T0), event('e4', 'g2', T0)],
    }), T0));
    await store.ingest('b', (tx) => tx.apply(plan({ newIdentities: [ident('email', 'x', 'g1')], events: [event('e1', 'g1', T0)] }), T0));

    assert.deepEqual(await store.deleteProfile('a', 'g1', T0 + 50), { identities: 2, fragments: 1, events: 3 });
    assert.deepEqual(await store.profileIdentities('a', 'g1'), []);
    assert.deepEqual(await store.profileEvents('a', 'g1', { limit: 10 }), []);
    assert.equal((await store.profileIdentities('a', 'g2')).length, 1);
    assert.equal((await store.profileIdentities('b', 'g1')).length, 1, 'the same graph id in another sandbox survives');
    const changes = await store.readChanges(0, 10);
    assert.deepEqual(changes.map((c) => ({ sandboxId: c.sandboxId, change: c.change, at: c.at })), [
      { sandboxId: 'a', change: { profileId: 'g1', type: 'delete' }, at: T0 + 50 },
    ]);
    assert.deepEqual(await store.deleteProfile('a', 'g1', T0 + 60), { identities: 0, fragments: 0, events: 0 });
  });

  it('reads changes after a seq, with a limit, and keeps cursors', async () => {
    const seqs = await store.ingest('a', (tx) => tx.apply(plan({
      changes: [1, 2, 3, 4, 5].map((i) => ({ profileId: `g${i}`, type: 'profile' as const })),
    }), T0));
    const page = await store.readChanges(seqs[1]!, 2);
    assert.deepEqual(page.map((c) => c.change.profileId), ['g3', 'g4']);
    assert.deepEqual(await store.readChanges(seqs[4]!, 10), []);

    assert.equal(await store.getCursor('export'), 0);
    await store.setCursor('export', seqs[2]!);
    await store.setCursor('export', seqs[3]!);
    await store.setCursor('other', 1);
    assert.equal(await store.getCursor('export'), seqs[3]);
    assert.equal(typeof (await store.getCursor('export')), 'number');
    // Moves asked for together (with membership writes beside them) land in call order: the last one stands.
    await Promise.all([
      store.setCursor('export', 7),
      store.writeMemberships('a', [{ profileId: 'g1', audienceId: 'aud', membership: { audienceId: 'aud', status: 'realized', lastQualificationTime: T0 }, event: 'realized' }], T0),
      store.setCursor('export', 9),
      store.setCursor('other', 2),
    ]);
    assert.equal(await store.getCursor('export'), 9);
    assert.equal(await store.getCursor('other'), 2);
    assert.equal((await store.memberships('a', ['g1'])).get('g1')?.[0]?.status, 'realized');
  });

  it('keeps failed records: list, filter, page, get, set status, purge', async () => {
    await store.addFailedRecords([
      failed('f1', { source: 'batch:j1', payload: '{"email":"Jane.Doe@Example.com"}' }),
      failed('f2', { datasetId: 'app', position: 3 }),
      failed('f3', { payload: 'not json at all: JANE.DOE@EXAMPLE.COM' }),
      failed('f4'),
      failed('f5', { sandboxId: 'b', payload: 'jane.doe@example.com' }),
    ]);
    await store.addFailedRecords([]);

    const all = await store.listFailedRecords('a', {}, { limit: 10 });
    assert.deepEqual(all.map((r) => r.id), ['f4', 'f3', 'f2', 'f1']);
    const f2 = all.find((r) => r.id === 'f2');
    assert.deepEqual({ ...f2, createdAt: 'x' }, { ...failed('f2', { datasetId: 'app', position: 3 }), status: 'failed', createdAt: 'x', replayedAt: null });
    assert.match(f2?.createdAt ?? '', /^\d{4}-/);

    const p1 = await store.listFailedRecords('a', {}, { limit: 2 });
    const p2 = await store.listFailedRecords('a', {}, { limit: 2, cursor: p1.at(-1)?.id });
    assert.deepEqual([...p1, ...p2].map((r) => r.id), ['f4', 'f3', 'f2', 'f1']);
    assert.deepEqual((await store.listFailedRecords('a', { datasetId: 'app' }, { limit: 10 })).map((r) => r.id), ['f2']);
    assert.deepEqual((await store.listFailedRecords('a', { source: 'batch:j1' }, { limit: 10 })).map((r) => r.id), ['f1']);

    assert.deepEqual((await store.getFailedRecords('a', ['f3', 'f1', 'f5', 'nope'])).map((r) => r.id), ['f3', 'f1']);
    assert.deepEqual(await store.getFailedRecords('a', []), []);

    await store.setFailedStatus('a', ['f1', 'f2', 'f5'], 'replayed', '2024-05-01T00:00:00.000Z');
    assert.deepEqual((await store.listFailedRecords('a', { status: 'replayed' }, { limit: 10 })).map((r) => [r.id, r.replayedAt]), [
      ['f2', '2024-05-01T00:00:00.000Z'], ['f1', '2024-05-01T00:00:00.000Z'],
    ]);
    assert.deepEqual((await store.listFailedRecords('a', { status: 'failed' }, { limit: 10 })).map((r) => r.id), ['f4', 'f3']);
    assert.equal((await store.getFailedRecords('b', ['f5']))[0]?.status, 'failed', 'another sandbox cannot change it');

    assert.equal(await store.purgeFailedRecords('a', ['jane.doe@example.com', 'NOT JSON']), 2);
    assert.deepEqual((await store.listFailedRecords('a', {}, { limit: 10 })).map((r) => r.id), ['f4', 'f2']);
    assert.equal(await store.purgeFailedRecords('a', []), 0);
    assert.equal(await store.purgeFailedRecords('a', ['']), 0, 'an empty needle matches every payload: it is skipped');
    assert.equal(await store.purgeFailedRecords('a', ['', 'nothing-matches']), 0);
    assert.deepEqual((await store.listFailedRecords('a', {}, { limit: 10 })).map((r) => r.id), ['f4', 'f2']);
    assert.equal((await store.listFailedRecords('b', {}, { limit: 10 })).length, 1);

    // Case is ignored beyond ASCII: identities are stored folded (josé@…), payloads keep what came.
    await store.addFailedRecords([
      failed('f6', { payload: '{"email":"JOSÉ.ÑÚÑEZ@ÉXAMPLE.COM"}' }),
      failed('f7', { payload: '{"name":"ΣΩΚΡΑΤΗΣ"}' }),
      failed('f8', { payload: '{"email":"jose.nunez@example.com"}' }),
    ]);
    assert.equal(await store.purgeFailedRecords('a', ['josé.ñúñez@éxample.com', 'σωκρατησ'.slice(0, 7)]), 2);
    assert.deepEqual((await store.listFailedRecords('a', {}, { limit: 10 })).map((r) => r.id).sort(), ['f2', 'f4', 'f8']);
  });

  it('stores jobs: put, update, get, list by kind with paging', async () => {
    await store.putJob(job('j1'));
    await store.putJob(job('j2', { kind: 'privacy-delete' }));
    await store.putJob(job('j3'));
    await store.putJob(job('j4', { sandboxId: 'b' }));
    await store.putJob(job('j1', { status: 'succeeded', state: { done: 10, nested: { ok: true } }, updatedAt: '2024-01-02T00:00:00.000Z' }));

    assert.deepEqual(await store.getJob('a', 'j1'), job('j1', { status: 'succeeded', state: { done: 10, nested: { ok: true } }, updatedAt: '2024-01-02T00:00:00.000Z' }));
    assert.equal(await store.getJob('b', 'j1'), undefined);
    assert.deepEqual((await store.listJobs('a', undefined, { limit: 10 })).map((j) => j.id), ['j3', 'j2', 'j1']);
    assert.deepEqual((await store.listJobs('a', 'batch', { limit: 10 })).map((j) => j.id), ['j3', 'j1']);
    assert.deepEqual((await store.listJobs('a', 'batch', { limit: 1, cursor: 'j3' })).map((j) => j.id), ['j1']);
    assert.deepEqual((await store.listJobs('b', undefined, { limit: 10 })).map((j) => j.id), ['j4']);
  });

  it('keeps generic documents per sandbox and kind', async () => {
    await store.putDoc('a', 'webhook', 'w2', { url: 'https://x/2' });
    await store.putDoc('a', 'webhook', 'w1', { url: 'https://x/1', nested: { on: ['a'] } });
    await store.putDoc('a', 'webhook', 'w1', { url: 'https://x/1b' });
    await store.putDoc('a', 'dataflow', 'w1', { other: true });
    await store.putDoc('b', 'webhook', 'w1', { url: 'https://b' });
    assert.deepEqual(await store.getDoc('a', 'webhook', 'w1'), { url: 'https://x/1b' });
    assert.deepEqual(await store.listDocs('a', 'webhook'), [{ url: 'https://x/1b' }, { url: 'https://x/2' }]);
    assert.deepEqual(await store.listDocs('a', 'dataflow'), [{ other: true }]);
    assert.equal(await store.getDoc('a', 'webhook', 'nope'), undefined);
    assert.equal(await store.deleteDoc('b', 'webhook', 'w2'), false, 'another sandbox cannot delete it');
    assert.equal(await store.deleteDoc('a', 'webhook', 'w1'), true);
    assert.equal(await store.deleteDoc('a', 'webhook', 'w1'), false);
    assert.deepEqual(await store.getDoc('a', 'dataflow', 'w1'), { other: true });
    assert.deepEqual(await store.getDoc('b', 'webhook', 'w1'), { url: 'https://b' });
  });

  it("does not let another sandbox overwrite a job through its id", async () => {
    await store.putJob(job('j1'));
    await store.putJob(job('j1', { sandboxId: 'b', status: 'failed', state: { hijacked: true }, updatedAt: '2024-02-01T00:00:00.000Z' }));
    assert.deepEqual(await store.getJob('a', 'j1'), job('j1'));
    assert.equal(await store.getJob('b', 'j1'), undefined);
    assert.deepEqual(await store.listJobs('b', undefined, { limit: 10 }), []);
  });
});
