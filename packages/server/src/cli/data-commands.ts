/** CLI commands that work through the HTTP API. */
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { Client } from './client.js';

type JobView = { id: string; status: string; state: Record<string, number | string | unknown> };

const print = (json: boolean, value: unknown, human: () => string): void => {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
};

function readJsonFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read JSON from ${path}: ${(err as Error).message}`);
  }
}

/** Uploads a file and follows its job with progress bars; exit code 3 when rows were rejected. */
async function ingestFile(
  api: Client,
  file: string,
  opts: { dataset: string; format?: string; mapping?: string; wait: boolean; json?: boolean },
): Promise<void> {
  const size = statSync(file).size;
  const format = opts.format ?? (/\.csv$/i.test(file) ? 'csv' : 'jsonl');
  const interactive = process.stderr.isTTY && !opts.json;
  const bar = new cliProgress.SingleBar(
    { format: '{phase} [{bar}] {percentage}% | {value}/{total} bytes | {rows} rows, {rejected} rejected', stream: process.stderr, noTTYOutput: false },
    cliProgress.Presets.shades_classic,
  );
  if (interactive) bar.start(size, 0, { phase: 'upload ', rows: 0, rejected: 0 });
  let sent = 0;
  const source = createReadStream(file);
  source.on('data', (chunk) => {
    sent += (chunk as Buffer).length;
    if (interactive) bar.update(sent);
  });
  const params = new URLSearchParams({ format, fileName: basename(file) });
  if (opts.mapping) params.set('mapping', JSON.stringify(readJsonFile(opts.mapping)));
  const job = await api.request<JobView>('POST', `/v1/datasets/${encodeURIComponent(opts.dataset)}/batches?${params}`, undefined, {
    headers: { 'content-type': format === 'csv' ? 'text/csv' : 'application/x-ndjson' },
    raw: Readable.toWeb(source) as unknown as RequestInit['body'],
    timeoutMs: 3_600_000,
  });
  if (!opts.wait) {
    if (interactive) bar.stop();
    return print(!!opts.json, job, () => `job ${job.id} started; follow it with: audient jobs get ${job.id}`);
  }
  let current = job;
  while (current.status === 'queued' || current.status === 'running') {
    await new Promise((r) => setTimeout(r, 250));
    current = await api.request<JobView>('GET', `/v1/jobs/${job.id}`);
    const s = current.state;
    if (interactive) bar.update(Number(s['bytesRead'] ?? 0), { phase: 'ingest ', rows: s['rows'] ?? 0, rejected: s['rejected'] ?? 0 });
  }
  if (interactive) bar.stop();
  const s = current.state;
  print(!!opts.json, current, () =>
    current.status === 'succeeded'
      ? `job ${current.id}: ${String(s['rows'])} rows, ${String(s['accepted'])} accepted, ${String(s['rejected'])} rejected` +
        (Number(s['rejected']) > 0 ? `\n  see them with: audient failed list --source batch:${current.id}` : '')
      : `job ${current.id} ${current.status}: ${JSON.stringify(s['error'])}`,
  );
  if (current.status !== 'succeeded') process.exitCode = 1;
  else if (Number(s['rejected']) > 0) process.exitCode = 3;
}

/** Registers ingest, profiles, schemas, datasets, failed, jobs, sandboxes and keys commands. */
export function registerDataCommands(program: Command, api: () => Client): void {
  program
    .command('ingest <file>')
    .description('ingest a CSV or JSON Lines file into a dataset, with progress')
    .requiredOption('-d, --dataset <id>', 'target dataset')
    .option('-f, --format <format>', 'csv or jsonl (default: from the file extension)')
    .option('-m, --mapping <file>', 'CSV mapping file: {"columns": {"Column": "dot.path"}}')
    .option('--no-wait', 'return once the upload is accepted')
    .option('--json', 'print JSON')
    .action((file: string, o: { dataset: string; format?: string; mapping?: string; wait: boolean; json?: boolean }) => ingestFile(api(), file, o));

  const profiles = program.command('profiles').description('unified profiles');
  profiles
    .command('get')
    .description('the merged profile holding an identity')
    .requiredOption('--ns <namespace>', 'identity namespace (email, ECID, crmId, ...)')
    .requiredOption('--id <id>', 'identity value')
    .option('--events <n>', 'recent events to include', '10')
    .option('--json', 'print JSON')
    .action(async (o: { ns: string; id: string; events: string; json?: boolean }) => {
      const p = await api().request<Record<string, unknown>>('GET', `/v1/profiles?${new URLSearchParams({ ns: o.ns, id: o.id, eventsLimit: o.events })}`);
      print(!!o.json, p, () => JSON.stringify(p, null, 2));
    });
  profiles
    .command('delete')
    .description('privacy delete: remove the person holding an identity everywhere')
    .requiredOption('--ns <namespace>', 'identity namespace')
    .requiredOption('--id <id>', 'identity value')
    .option('--json', 'print JSON')
    .action(async (o: { ns: string; id: string; json?: boolean }) => {
      const job = await api().request<JobView>('POST', '/v1/privacy/deletes', { ns: o.ns, id: o.id });
      print(!!o.json, job, () => `privacy delete job ${job.id} ${job.status}`);
    });

  const schemas = program.command('schemas').description('schemas');
  schemas.command('list').option('--json', 'print JSON').action(async (o: { json?: boolean }) => {
    const r = await api().request<{ items: Array<{ id: string; class: string; version: number; name: string }> }>('GET', '/v1/schemas');
    print(!!o.json, r, () => r.items.map((s) => `${s.id}\t${s.class}\tv${s.version}\t${s.name}`).join('\n') || '(no schemas)');
  });
  schemas
    .command('create <file>')
    .description('create a schema from a JSON file')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const s = await api().request<{ id: string }>('POST', '/v1/schemas', readJsonFile(file));
      print(!!o.json, s, () => `schema ${s.id} created`);
    });

  const datasets = program.command('datasets').description('datasets');
  datasets.command('list').option('--json', 'print JSON').action(async (o: { json?: boolean }) => {
    const r = await api().request<{ items: Array<{ id: string; schemaId: string; profileEnabled: boolean }> }>('GET', '/v1/datasets');
    print(!!o.json, r, () => r.items.map((d) => `${d.id}\tschema=${d.schemaId}\tprofile=${d.profileEnabled}`).join('\n') || '(no datasets)');
  });
  datasets
    .command('create <id>')
    .requiredOption('--schema <id>', 'schema of the dataset')
    .option('--name <name>', 'display name')
    .option('--profile', 'enable for profile')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { schema: string; name?: string; profile?: boolean; json?: boolean }) => {
      const d = await api().request('POST', '/v1/datasets', { id, name: o.name ?? id, schemaId: o.schema, profileEnabled: !!o.profile });
      print(!!o.json, d, () => `dataset ${id} created`);
    });

  const failed = program.command('failed').description('the failed-records store');
  failed
    .command('list')
    .option('--dataset <id>', 'only this dataset')
    .option('--source <source>', 'only this source (stream, batch:<jobId>)')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { dataset?: string; source?: string; limit: string; json?: boolean }) => {
      const q = new URLSearchParams({ limit: o.limit, status: 'failed' });
      if (o.dataset) q.set('datasetId', o.dataset);
      if (o.source) q.set('source', o.source);
      const r = await api().request<{ items: Array<{ id: string; datasetId: string; position: number; code: string; message: string; details: Array<{ path: string; message: string }> }> }>(
        'GET', `/v1/failed-records?${q}`,
      );
      print(!!o.json, r, () =>
        r.items
          .map((f) => `${f.id}\t${f.datasetId}#${f.position}\t${f.code}: ${f.message}${f.details.map((d) => `\n    ${d.path}: ${d.message}`).join('')}`)
          .join('\n') || '(no failed records)',
      );
    });
  failed
    .command('replay <ids...>')
    .description('ingest failed records again')
    .option('--json', 'print JSON')
    .action(async (ids: string[], o: { json?: boolean }) => {
      const r = await api().request<{ results: Array<{ id: string; status: string; message?: string }> }>('POST', '/v1/failed-records/replay', { ids });
      print(!!o.json, r, () => r.results.map((x) => `${x.id}\t${x.status}${x.message ? `\t${x.message}` : ''}`).join('\n'));
      if (r.results.some((x) => x.status !== 'replayed')) process.exitCode = 3;
    });

  program
    .command('jobs')
    .description('jobs')
    .command('get <id>')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const j = await api().request<JobView>('GET', `/v1/jobs/${encodeURIComponent(id)}`);
      print(!!o.json, j, () => `${j.id}\t${j.status}\t${JSON.stringify(j.state)}`);
    });

  program
    .command('sandboxes')
    .description('sandboxes')
    .command('create <id>')
    .option('--name <name>', 'display name')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { name?: string; json?: boolean }) => {
      const r = await api().request<{ apiKey: string }>('POST', '/v1/sandboxes', { id, ...(o.name ? { name: o.name } : {}) });
      print(!!o.json, r, () => `sandbox ${id} created; its admin API key (shown once): ${r.apiKey}`);
    });

  program
    .command('keys')
    .description('API keys of the sandbox')
    .command('create <name>')
    .option('--role <role>', 'admin, writer or reader', 'writer')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { role: string; json?: boolean }) => {
      const r = await api().request<{ apiKey: string }>('POST', '/v1/api-keys', { name, role: o.role });
      print(!!o.json, r, () => `key ${name} created (shown once): ${r.apiKey}`);
    });
}
