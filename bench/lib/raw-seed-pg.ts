/**
 * The PostgreSQL counterpart of raw-seed.ts: writes the rows Audient's PostgreSQL store keeps for
 * a profile (two identities of one new graph, the CRM fragment) and for an event straight into a
 * store the real code created and migrated, many rows per statement (`unnest` of arrays, as the
 * store's own ingestion writes them). Row shapes follow the store: namespace keys in lower case,
 * identity types from the namespace (ECID: cookie, email: person), attributes without identityMap.
 */
import { randomUUID } from 'node:crypto';
import { withClient } from '@audient/storage/testing';
import { profileIdentity, profileRecord } from './workload.js';

/** Seeds profiles and events into a migrated Audient PostgreSQL schema (selected by the URL). */
export class RawPgSeeder {
  /** Graph id of each seeded profile, by profile number. */
  private readonly graphs: string[] = [];

  constructor(
    private readonly url: string,
    private readonly sandboxId: string,
  ) {}

  /** Profiles `0`..`count` (exclusive), `batch` per statement set. Returns the elapsed ms. */
  async profiles(opts: { count: number; batch: number; seed: number; datasetId: string }): Promise<number> {
    const t = performance.now();
    await withClient(this.url, async (c) => {
      for (let start = 0; start < opts.count; start += opts.batch) {
        const now = Date.now();
        const ids: { ns: string[]; id: string[]; graph: string[]; type: string[] } = { ns: [], id: [], graph: [], type: [] };
        const frags: { id: string[]; graph: string[]; attributes: string[] } = { id: [], graph: [], attributes: [] };
        for (let i = start; i < Math.min(opts.count, start + opts.batch); i++) {
          const { identityMap: _ids, ...attributes } = profileRecord(i, opts.seed);
          const { ecid, email } = profileIdentity(i, opts.seed);
          const graphId = randomUUID();
          this.graphs[i] = graphId;
          ids.ns.push('email', 'ecid');
          ids.id.push(email, ecid);
          ids.graph.push(graphId, graphId);
          ids.type.push('person', 'cookie');
          frags.id.push(email);
          frags.graph.push(graphId);
          frags.attributes.push(JSON.stringify(attributes));
        }
        await c.query('BEGIN');
        await c.query(
          `INSERT INTO identities (sandbox_id, ns, id, graph_id, type, last_seen)
           SELECT $1, ns, id, graph_id, type, $6 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(ns, id, graph_id, type)`,
          [this.sandboxId, ids.ns, ids.id, ids.graph, ids.type, now],
        );
        await c.query(
          `INSERT INTO fragments (sandbox_id, dataset_id, ns, id, graph_id, attributes, ts)
           SELECT $1, $2, 'email', id, graph_id, attributes, $6 FROM unnest($3::text[], $4::text[], $5::jsonb[]) AS u(id, graph_id, attributes)`,
          [this.sandboxId, opts.datasetId, frags.id, frags.graph, frags.attributes, now],
        );
        await c.query('COMMIT');
      }
      await c.query('ANALYZE identities; ANALYZE fragments');
    });
    return performance.now() - t;
  }

  /** Events on the profiles `profileOf(i)` picks (seeded by profiles(); joined by that profile's ECID). Returns the elapsed ms. */
  async events(opts: { events: ReadonlyArray<Record<string, unknown>>; profileOf: (i: number) => number; batch: number; seed: number; datasetId: string }): Promise<number> {
    const t = performance.now();
    await withClient(this.url, async (c) => {
      for (let start = 0; start < opts.events.length; start += opts.batch) {
        const rows: { id: string[]; graph: string[]; ts: number[]; body: string[] } = { id: [], graph: [], ts: [], body: [] };
        for (let i = start; i < Math.min(opts.events.length, start + opts.batch); i++) {
          const p = opts.profileOf(i);
          const graphId = this.graphs[p];
          if (graphId === undefined) throw new Error(`profile ${p} was not seeded`);
          const ecid = profileIdentity(p, opts.seed).ecid;
          const body: Record<string, unknown> = { ...opts.events[i]!, identityMap: { ECID: [{ id: ecid, primary: true }] } };
          rows.id.push(body['_id'] as string);
          rows.graph.push(graphId);
          rows.ts.push(Date.parse(body['timestamp'] as string));
          rows.body.push(JSON.stringify(body));
        }
        await c.query(
          `INSERT INTO events (sandbox_id, dataset_id, event_id, graph_id, ts, body)
           SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::int8[], $6::jsonb[])`,
          [this.sandboxId, opts.datasetId, rows.id, rows.graph, rows.ts, rows.body],
        );
      }
      await c.query('ANALYZE events');
    });
    return performance.now() - t;
  }
}
