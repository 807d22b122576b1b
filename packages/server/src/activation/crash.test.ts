import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startOAuthServer, type OAuthServer } from '../testing/oauth-server.js';
import { startReceiver, type Receiver } from '../testing/receiver.js';

const CLI = fileURLToPath(new URL('../cli.ts', import.meta.url));
const PROFILES = 40;

/** Starts `audient start` in a child process and resolves with its URL once it listens. */
function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', CLI, 'start', '--data-dir', dataDir, '--port', '0'], {
    env: { ...process.env, AUDIENT_LOG_LEVEL: 'error', AUDIENT_DELIVERY_LEASE_MS: '1500', AUDIENT_DELIVERY_POLL_MS: '100', AUDIENT_DELIVERY_TIMEOUT_MS: '10000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /running at (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]! });
      }
    });
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

async function api(url: string, key: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

describe('a worker killed in the middle of delivery', () => {
  let oauth: OAuthServer;
  let receiver: Receiver;
  let dataDir: string;
  const children: ChildProcess[] = [];
  before(async () => {
    oauth = await startOAuthServer();
    receiver = await startReceiver({ verifyBearer: async (t) => (await oauth.introspect(t)).active });
    dataDir = mkdtempSync(join(tmpdir(), 'audient-crash-'));
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await receiver.close();
    await oauth.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('delivers every qualified profile after a restart, none lost', { timeout: 120_000 }, async () => {
    const first = await startServer(dataDir);
    children.push(first.child);
    const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    await api(first.url, key, 'POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-loyalty-details', 'profile-personal-contact-details'], fields: {} });
    await api(first.url, key, 'POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
    await api(first.url, key, 'POST', '/v1/audiences', { id: 'gold', name: 'Gold', query: 'loyalty.tier = "gold"' });
    const conn = await api(first.url, key, 'POST', '/v1/connections', {
      name: 'Collector', destinationId: 'http-api',
      settings: { httpEndpoint: `${receiver.url}/in`, authEndpoint: oauth.tokenUrl, clientId: 'test-client', clientSecret: 'test-secret' },
    });
    await api(first.url, key, 'POST', '/v1/dataflows', {
      name: 'Collector', connectionId: conn['id'], audienceIds: ['gold'],
      mapping: [{ source: 'personalEmail.address', target: { kind: 'attribute', name: 'email' } }],
    });
    receiver.slowNext(PROFILES, 4000); // deliveries hang until the worker is killed
    const people = Array.from({ length: PROFILES }, (_, i) => ({
      identityMap: { email: [{ id: `p${i}@x.io` }] }, personalEmail: { address: `p${i}@x.io` }, loyalty: { tier: 'gold' },
    }));
    await api(first.url, key, 'POST', '/v1/datasets/crm/records', people);
    const start = Date.now();
    while (receiver.requests.length === 0 && Date.now() - start < 30_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(receiver.requests.length > 0, 'deliveries started before the kill');
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const second = await startServer(dataDir);
    children.push(second.child);
    const delivered = (): Set<string> =>
      new Set(
        receiver.requests
          .filter((r) => r.status >= 200 && r.status < 300 && !r.aborted)
          .map((r) => (r.json as { email?: string } | undefined)?.email)
          .filter((e): e is string => !!e),
      );
    const deadline = Date.now() + 60_000;
    while (delivered().size < PROFILES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(delivered().size, PROFILES, `delivered ${delivered().size} of ${PROFILES} profiles after the restart`);
    second.child.kill('SIGTERM');
  });
});
