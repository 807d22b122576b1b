/**
 * The peer of the edge benchmarks: a bare `node:http` server in a process of its own that reads
 * each request body, `JSON.parse`s it and answers a fixed JSON body of the size Audient's interact
 * answer has (given by the parent). What Node itself costs for the same requests and the same
 * answer bytes on the same machine.
 */
import http from 'node:http';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { peakRssMB } from '../lib/rss.js';

/** Parent → peer: answer bodies of this many bytes. */
export interface StartBare extends Message {
  type: 'start';
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

/** Peer messages. */
export type BareOut = BareReady | BareStopped;

/** A JSON object of exactly `bytes` bytes (at least 40). */
function fixedAnswer(bytes: number): Buffer {
  const head = '{"requestId":"00000000-0000-0000-0000-000000000000","handle":[],"pad":"';
  const tail = '"}';
  return Buffer.from(head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail);
}

async function main(): Promise<void> {
  const start = await fromParent<StartBare>('start');
  const answer = fixedAnswer(start.answerBytes);
  let answered = 0;
  let failed = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
        answered++;
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': answer.length });
        res.end(answer);
      } catch {
        failed++;
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"status":400}');
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('server has no TCP address');
  toParent({ type: 'ready', url: `http://127.0.0.1:${address.port}` } satisfies BareReady);

  await fromParent<Message>('stop');
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  toParent({ type: 'stopped', answered, failed, peakRssMB: peakRssMB() } satisfies BareStopped);
  process.disconnect?.();
}

runChild(main);
