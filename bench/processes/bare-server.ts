/**
 * The peer of the ingestion benchmarks: a bare `node:http` server in a process of its own that
 * reads each body, `JSON.parse`s it and answers a fixed small JSON. What Node itself costs for the
 * same requests on the same machine; ours / this is the share of that ceiling Audient reaches.
 */
import { fromParent, runChild, toParent, type Message } from '../lib/child.js';
import { startBareJsonServer } from '../lib/http.js';
import { peakRssMB, sampleRss } from '../lib/rss.js';
import type { ServerReady, ServerStopped } from './audient-server.js';

const ANSWER = Buffer.from('{"status":"accepted"}');

async function main(): Promise<void> {
  await fromParent<Message>('start');
  let parsed = 0;
  let failed = 0;
  const server = await startBareJsonServer({
    answer: ANSWER,
    contentType: 'application/json',
    rejectBody: '{"code":"MALFORMED_JSON"}',
    parsed: (body) => (parsed += Array.isArray(body) ? body.length : 1),
    failed: () => failed++,
  });
  const rss = sampleRss();
  const cpuAtReady = process.cpuUsage();
  toParent({ type: 'ready', url: server.url, apiKey: '', sandboxId: '', datasetId: '' } satisfies ServerReady);

  await fromParent<Message>('stop');
  const cpu = process.cpuUsage(cpuAtReady);
  rss.stop();
  await server.close();
  toParent({
    type: 'stopped',
    accepted: parsed,
    rejected: failed,
    changesPublished: 0,
    feedDrainMs: 0,
    peakRssMB: peakRssMB(),
    sampledPeakRssMB: rss.peak(),
    cpuMs: (cpu.user + cpu.system) / 1000,
  } satisfies ServerStopped);
  process.disconnect?.();
}

runChild(main);
