import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '@audient/storage';
import { describeBackends } from '@audient/storage/testing';
import type { ChangeMessage } from './change-feed.js';
import { createHarness, type Harness } from '../testing/harness.js';

const ecid = (n: number): string => String(n).padStart(38, '7');
const ev = (id: string, identityMap: Record<string, Array<{ id: string }>>): unknown => ({
  _id: id, timestamp: '2024-03-01T10:00:00Z', eventType: 'web.webpagedetails.pageViews', web: { webPageDetails: { name: 'home' } }, identityMap,
});

/** The real store, except that a transaction writing the event `poison` fails when it applies. */
function poisoned(store: Store): Store {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'ingest') {
        return (sandboxId: string, fn: Parameters<Store['ingest']>[1]) =>
          target.ingest(sandboxId, (tx) =>
            fn({
              ...tx,
              apply: async (plan, now) => {
                if (plan.events.some((e) => e.eventId === 'poison')) throw new Error('injected failure');
                return tx.apply(plan, now);
              },
            }),
          );
      }
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function setup(h: Harness): Promise<void> {
  const r1 = await h.call('POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details'], fields: {} });
  assert.ok(r1.statusCode < 300, r1.body);
  const r2 = await h.call('POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true });
  assert.ok(r2.statusCode < 300, r2.body);
}

await describeBackends((backend) => {
  describe('group commit of concurrent ingestion requests', () => {
    let h: Harness;
    const changes: ChangeMessage[] = [];
    before(async () => {
      h = await createHarness(poisoned(await backend.open()));
      h.ctx.bus.subscribe<ChangeMessage>('changes.>', 'test', async (m) => {
        changes.push(m.payload);
      });
      await setup(h);
    });
    after(() => h.close());

    it('answers each concurrent request with its own results, as if committed one after another', async () => {
      // 30 single events at once: person k has ECID k; every third event also carries ECID k+1,
      // linking neighbours, and one record is invalid.
      const calls = Array.from({ length: 30 }, (_, k) =>
        h.call('POST', '/v1/datasets/web/records', ev(`g-${k}`, { ECID: k % 3 === 0 ? [{ id: ecid(k) }, { id: ecid(k + 1) }] : [{ id: ecid(k) }] })),
      );
      calls.push(h.call('POST', '/v1/datasets/web/records', { _id: 'bad', timestamp: 'yesterday', identityMap: { ECID: [{ id: ecid(500) }] } }));
      // g-0 again (a retried send: the same event, the same identities) beside a new event.
      calls.push(h.call('POST', '/v1/datasets/web/records', [ev('g-0', { ECID: [{ id: ecid(0) }, { id: ecid(1) }] }), ev('g-batch', { ECID: [{ id: ecid(1) }] })]));
      const answers = await Promise.all(calls);
      for (let k = 0; k < 30; k++) {
        assert.equal(answers[k]!.statusCode, 200, answers[k]!.body);
        assert.equal(answers[k]!.json().status, 'accepted');
      }
      assert.equal(answers[30]!.statusCode, 400, answers[30]!.body);
      assert.ok(answers[30]!.json().failedRecordId);
      const batch = answers[31]!.json() as { accepted: number; results: Array<{ duplicate?: boolean; profileId: string }> };
      assert.equal(batch.accepted, 2);
      // Concurrent requests reach the queue in whatever order their async handling gives (on
      // PostgreSQL the key lookups interleave): whichever of the two carrying g-0 came second
      // reports it as a duplicate, never both and never neither.
      const single = answers[0]!.json() as { duplicate?: boolean };
      assert.equal((single.duplicate === true) !== (batch.results[0]!.duplicate === true), true, 'exactly one request ingested g-0');
      // Persons 0 and 1 are one profile (event g-0 linked them, whichever copy was ingested), as
      // are 3 and 4; 1 and 2 are not.
      const profile = async (n: number): Promise<string> => {
        const r = await h.call('GET', `/v1/profiles?ns=ECID&id=${ecid(n)}`);
        assert.equal(r.statusCode, 200, r.body);
        return r.json().profileId as string;
      };
      assert.equal(await profile(0), await profile(1));
      assert.equal(await profile(3), await profile(4));
      assert.notEqual(await profile(1), await profile(2));
      assert.equal(batch.results[1]!.profileId, await profile(1));
      // Every change published once, in seq order, with no gap.
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      const seqs = changes.map((c) => c.seq);
      assert.ok(seqs.length >= 31, `${seqs.length} changes`);
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1);
    });

    it('a failing request never costs the others of its group', async () => {
      changes.length = 0;
      const calls = [
        ...Array.from({ length: 10 }, (_, k) => h.call('POST', '/v1/datasets/web/records', ev(`p-${k}`, { ECID: [{ id: ecid(100 + k) }] }))),
        h.call('POST', '/v1/datasets/web/records', ev('poison', { ECID: [{ id: ecid(200) }] })),
        ...Array.from({ length: 10 }, (_, k) => h.call('POST', '/v1/datasets/web/records', ev(`q-${k}`, { ECID: [{ id: ecid(110 + k) }] }))),
      ];
      const answers = await Promise.all(calls);
      answers.forEach((a, k) => {
        if (k === 10) assert.equal(a.statusCode, 500, a.body);
        else assert.equal(a.statusCode, 200, a.body);
      });
      for (let k = 0; k < 20; k++) {
        const r = await h.call('GET', `/v1/profiles?ns=ECID&id=${ecid(100 + k)}`);
        assert.equal(r.statusCode, 200, r.body);
        assert.equal(r.json().events.items.length, 1);
      }
      assert.equal((await h.call('GET', `/v1/profiles?ns=ECID&id=${ecid(200)}`)).statusCode, 404);
      await h.ctx.feed.flush();
      await h.ctx.bus.drain();
      assert.deepEqual(
        changes.map((c) => c.eventId).sort(),
        [...Array.from({ length: 10 }, (_, k) => `p-${k}`), ...Array.from({ length: 10 }, (_, k) => `q-${k}`)].sort(),
      );
    });
  });
});
