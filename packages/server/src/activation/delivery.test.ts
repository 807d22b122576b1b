/**
 * The delivery runtime keeps its concurrency in flight and writes outcomes in batches, on every
 * storage backend, against the real test receiver: exports queued in the outbox are sent as
 * concurrent micro-batches (the receiver answers slowly, so every request of the pass is open at
 * once), each user arrives once, and the outbox ends empty; exports queued while a pass waits
 * for a slow answer are sent without waiting for it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ExportRecord } from '@audient/core';
import { describeBackends } from '@audient/storage/testing';
import { createHarness, type Harness } from '../testing/harness.js';
import { startReceiver, type Receiver } from '../testing/receiver.js';

const record = (i: number, flowId: string): ExportRecord => ({
  profileId: `p${i}`,
  attributes: {},
  identities: { partner_uid: [`U-${i}`] },
  identityMap: { ecid: [{ id: String(10n ** 37n + BigInt(i)) }] },
  segmentMembership: { ups: { a: { status: 'realized', lastQualificationTime: '2025-01-01T00:00:00Z' } } },
  audiences: [{ id: 'a', name: 'A', status: 'realized' }],
  reasons: ['membership'],
  idempotencyKey: `${flowId}:p${i}:m${i}`,
});

await describeBackends((backend) => {
  describe('delivery runtime concurrency', () => {
    let h: Harness;
    let receiver: Receiver;

    before(async () => {
      receiver = await startReceiver();
      h = await createHarness(await backend.open(), { segmentation: { tickMs: 0, batchTime: '' } }, { delivery: { pollMs: 3_600_000, claimBatch: 500 } });
    });
    after(async () => {
      await h.close();
      await receiver.close();
    });

    it('sends micro-batches concurrently, each user once, and empties the outbox', async () => {
      await h.call('POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-person-details'], fields: {} });
      const aud = await h.call('POST', '/v1/audiences', { id: 'a', name: 'A', query: 'person.name.firstName exists' });
      assert.ok(aud.statusCode < 300, aud.body);
      const conn = (await h.call('POST', '/v1/connections', { name: 'P', destinationId: 'partner-push', settings: { endpoint: `${receiver.url}/p`, dataSourceId: 'ds' } })).json();
      const flow = (await h.call('POST', '/v1/dataflows', { name: 'F', connectionId: conn.id, audienceIds: ['a'], mapping: [] })).json();
      assert.ok(flow.id, JSON.stringify(flow));
      await h.ctx.jobs.idle();
      const n = 5000;
      const now = Date.now();
      await h.ctx.store.enqueueExports(
        Array.from({ length: n }, (_, i) => ({ sandboxId: 'prod', dataflowId: flow.id, profileId: `p${i}`, idempotencyKey: `k${i}`, payload: record(i, flow.id), createdAt: now })),
      );
      receiver.slowNext(n, 30); // every answer waits: requests overlap only if the runtime sends them together
      h.ctx.delivery.poke();
      await h.ctx.delivery.idle();

      const uids = receiver.accepted.flatMap((r) => (r.json as { users: Array<{ uid: string }> }).users.map((u) => u.uid));
      assert.equal(uids.length, n);
      assert.equal(new Set(uids).size, n, 'each user once');
      assert.equal(receiver.accepted.length, n / 100, 'messages of 100 users');
      const { peakInFlight, claims, settles } = h.ctx.delivery.stats;
      assert.equal(peakInFlight, 32, 'the configured concurrency was reached');
      assert.ok(claims >= n / 500, `leased in claims of claimBatch rows (${claims})`);
      assert.ok(settles < n / 100, `outcomes of several messages written together (${settles} writes for ${n / 100} messages)`);
      const counts = await h.ctx.store.outboxCounts('prod', flow.id);
      assert.deepEqual({ pending: counts.pending, inflight: counts.inflight, dead: counts.dead }, { pending: 0, inflight: 0, dead: 0 });
    });

    it('leases exports queued during a pass at once, without waiting for its slow requests', async () => {
      // A receiver of its own: the first test leaves slow answers queued on the shared one.
      const receiver = await startReceiver();
      after(() => receiver.close());
      const conn = (await h.call('POST', '/v1/connections', { name: 'P2', destinationId: 'partner-push', settings: { endpoint: `${receiver.url}/p`, dataSourceId: 'ds' } })).json();
      const flow = (await h.call('POST', '/v1/dataflows', { name: 'F2', connectionId: conn.id, audienceIds: ['a'], mapping: [] })).json();
      assert.ok(flow.id, JSON.stringify(flow));
      await h.ctx.jobs.idle();
      const enqueue = (i: number) =>
        h.ctx.store.enqueueExports([{ sandboxId: 'prod', dataflowId: flow.id, profileId: `p${i}`, idempotencyKey: `late${i}`, payload: record(i, flow.id), createdAt: Date.now() }]);
      const uidsOf = (r: { json: unknown }) => (r.json as { users: Array<{ uid: string }> }).users.map((u) => u.uid);
      const before = receiver.requests.length;
      receiver.slowNext(1, 2000); // under the destination's 3 s timeout
      await enqueue(100_001);
      h.ctx.delivery.poke();
      // The slow message is at the receiver, its answer pending: the pass is still running.
      for (let i = 0; i < 200 && receiver.requests.length === before; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(receiver.requests.length, before + 1);
      await enqueue(100_002);
      h.ctx.delivery.poke(); // as activation does after queueing
      await receiver.waitFor((rs) => rs.some((r) => r.status && uidsOf(r).includes('U-100002')), 5000);
      const slow = receiver.requests.find((r) => uidsOf(r).includes('U-100001'))!;
      assert.equal(slow.status, 0, 'the second export was delivered while the first was still waiting for its answer');
      await h.ctx.delivery.idle();
      assert.ok(receiver.accepted.some((r) => uidsOf(r).includes('U-100001')));
      const counts = await h.ctx.store.outboxCounts('prod', flow.id);
      assert.deepEqual({ pending: counts.pending, inflight: counts.inflight, dead: counts.dead }, { pending: 0, inflight: 0, dead: 0 });
    });
  });
});
