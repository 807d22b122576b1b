/**
 * The PostgreSQL batch write's statements, on a recording client (no server needed): inside the
 * store's transaction JIT is turned off before the write (see NO_JIT), and never outside one,
 * where SET LOCAL would do nothing but cost a round trip.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BatchMembershipPage } from '../port.js';
import { NO_JIT, writeBatchMemberships } from './batch-memberships.js';

/** A client that records each query's text and answers the write with one seq per change. */
function recorder(): { texts: string[]; query: (q: string | { text: string; values?: unknown[] }) => Promise<{ rows: Array<{ seq: number }> }> } {
  const texts: string[] = [];
  return {
    texts,
    query: async (q) => {
      const text = typeof q === 'string' ? q : q.text;
      texts.push(text.trim());
      const changes = typeof q === 'string' ? [] : ((q.values?.[1] as unknown[] | undefined) ?? []);
      return { rows: changes.map((_, i) => ({ seq: i + 1 })) };
    },
  };
}

const page: BatchMembershipPage = {
  changes: [{ profileId: 'p1', audienceId: 'a', status: 'realized' }],
  confirm: { profileIds: ['p1'], audienceIds: ['a'], unconfirmed: [] },
  schedule: [],
};

describe('PostgreSQL writeBatchMemberships', () => {
  it('turns JIT off for the transaction before writing a page in one', async () => {
    const db = recorder();
    const events = await writeBatchMemberships(db as never, 'sb', page, 1_000, true);
    assert.equal(db.texts.length, 3);
    assert.equal(db.texts[0], NO_JIT);
    assert.match(db.texts[1]!, /FROM deleted_profiles/, 'the tombstones, read after the log lock');
    assert.match(db.texts[2]!, /INSERT INTO membership_events/);
    assert.deepEqual(events.map((e) => [e.seq, e.profileId, e.audienceId, e.status]), [[1, 'p1', 'a', 'realized']]);
  });

  it('sends the write alone outside a transaction, and nothing for an empty page', async () => {
    const db = recorder();
    await writeBatchMemberships(db as never, 'sb', { ...page, changes: [] }, 1_000);
    assert.equal(db.texts.length, 1);
    assert.doesNotMatch(db.texts[0]!, /jit/i);
    await writeBatchMemberships(db as never, 'sb', { changes: [], confirm: { profileIds: [], audienceIds: [], unconfirmed: [] }, schedule: [] }, 1_000, true);
    assert.equal(db.texts.length, 1);
  });
});
