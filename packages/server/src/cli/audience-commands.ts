/** CLI commands for audiences: create, validate, preview, explain, batch runs and members. */
import { readFileSync } from 'node:fs';
import type { ExplainNode } from '@audient/core';
import type { Command } from 'commander';
import type { Client } from './client.js';

type Row = { id: string; name: string; method: string; methodReason: string };

const out = (json: boolean, value: unknown, human: () => string): void => {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
};

/** A query given inline or as @file. */
function queryText(q: string): string {
  return q.startsWith('@') ? readFileSync(q.slice(1), 'utf8') : q;
}

/** The explain tree as indented lines: ✓ held, ✗ failed, the clause, where it is, and the values seen. */
export function renderExplain(node: ExplainNode, depth = 0): string {
  const mark = node.result ? '✓' : '✗';
  const values = Object.keys(node.values).length === 0 ? '' : `   ← ${JSON.stringify(node.values)}`;
  const line = `${'  '.repeat(depth)}${mark} ${node.clause}  (line ${node.line}, column ${node.column})${values}`;
  return [line, ...node.children.map((c) => renderExplain(c, depth + 1))].join('\n');
}

/** Registers `audient audiences ...`. */
export function registerAudienceCommands(program: Command, api: () => Client): void {
  const a = program.command('audiences').description('audiences and their members');

  a.command('list').option('--json', 'print JSON').action(async (o: { json?: boolean }) => {
    const r = await api().request<{ items: Row[] }>('GET', '/v1/audiences');
    out(!!o.json, r, () => r.items.map((x) => `${x.id}\t${x.method}\t${x.name}\n    ${x.methodReason}`).join('\n') || '(no audiences)');
  });

  a.command('create <name> <query>')
    .description('create an audience (query inline, or @file)')
    .option('--id <id>', 'audience id (default: generated)')
    .option('--description <text>', 'description')
    .option('--json', 'print JSON')
    .action(async (name: string, query: string, o: { id?: string; description?: string; json?: boolean }) => {
      const r = await api().request<Row>('POST', '/v1/audiences', { name, query: queryText(query), ...(o.id ? { id: o.id } : {}), ...(o.description ? { description: o.description } : {}) });
      out(!!o.json, r, () => `audience ${r.id} created: ${r.method} (${r.methodReason})`);
    });

  a.command('validate <query>')
    .description('check a query: errors with line, column and caret, and the evaluation method it would get')
    .option('--json', 'print JSON')
    .action(async (query: string, o: { json?: boolean }) => {
      const r = await api().request<{ valid: boolean; diagnostics: Array<{ message: string; formatted?: string }>; classification?: { method: string; reason: string } }>(
        'POST', '/v1/audiences/validate', { query: queryText(query) },
      );
      out(!!o.json, r, () =>
        r.valid ? `valid: ${r.classification?.method} — ${r.classification?.reason}` : r.diagnostics.map((d) => d.formatted ?? d.message).join('\n'),
      );
      if (!r.valid) process.exitCode = 1;
    });

  a.command('preview <query>')
    .description('size estimate and sample members of a query')
    .option('--sample <n>', 'profiles to sample', '5000')
    .option('--json', 'print JSON')
    .action(async (query: string, o: { sample: string; json?: boolean }) => {
      const r = await api().request<{ sampled: number; matched: number; totalProfiles: number; estimatedSize: number; samples: Array<{ profileId: string }> }>(
        'POST', '/v1/audiences/preview', { query: queryText(query), sampleSize: Number(o.sample) },
      );
      out(!!o.json, r, () => `${r.matched} of ${r.sampled} sampled profiles match; estimated size ${r.estimatedSize} of ${r.totalProfiles}\n${r.samples.map((s) => `  ${s.profileId}`).join('\n')}`);
    });

  a.command('explain <audienceId>')
    .description('for one profile, which clauses held and which failed, with the values seen')
    .requiredOption('--ns <namespace>', 'identity namespace')
    .requiredOption('--id <id>', 'identity value')
    .option('--json', 'print JSON')
    .action(async (audienceId: string, o: { ns: string; id: string; json?: boolean }) => {
      const r = await api().request<{ profileId: string; qualifies: boolean; tree: ExplainNode }>('POST', `/v1/audiences/${encodeURIComponent(audienceId)}/explain`, { ns: o.ns, id: o.id });
      out(!!o.json, r, () => `profile ${r.profileId} ${r.qualifies ? 'qualifies' : 'does not qualify'} for ${audienceId}\n${renderExplain(r.tree)}`);
    });

  a.command('run')
    .description('run batch evaluation now and follow it')
    .option('--all', 'evaluate every audience, not only batch ones')
    .option('--json', 'print JSON')
    .action(async (o: { all?: boolean; json?: boolean }) => {
      const c = api();
      let job = await c.request<{ id: string; status: string; state: Record<string, unknown> }>('POST', '/v1/audiences/batch-jobs', o.all ? { all: true } : {});
      while (job.status === 'queued' || job.status === 'running') {
        await new Promise((r) => setTimeout(r, 500));
        job = await c.request('GET', `/v1/jobs/${job.id}`);
        if (!o.json && process.stderr.isTTY) process.stderr.write(`\r${String(job.state['processed'] ?? 0)}/${String(job.state['total'] ?? '?')} profiles`);
      }
      if (!o.json && process.stderr.isTTY) process.stderr.write('\n');
      out(!!o.json, job, () => `job ${job.id} ${job.status}: ${JSON.stringify(job.state)}`);
      if (job.status !== 'succeeded') process.exitCode = 1;
    });

  a.command('members <audienceId>')
    .description('members of an audience as JSON Lines, one page (the next cursor goes to stderr) or --all')
    .option('--limit <n>', 'members per page (at most 10000)', '100')
    .option('--status <status...>', 'statuses to list: realized, existing, exited (default: realized existing)')
    .option('--cursor <profileId>', 'start after this profile id (the cursor a previous page printed)')
    .option('--all', 'every member, page after page')
    .action(async (audienceId: string, o: { limit: string; status?: string[]; cursor?: string; all?: boolean }) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new Error(`--limit must be an integer from 1 to 10000, got ${o.limit}`);
      let cursor = o.cursor;
      for (;;) {
        const q = new URLSearchParams({ limit: String(limit) });
        for (const st of o.status ?? []) q.append('status', st);
        if (cursor !== undefined) q.set('cursor', cursor);
        const r = await api().request<{ items: unknown[]; next?: string }>('GET', `/v1/audiences/${encodeURIComponent(audienceId)}/members?${q}`);
        if (r.items.length) process.stdout.write(r.items.map((m) => JSON.stringify(m)).join('\n') + '\n');
        cursor = r.next;
        if (cursor === undefined) return;
        if (!o.all) {
          process.stderr.write(`more: --cursor ${cursor}\n`);
          return;
        }
      }
    });
}
