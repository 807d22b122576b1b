import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '@audient/storage';
import { describeBackends } from '@audient/storage/testing';
import type { ChangeMessage } from './change-feed.js';
import { IngestionService } from './ingestion.js';
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

/** The real store, counting its ingestion transactions. */
function counted(store: Store): { store: Store; transactions: () => number } {
  let n = 0;
  const wrapped = new Proxy(store, {
    get(target, key) {
      if (key === 'ingest') {
        return (sandboxId: string, fn: Parameters<Store['ingest']>[1]) => {
          n++;
          return target.ingest(sandboxId, fn);
        };
      }
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: wrapped, transactions: () => n };
}

async function setup(h: Harness, key?: string): Promise<void> {
  const r1 = await h.call('POST', '/v1/schemas', { id: 'web', name: 'Web', class: 'event', fieldGroups: ['event-web-details'], fields: {} }, key);
  assert.ok(r1.statusCode < 300, r1.body);
  const r2 = await h.call('POST', '/v1/datasets', { id: 'web', name: 'Web', schemaId: 'web', profileEnabled: true }, key);
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

  describe('group commit: waiting for company when writes arrive close together', () => {
    // A wait far longer than any test step, so that whether a request waited shows without timing
    // it closely: a request that waited took at least WAIT_MS, one that did not well under it.
    const WAIT_MS = 2_000;
    const BUSY_GAP_MS = 300;
    let h: Harness;
    let ingestion: IngestionService;
    let transactions: () => number;
    before(async () => {
      h = await createHarness(await backend.open());
      await setup(h);
      await setup(h, (await h.ctx.tenancy.createSandbox({ id: 'other' })).apiKey);
      const c = counted(h.ctx.store);
      transactions = c.transactions;
      const { catalog, feed, metrics, config } = h.ctx;
      ingestion = new IngestionService({ store: c.store, catalog, feed, limits: config.limits, metrics, groupWaitMs: WAIT_MS, busyGapMs: BUSY_GAP_MS });
    });
    after(() => h.close());

    const send = async (id: string, n: number, sandboxId = 'prod'): Promise<number> => {
      const t0 = performance.now();
      const [r] = await ingestion.ingest(sandboxId, 'web', [ev(id, { ECID: [{ id: ecid(n) }] })]);
      assert.equal(r?.status, 'accepted', JSON.stringify(r));
      return performance.now() - t0;
    };
    const quiet = (): Promise<void> => new Promise((r) => setTimeout(r, BUSY_GAP_MS + 50));

    it('a lone request after a quiet spell does not wait', async () => {
      const before = transactions();
      assert.ok((await send('w-lone', 300)) < WAIT_MS / 2, 'answered without waiting');
      assert.equal(transactions(), before + 1);
    });

    it('requests arriving close together, but not in the same turn, share one transaction', async () => {
      await quiet();
      await send('w-first', 301); // a group just began: writes are now close together
      const before = transactions();
      const a = send('w-a', 302);
      await new Promise((r) => setTimeout(r, 20));
      const b = send('w-b', 303);
      const [ta, tb] = await Promise.all([a, b]);
      assert.equal(transactions(), before + 1, 'one transaction for both');
      assert.ok(ta >= WAIT_MS * 0.9 && tb < ta, `the first waited for company (${Math.round(ta)} ms), the second joined it (${Math.round(tb)} ms)`);
      const r = await h.call('GET', `/v1/profiles?ns=ECID&id=${ecid(303)}`);
      assert.equal(r.json().events.items.length, 1);
    });

    it("one sandbox's close writes do not make another sandbox's lone request wait", async () => {
      await quiet();
      await send('w-busy', 340); // prod's writes are now close together
      assert.ok((await send('w-elsewhere', 341, 'other')) < WAIT_MS / 2, "answered without waiting for prod's pace");
    });

    it('a full group goes at once instead of waiting out the window', async () => {
      await quiet();
      await send('w-start', 310);
      const before = transactions();
      const times = await Promise.all(Array.from({ length: 8 }, (_, k) => send(`w-full-${k}`, 320 + k)));
      assert.equal(transactions(), before + 1, 'the eight requests in one transaction');
      assert.ok(Math.max(...times) < WAIT_MS / 2, `answered without waiting out the window (${Math.round(Math.max(...times))} ms)`);
      // Past saturation groups fill up by themselves: the next one does not wait either.
      assert.ok((await send('w-after-full', 330)) < WAIT_MS / 2, 'a group after a full one does not wait');
      assert.equal(transactions(), before + 2);
    });
  });
});
