/**
 * The peer of the ingestion benchmarks: a bare `node:http` server in a process of its own that
 * reads each body, `JSON.parse`s it and answers a fixed small JSON. What Node itself costs for the
 * same requests on the same machine; ours / this is the share of that ceiling Audient reaches.
 */
import http from 'node:http';
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { peakRssMB, rssMB } from '../lib/rss.js';
import type { ServerReady, ServerStopped } from './audient-server.js';

const ANSWER = Buffer.from('{"status":"accepted"}');

async function main(): Promise<void> {
  await fromParent<Message>('start');
  let parsed = 0;
  let failed = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        parsed += Array.isArray(body) ? body.length : 1;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': ANSWER.length });
        res.end(ANSWER);
      } catch {
        failed++;
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"code":"MALFORMED_JSON"}');
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('server has no TCP address');
  let sampled = rssMB();
  const sampler = setInterval(() => {
    sampled = Math.max(sampled, rssMB());
  }, 100);
  sampler.unref();
  const cpuAtReady = process.cpuUsage();
  toParent({ type: 'ready', url: `http://127.0.0.1:${address.port}`, apiKey: '', sandboxId: '', datasetId: '' } satisfies ServerReady);

  await fromParent<Message>('stop');
  const cpu = process.cpuUsage(cpuAtReady);
  clearInterval(sampler);
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  toParent({
    type: 'stopped',
    accepted: parsed,
    rejected: failed,
    changesPublished: 0,
    feedDrainMs: 0,
    peakRssMB: peakRssMB(),
    sampledPeakRssMB: Math.max(sampled, rssMB()),
    cpuMs: (cpu.user + cpu.system) / 1000,
  } satisfies ServerStopped);
  process.disconnect?.();
}

runChild(main);
