/** A small HTTP client of the Audient API for the CLI: timeouts, error bodies turned into messages. */
import { AudientError, type ErrorCode } from '@audient/core';

/** Where and how to reach the API. */
export interface ClientOptions {
  url: string;
  apiKey: string;
  timeoutMs?: number;
}

/** Error raised when the API answers with an error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    const e = (body as { error?: { code?: string; message?: string; details?: Array<{ path: string; message: string }> } })?.error;
    const details = e?.details?.map((d) => `\n  - ${d.path || '(record)'}: ${d.message}`).join('') ?? '';
    super(`${e?.code ?? `HTTP ${status}`}: ${e?.message ?? JSON.stringify(body)}${details}`);
  }
}

/** The API client. */
export class Client {
  constructor(private readonly opts: ClientOptions) {}

  /** Calls the API; throws ApiError on an error status and AudientError when unreachable. */
  async request<T>(method: string, path: string, body?: unknown, init: { headers?: Record<string, string>; raw?: RequestInit['body']; timeoutMs?: number } = {}): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.apiKey}`, ...init.headers };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path, this.opts.url), {
        method,
        headers,
        body: init.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
        signal: AbortSignal.timeout(init.timeoutMs ?? this.opts.timeoutMs ?? 30_000),
        ...(init.raw ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      const code: ErrorCode = 'UNAVAILABLE';
      throw new AudientError(code, `cannot reach Audient at ${this.opts.url}: ${(err as Error).message}; is it started (audient start)?`);
    }
    const text = await res.text();
    const parsed: unknown = text ? safeJson(text) : undefined;
    if (!res.ok && res.status !== 207) throw new ApiError(res.status, parsed ?? text);
    return parsed as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
