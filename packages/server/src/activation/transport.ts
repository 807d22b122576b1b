/**
 * The delivery runtime's HTTP transport: node:http / node:https requests over keep-alive agents
 * (one pool of connections per origin, at most `maxSockets` each), with a whole-exchange timeout.
 * Lighter per request than `fetch` (no WHATWG streams or Request/Response objects), which is what
 * bounds per-profile delivery, one request per profile.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** An answer: status, lower-cased headers (repeated ones joined by `, `), body text. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A transport failure; `name` is `TimeoutError` when no full answer came in time. */
export class TransportError extends Error {
  constructor(message: string, name: 'TimeoutError' | 'NetworkError') {
    super(message);
    this.name = name;
  }
}

/** Where a URL sends to, as node:http request options (parsed once per URL). */
interface Target {
  secure: boolean;
  hostname: string;
  port: string;
  path: string;
  /** `user:password` from the URL, as node:http takes it. */
  auth: string | undefined;
}

/** Most distinct URLs kept parsed (per-profile destinations send to one URL each). */
const MAX_TARGETS = 1000;

/** Keep-alive HTTP(S) client. */
export class Transport {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;
  private readonly targets = new Map<string, Target>();

  constructor(maxSockets: number) {
    this.http = new HttpAgent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
    this.https = new HttpsAgent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
  }

  /** Sends one request and reads the whole answer within `timeoutMs`. */
  send(url: string, init: { method: string; headers: Record<string, string>; body?: string | undefined; timeoutMs: number }): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      let t: Target;
      try {
        t = this.target(url);
      } catch (err) {
        reject(err);
        return;
      }
      const secure = t.secure;
      const body = init.body;
      const headers: Record<string, string | number> = { ...init.headers };
      if (body !== undefined) headers['content-length'] = Buffer.byteLength(body, 'utf8');
      let done = false;
      const finish = (err: Error | undefined, answer?: HttpAnswer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(answer!);
      };
      const req = (secure ? httpsRequest : httpRequest)(
        { hostname: t.hostname, port: t.port, path: t.path, auth: t.auth, method: init.method, headers, agent: secure ? this.https : this.http },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => finish(new TransportError(`request failed: ${e.message}`, 'NetworkError')));
          res.on('end', () => {
            const out: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
            finish(undefined, { status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks).toString('utf8') });
          });
        },
      );
      const timer = setTimeout(() => {
        finish(new TransportError(`no answer within ${init.timeoutMs} ms`, 'TimeoutError'));
        req.destroy();
      }, init.timeoutMs);
      req.on('error', (e) => finish(new TransportError(`request failed: ${e.message}`, 'NetworkError')));
      if (body !== undefined) req.end(body, 'utf8');
      else req.end();
    });
  }

  /** The parsed target of a URL; throws a TransportError for a URL it cannot send to. */
  private target(url: string): Target {
    const hit = this.targets.get(url);
    if (hit) return hit;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new TransportError(`not a valid URL: ${url}`, 'NetworkError');
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TransportError(`unsupported protocol ${u.protocol}`, 'NetworkError');
    // IPv6 literals come bracketed in URL.hostname; node:http wants them bare.
    const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const auth = u.username || u.password ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` : undefined;
    const t: Target = { secure: u.protocol === 'https:', hostname, port: u.port, path: `${u.pathname}${u.search}`, auth };
    if (this.targets.size >= MAX_TARGETS) this.targets.clear();
    this.targets.set(url, t);
    return t;
  }

  /** Closes idle connections. */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}
