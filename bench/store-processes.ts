/**
 * Several processes on one PostgreSQL database: how much of a store's ingestion rate survives
 * another process's traffic. Two stores on one scratch schema stand in for two processes (as in
 * the store's own tests); store one sends returning visitors' page views, one batch after the
 * other, each planned from the graphs it holds (one guarded statement when they are current).
 *
 * - Ours: meanwhile store two ingests new visitors (a graph each) and returning visitors'
 *   last-seen touches, alternately, at a fixed rate: what a second edge process does all day.
 * - Peer: the same, except that store two's batches write no identities (page views of its own
 *   visitors): the same load on the database and this process, nothing that changes a graph.
 *
 * The ratio is what store one keeps of its rate when the other process's batches are new visitors
 * and touches. Before 058bb3a each of them moved the sandbox's graph epoch, so store one dropped its
 * graphs and ran its next batch again with a transaction and reads.
 */
import { loadavg } from 'node:os';
import { openStore, type Store } from '@audient/storage';
import { writePlan as plan } from '@audient/storage/testing';
import { commandFor, type Family } from './lib/family.js';
import { machineInfo } from './lib/machine.js';
import { benchPgUrl, createScratchSchema, postgresUnavailable } from './lib/postgres.js';
import { fmt, type Results } from './lib/results.js';
import { sourceRevision } from './lib/revision.js';

const ID = 'store.processes.postgres';
/** Returning visitors of each store (a graph each, held after one page view). */
const VISITORS = 2_000;
/** Store two's batches per second in both phases. */
const OTHER_RATE = 200;
const PHASE_MS = 5_000;
const ROUNDS = 3;
const round = (n: number, d = 3): number => Math.round(n * 10 ** d) / 10 ** d;


let eventSeq = 0;
/** One page view of visitor `id` (an ECID) on the graph the store resolves it to, applied last as ingestion does. */
function pageView(store: Store, id: string, now: number): Promise<number[]> {
  return store.ingest('a', async (tx) => {
    const [member] = await tx.graphMembersOf([{ ns: 'ecid', id }]);
    if (!member) throw new Error(`visitor ${id} has no graph`);
    const eventId = `pv-${eventSeq++}`;
    return tx.apply(
      plan({ events: [{ datasetId: 'web', eventId, graphId: member.graphId, timestamp: now, body: { eventType: 'web.webpagedetails.pageViews' } }], changes: [{ profileId: member.graphId, type: 'event', eventId }] }),
      now,
      { last: true },
    );
  });
}

/** A new visitor: a minted ECID in a graph of its own, and its page view (one batch). */
function newVisitor(store: Store, k: number, now: number): Promise<number[]> {
  const id = `new-${k}`;
  const graphId = `g-new-${k}`;
  const eventId = `nv-${eventSeq++}`;
  return store.ingest('a', (tx) =>
    tx.apply(
      plan({
        newIdentities: [{ ns: 'ecid', id, graphId, type: 'cookie', lastSeen: now }],
        createdGraphs: [graphId],
        events: [{ datasetId: 'web', eventId, graphId, timestamp: now, body: {} }],
        changes: [{ profileId: graphId, type: 'event', eventId, identitiesAdded: [{ ns: 'ecid', id }] }],
      }),
      now,
      { last: true },
    ),
  );
}

/** A returning visitor's last-seen touch (a page view a minute after the last). */
function touch(store: Store, id: string, now: number): Promise<number[]> {
  return store.ingest('a', (tx) => tx.apply(plan({ touchedIdentities: [{ ns: 'ecid', id, lastSeen: now }] }), now, { last: true }));
}

/** Store one's page views per second while store two sends `other` batches at OTHER_RATE. */
async function phase(one: Store, two: Store, other: 'quiet' | 'identities', ms: number): Promise<{ rate: number; otherRate: number }> {
  let stop = false;
  let sent = 0;
  const otherLoop = (async () => {
    const start = performance.now();
    while (!stop) {
      const now = Date.now();
      if (other === 'quiet') await pageView(two, `two-${sent % VISITORS}`, now);
      else if (sent % 2 === 0) await newVisitor(two, eventSeq, now);
      else await touch(two, `one-${sent % VISITORS}`, now);
      sent++;
      // Paced from the start, so the rate holds whatever one batch took.
      const due = start + (sent * 1000) / OTHER_RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  const start = performance.now();
  let views = 0;
  while (performance.now() - start < ms) await pageView(one, `one-${views++ % VISITORS}`, Date.now());
  const seconds = (performance.now() - start) / 1000;
  stop = true;
  await otherLoop;
  return { rate: views / seconds, otherRate: sent / seconds };
}

/** The family: one id, PostgreSQL only. */
export const storeProcesses: Family = {
  name: 'store.processes',
  ids: [ID],
  async run(_selected, env) {
    const url = benchPgUrl();
    const why = await postgresUnavailable(url);
    if (why) {
      env.log(`  skipped: PostgreSQL at ${url} is unavailable (${why})`);
      return {};
    }
    const scratch = await createScratchSchema(url);
    const out: Results = {};
    const opened: Store[] = [];
    try {
      // Its URL selects the scratch schema (search_path), as a deployment's would.
      const one = await openStore(scratch.url);
      opened.push(one);
      const two = await openStore(scratch.url);
      opened.push(two);
      await one.createSandbox({ id: 'a', name: 'A' });
      const t0 = Date.now();
      const seed = (prefix: string) =>
        one.ingest('a', (tx) =>
          tx.apply(plan({ newIdentities: Array.from({ length: VISITORS }, (_, i) => ({ ns: 'ecid', id: `${prefix}-${i}`, graphId: `g-${prefix}-${i}`, type: 'cookie' as const, lastSeen: t0 })) }), t0),
        );
      await seed('one');
      await seed('two');
      // Each store holds its visitors' graphs from here on.
      for (let i = 0; i < VISITORS; i++) await pageView(one, `one-${i}`, t0);
      for (let i = 0; i < VISITORS; i++) await pageView(two, `two-${i}`, t0);
      const ms = env.scale < 1 ? 1_000 : PHASE_MS;
      const rounds: Array<{ ours: number; peer: number; ratio: number; otherOurs: number; otherPeer: number }> = [];
      for (let r = 0; r < ROUNDS; r++) {
        // Alternating order, so the VM's drift within a run does not favour one side.
        const first = r % 2 === 0 ? 'quiet' : 'identities';
        const a = await phase(one, two, first, ms);
        const b = await phase(one, two, first === 'quiet' ? 'identities' : 'quiet', ms);
        const [peer, ours] = first === 'quiet' ? [a, b] : [b, a];
        rounds.push({ ours: ours.rate, peer: peer.rate, ratio: ours.rate / peer.rate, otherOurs: ours.otherRate, otherPeer: peer.otherRate });
        env.log(`  round ${r + 1}/${ROUNDS}: store one ${fmt(ours.rate)} page views/s beside new visitors and touches (${fmt(ours.otherRate)}/s), ${fmt(peer.rate)} beside page views (${fmt(peer.otherRate)}/s): ${round(ours.rate / peer.rate)}`);
      }
      const median = [...rounds].sort((x, y) => x.ratio - y.ratio)[Math.floor(rounds.length / 2)]!;
      out[ID] = {
        value: Math.round(median.ours),
        unit: "page views/s of one store (process), one batch after another, while another writes new visitors and touches (higher is better)",
        goal: 'ratio >= 0.8 (another process\'s new visitors and last-seen touches leave this one\'s held graphs in use)',
        peer: { name: 'the same store and page views while the other store sends as many batches that write no identities', value: Math.round(median.peer) },
        ratio: round(median.ratio),
        command: commandFor(ID),
        at: new Date().toISOString(),
        note:
          `Two PostgreSQL stores on one scratch schema stand in for two processes (one Node process, two pools). Store one sends page views of ${VISITORS} returning visitors whose graphs it holds, ` +
          `each batch awaited before the next (the rate is round trips and their CPU, not throughput under concurrency). Store two sends ${OTHER_RATE} batches/s: ` +
          `alternately a new visitor (a graph of its own) and a last-seen touch of one of store one's visitors (ours), or page views of its own visitors (peer). ` +
          `${ROUNDS} rounds of ${ms / 1000} s phases, alternating order; the figures are the round with the median ratio.`,
        details: {
          'rounds, ours / peer page views/s (ratio)': rounds.map((x) => `${Math.round(x.ours)} / ${Math.round(x.peer)} (${round(x.ratio)})`).join(', '),
          "store two's batches/s, ours / peer (median round)": `${Math.round(median.otherOurs)} / ${Math.round(median.otherPeer)}`,
          'load average (1 min) at the end': round(loadavg()[0]!, 2),
        },
        machine: machineInfo(),
        source: sourceRevision(),
      };
    } finally {
      await Promise.all(opened.map((s) => s.close()));
      await scratch.drop();
    }
    return out;
  },
};
