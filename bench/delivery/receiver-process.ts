/**
 * The delivery benchmarks' destination stand-in, in its own process (so the Audient process keeps
 * its core): a bare node:http server on 127.0.0.1.
 *
 * - `POST /partner…`: a partner-push message; counts its users and answers the destination's
 *   success shape (`{"results":[{"uid","status":"accepted"}…]}`).
 * - `POST /token`: an OAuth2 client-credentials token endpoint (any client is accepted).
 * - `POST /profiles…`: an http-api profile document; records its arrival time (epoch ms, from
 *   `performance.timeOrigin + performance.now()`, the clock the sender uses too) under the
 *   profile's first email identity (first arrival per key kept), answers 200 `{"ok":true}`.
 * - `GET /__stats` (`?reset=1` to start over): counts, peak open connections, arrivals.
 *
 * Concurrency is seen here as the peak number of open connections: a handler that answers
 * within the turn its request arrived in (this one) never has two requests open at once in its
 * own event loop, whatever the sender does, so "requests in flight at the receiver" stays 1 and
 * says nothing about the sender. An HTTP/1.1 client keeps one request per connection, so the open
 * connections bound what the sender had in flight (the sender reports its own peak too).
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runChild, toParent, type Message } from '../lib/child.js';

/** Process → parent. */
export interface ReceiverReady extends Message {
  type: 'ready';
  url: string;
}

/** What `GET /__stats` answers. */
export interface ReceiverStats {
  requests: number;
  users: number;
  tokens: number;
  /** Peak open connections since the last reset (the sender's concurrency, bounded above). */
  maxConnections: number;
  /** Profile key → first arrival, epoch ms (http-api profiles only). */
  arrivals: Record<string, number>;
  /** Requests to /profiles. */
  profileRequests: number;
  /** Requests that could not be read. */
  bad: number;
}

const clock = (): number => performance.timeOrigin + performance.now();

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The first id of the `email` namespace (or of any namespace) of an identity map. */
function profileKey(body: { identityMap?: Record<string, Array<{ id?: unknown }>> }): string | undefined {
  const map = body.identityMap ?? {};
  const first = map['email']?.[0]?.id ?? Object.values(map)[0]?.[0]?.id;
  return typeof first === 'string' ? first : undefined;
}

async function main(): Promise<void> {
  let open = 0;
  const fresh = (): ReceiverStats => ({ requests: 0, users: 0, tokens: 0, maxConnections: open, arrivals: {}, profileRequests: 0, bad: 0 });
  let stats: ReceiverStats = fresh();
  const server = createServer((req, res) => {
    const at = clock();
    const url = req.url ?? '/';
    const answer = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    };
    readBody(req)
      .then((text) => {
        if (req.method === 'GET' && url.startsWith('/__stats')) {
          const out = JSON.stringify(stats);
          if (url.includes('reset=1')) stats = fresh();
          answer(200, out);
          return;
        }
        stats.requests++;
        if (url.startsWith('/token')) {
          stats.tokens++;
          answer(200, JSON.stringify({ access_token: `bench-${stats.tokens}`, token_type: 'Bearer', expires_in: 3600 }));
          return;
        }
        if (url.startsWith('/partner')) {
          const msg = JSON.parse(text) as { users?: Array<{ uid: string }> };
          const users = msg.users ?? [];
          stats.users += users.length;
          answer(200, JSON.stringify({ results: users.map((u) => ({ uid: u.uid, status: 'accepted' })) }));
          return;
        }
        if (url.startsWith('/profiles')) {
          stats.profileRequests++;
          const key = profileKey(JSON.parse(text) as Parameters<typeof profileKey>[0]);
          if (key !== undefined && !(key in stats.arrivals)) stats.arrivals[key] = at;
          if (key === undefined) stats.bad++;
          answer(200, '{"ok":true}');
          return;
        }
        answer(404, '{"error":"not found"}');
      })
      .catch((err: unknown) => {
        stats.bad++;
        answer(400, JSON.stringify({ error: String(err) }));
      });
  });
  server.on('connection', (socket) => {
    open++;
    if (open > stats.maxConnections) stats.maxConnections = open;
    socket.on('close', () => open--);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  toParent({ type: 'ready', url: `http://127.0.0.1:${port}` } satisfies ReceiverReady);
  // Ends with the parent (disconnect), or after 30 minutes at most.
  const stop = (): void => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('disconnect', stop);
  setTimeout(stop, 30 * 60_000).unref();
}

runChild(main);
