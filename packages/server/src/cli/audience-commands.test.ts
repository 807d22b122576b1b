/**
 * The `audient audiences` commands, run as the real CLI process against a listening server:
 * validate (caret and exit code), create, preview, explain, a batch run, and members page by page
 * and all at once.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '@audient/storage';
import { createHarness, okJson, type Harness } from '../testing/harness.js';

const CLI = fileURLToPath(new URL('../cli.ts', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('audient audiences (CLI)', () => {
  let h: Harness;
  let url = '';
  const cli = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        ['--conditions=development', '--import', 'tsx', CLI, '--url', url, '--api-key', h.apiKey, ...args],
        { timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  before(async () => {
    const store = new SqliteStore(':memory:');
    await store.migrate();
    h = await createHarness(store, { segmentation: { tickMs: 0, batchTime: '' } });
    await okJson(h, 'POST', '/v1/schemas', { id: 'crm', name: 'CRM', class: 'profile', fieldGroups: ['profile-person-details', 'profile-loyalty-details'], fields: {} });
    await okJson(h, 'POST', '/v1/datasets', { id: 'crm', name: 'CRM', schemaId: 'crm', profileEnabled: true });
    const tiers = ['gold', 'silver', 'gold', 'gold', 'bronze', 'gold', 'gold'];
    for (const [i, tier] of tiers.entries()) {
      await okJson(h, 'POST', '/v1/datasets/crm/records', { identityMap: { email: [{ id: `p${i}@x.io` }] }, loyalty: { tier, points: i * 1000 } });
    }
    await h.ctx.feed.flush();
    await h.ctx.bus.drain();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  });
  after(() => h.close());

  it('validate shows where a query is wrong, with a caret, and exits 1', async () => {
    const bad = await cli('audiences', 'validate', 'loyalty.tier = ');
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stdout, /line 1, column/);
    assert.match(bad.stdout, /\^/);
    const unknown = await cli('audiences', 'validate', 'loyalty.teir = "gold"');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout, /loyalty\.tier/, 'did you mean');
    const ok = await cli('audiences', 'validate', 'loyalty.tier = "gold"');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^valid: (edge|streaming|batch) — /);
  });

  it('previews a query before it is saved, creates it and explains one profile', async () => {
    const preview = await cli('audiences', 'preview', 'loyalty.tier = "gold"', '--json');
    assert.equal(preview.code, 0, preview.stderr);
    const p = JSON.parse(preview.stdout) as { sampled: number; matched: number; estimatedSize: number; samples: unknown[] };
    assert.deepEqual([p.sampled, p.matched, p.estimatedSize], [7, 5, 5]);
    assert.ok(p.samples.length > 0 && p.samples.length <= 5);

    const created = await cli('audiences', 'create', 'Gold', 'loyalty.tier = "gold" and loyalty.points >= 2000', '--id', 'gold');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /audience gold created: \w+ \(/);

    const no = await cli('audiences', 'explain', 'gold', '--ns', 'email', '--id', 'p0@x.io');
    assert.equal(no.code, 0, no.stderr);
    assert.match(no.stdout, /does not qualify for gold/);
    assert.match(no.stdout, /^  ✗ loyalty\.points >= 2000  \(line 1, column \d+\)   ← \{"value":0\}$/m, "the failing clause, where it is, and the value seen");
    assert.match(no.stdout, /^  ✓ loyalty\.tier = "gold" /m);
    const yes = await cli('audiences', 'explain', 'gold', '--ns', 'email', '--id', 'p3@x.io');
    assert.match(yes.stdout, /qualifies for gold/);
    assert.doesNotMatch(yes.stdout, /✗/);
  });

  it('runs a batch job, then lists members one page at a time and all at once', async () => {
    const run = await cli('audiences', 'run', '--all', '--json');
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { status: string }).status, 'succeeded');

    // Members of gold: p2, p3, p5, p6 (gold with >= 2000 points).
    const all = await cli('audiences', 'members', 'gold', '--all', '--limit', '3');
    assert.equal(all.code, 0, all.stderr);
    const everyone = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as { profileId: string; status: string });
    assert.equal(everyone.length, 4);
    assert.ok(everyone.every((m) => m.status === 'realized' || m.status === 'existing'));
    assert.equal(new Set(everyone.map((m) => m.profileId)).size, 4);

    const first = await cli('audiences', 'members', 'gold', '--limit', '3');
    assert.equal(first.stdout.trim().split('\n').length, 3);
    const cursor = /--cursor (\S+)/.exec(first.stderr)?.[1];
    assert.ok(cursor, first.stderr);
    const rest = await cli('audiences', 'members', 'gold', '--limit', '3', '--cursor', cursor);
    const ids = [...first.stdout.trim().split('\n'), ...rest.stdout.trim().split('\n')].map((l) => (JSON.parse(l) as { profileId: string }).profileId);
    assert.deepEqual(ids, everyone.map((m) => m.profileId));
    assert.equal(rest.stderr, '', 'no cursor after the last page');

    const exited = await cli('audiences', 'members', 'gold', '--status', 'exited');
    assert.equal(exited.code, 0, exited.stderr);
    assert.equal(exited.stdout, '');
    const bad = await cli('audiences', 'members', 'gold', '--limit', '0');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--limit must be an integer from 1 to 10000/);
  });
});
