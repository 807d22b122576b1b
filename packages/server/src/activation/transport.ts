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

/** Keep-alive HTTP(S) client. */
export class Transport {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  constructor(maxSockets: number) {
    this.http = new HttpAgent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
    this.https = new HttpsAgent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
  }

  /** Sends one request and reads the whole answer within `timeoutMs`. */
  send(url: string, init: { method: string; headers: Record<string, string>; body?: string | undefined; timeoutMs: number }): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        reject(new TransportError(`not a valid URL: ${url}`, 'NetworkError'));
        return;
      }
      const secure = u.protocol === 'https:';
      if (!secure && u.protocol !== 'http:') {
        reject(new TransportError(`unsupported protocol ${u.protocol}`, 'NetworkError'));
        return;
      }
      const body = init.body !== undefined ? Buffer.from(init.body, 'utf8') : undefined;
      const headers: Record<string, string | number> = { ...init.headers };
      if (body) headers['content-length'] = body.length;
      let done = false;
      const finish = (err: Error | undefined, answer?: HttpAnswer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(answer!);
      };
      const req = (secure ? httpsRequest : httpRequest)(
        u,
        { method: init.method, headers, agent: secure ? this.https : this.http },
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
      req.end(body);
    });
  }

  /** Closes idle connections. */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}
