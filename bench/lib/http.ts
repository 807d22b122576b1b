/**
 * HTTP pieces the benchmark processes share: the loopback address of a listening server, the
 * loopback-only guard of the load clients, and the bare `node:http` JSON server the peers run.
 */
import http from 'node:http';
import type { Server } from 'node:net';

/** `http://127.0.0.1:<port>` of a server listening on loopback TCP. */
export function loopbackUrl(server: Server): string {
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('server has no TCP address');
  return `http://127.0.0.1:${address.port}`;
}

/** Throws unless `target` is on this machine's loopback (load is never sent anywhere else). */
export function assertLoopback(target: URL): void {
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) throw new Error(`refusing non-loopback target ${target.hostname}`);
}

/** What a bare JSON server answers. */
export interface BareJsonOptions {
  /** The body of every answer to a body that parses, with its content type. */
  answer: Buffer;
  contentType: string;
  /** The body of the 400 answer to one that does not. */
  rejectBody: string;
  /** Called with each body that parsed, before the answer. */
  parsed(body: unknown): void;
  /** Called for each body that did not. */
  failed(): void;
}

/** A bare JSON server listening on loopback. */
export interface BareJsonServer {
  url: string;
  /** Answers `answer` from now on (a phase whose answers have another size). */
  setAnswer(answer: Buffer): void;
  /** Drops the open connections and stops listening. */
  close(): Promise<void>;
}

/**
 * Starts the peer of the HTTP benchmarks on a free loopback port: a `node:http` server that reads
 * each request body, `JSON.parse`s it and answers `answer` (400 with `rejectBody` when it does not
 * parse); keep-alive connections stay open 60 s.
 */
export async function startBareJsonServer(opts: BareJsonOptions): Promise<BareJsonServer> {
  const { contentType, rejectBody, parsed, failed } = opts;
  let answer = opts.answer;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        parsed(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': contentType, 'content-length': answer.length });
        res.end(answer);
      } catch {
        failed();
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(rejectBody);
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: loopbackUrl(server),
    setAnswer: (next) => {
      answer = next;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
