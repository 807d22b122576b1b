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
