import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { MemoryBus } from './memory-bus.js';

describe('MemoryBus subject matching (remembered per subject)', () => {
  it('delivers to groups subscribed or dropped after a subject was first matched', async () => {
    const bus = new MemoryBus(pino({ level: 'silent' }));
    const got: string[] = [];
    bus.subscribe<number>('changes.*', 'a', async (m) => void got.push(`a:${m.subject}:${m.payload}`));
    await bus.publish('changes.s1', 'k', 1);
    await bus.publish('memberships.s1', 'k', 2);
    await bus.drain();
    assert.deepEqual(got, ['a:changes.s1:1']);

    // A group subscribed after the subject was matched once receives its next messages.
    const dropB = bus.subscribeBatch<number>('changes.>', 'b', 10, async (msgs) => void got.push(...msgs.map((m) => `b:${m.subject}:${m.payload}`)));
    bus.subscribe<number>('*.s1', 'c', async (m) => void got.push(`c:${m.subject}:${m.payload}`));
    await bus.publish('changes.s1', 'k', 3);
    await bus.publish('memberships.s1', 'k', 4);
    await bus.drain();
    assert.deepEqual(got.slice(1).sort(), ['a:changes.s1:3', 'b:changes.s1:3', 'c:changes.s1:3', 'c:memberships.s1:4']);

    // A dropped group receives nothing more.
    dropB();
    got.length = 0;
    await bus.publish('changes.s1', 'k', 5);
    await bus.drain();
    assert.deepEqual(got.sort(), ['a:changes.s1:5', 'c:changes.s1:5']);
    await bus.close();
  });
});

describe('MemoryBus batch hand-over', () => {
  it('hands messages published in one synchronous run to a batch subscriber in one call, in order', async () => {
    const bus = new MemoryBus(pino({ level: 'silent' }));
    const calls: number[][] = [];
    const single: number[] = [];
    bus.subscribeBatch<number>('memberships.*', 'batch', 100, async (msgs) => void calls.push(msgs.map((m) => m.payload)));
    bus.subscribe<number>('memberships.*', 'single', async (m) => void single.push(m.payload));
    await Promise.all([1, 2, 3, 4, 5].map((i) => bus.publish('memberships.s1', `k${i}`, i)));
    await bus.drain();
    assert.deepEqual(calls, [[1, 2, 3, 4, 5]]);
    assert.deepEqual(single, [1, 2, 3, 4, 5]);
    // Past `max`, the rest follows in the next call.
    calls.length = 0;
    await Promise.all(Array.from({ length: 150 }, (_, i) => bus.publish('memberships.s1', 'k', i)));
    await bus.drain();
    assert.deepEqual(calls.map((c) => c.length), [100, 50]);
    assert.deepEqual(calls.flat(), Array.from({ length: 150 }, (_, i) => i));
    await bus.close();
  });
});

describe('MemoryBus retries', () => {
  it('hands a message whose handler failed to it again, before the next one', async () => {
    const bus = new MemoryBus(pino({ level: 'silent' }));
    const seen: number[] = [];
    let failures = 0;
    bus.subscribe<number>('changes.*', 'flaky', async (m) => {
      seen.push(m.payload);
      if (m.payload === 1 && failures++ === 0) throw new Error('once');
    });
    await Promise.all([1, 2].map((i) => bus.publish('changes.s1', 'k', i)));
    await bus.drain();
    assert.deepEqual(seen, [1, 1, 2]);
    await bus.close();
  });
});
