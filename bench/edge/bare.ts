/**
 * The peer of the edge benchmarks: a bare `node:http` server in a process of its own that reads
 * each request body, `JSON.parse`s it and answers a fixed JSON body of the size Audient's interact
 * answer has (given by the parent). What Node itself costs for the same requests and the same
 * answer bytes on the same machine.
 */
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { startBareJsonServer } from '../lib/http.js';
import { peakRssMB } from '../lib/rss.js';

/** Parent → peer: answer bodies of this many bytes. */
export interface StartBare extends Message {
  type: 'start';
  answerBytes: number;
}

/** Parent → peer: answer bodies of this many bytes from now on (answered with `sized`). */
export interface SizeBare extends Message {
  type: 'size';
  answerBytes: number;
}

/** Peer → parent: listening. */
export interface BareReady extends Message {
  type: 'ready';
  url: string;
}

/** Peer → parent: stopped. */
export interface BareStopped extends Message {
  type: 'stopped';
  answered: number;
  failed: number;
  peakRssMB: number;
}

/** Peer → parent: CPU used so far (answer to `cpu`). */
export interface BareCpu extends Message {
  type: 'cpu';
  /** CPU time of the process so far, µs. */
  cpuUs: number;
  answered: number;
}

/** Peer messages. */
/** Peer → parent: answering the new size. */
export interface BareSized extends Message {
  type: 'sized';
}

export type BareOut = BareReady | BareStopped | BareCpu | BareSized;

/** A JSON object of exactly `bytes` bytes (at least 40). */
function fixedAnswer(bytes: number): Buffer {
  const head = '{"requestId":"00000000-0000-0000-0000-000000000000","handle":[],"pad":"';
  const tail = '"}';
  return Buffer.from(head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail);
}

async function main(): Promise<void> {
  const start = await fromParent<StartBare>('start');
  let answered = 0;
  let failed = 0;
  const server = await startBareJsonServer({
    answer: fixedAnswer(start.answerBytes),
    contentType: 'application/json; charset=utf-8',
    rejectBody: '{"status":400}',
    parsed: () => answered++,
    failed: () => failed++,
  });
  toParent({ type: 'ready', url: server.url } satisfies BareReady);

  for (;;) {
    const msg = await fromParent<Message>('cpu', 'size', 'stop');
    if (msg.type === 'stop') break;
    if (msg.type === 'size') {
      server.setAnswer(fixedAnswer((msg as SizeBare).answerBytes));
      toParent({ type: 'sized' } satisfies BareSized);
      continue;
    }
    const cpu = process.cpuUsage();
    toParent({ type: 'cpu', cpuUs: cpu.user + cpu.system, answered } satisfies BareCpu);
  }
  await server.close();
  toParent({ type: 'stopped', answered, failed, peakRssMB: peakRssMB() } satisfies BareStopped);
  process.disconnect?.();
}

runChild(main);
