/**
 * Request authentication done by the runtime for every destination: Basic, Bearer, and OAuth2
 * (client credentials with credentials in the body or a Basic header; password grant) with a
 * token cache that refreshes before expiry and once more on a 401.
 */
import { AudientError, type AuthScheme, type SettingValues } from '@audient/core';

const EXPIRY_MARGIN_MS = 30_000;
const TOKEN_TIMEOUT_MS = 5_000;

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** A cached token with its header, built once (read-only: requests copy their headers). */
interface HeldToken extends CachedToken {
  header: Readonly<Record<string, string>>;
}

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const setting = (s: SettingValues, key: string): string => String(s[key] ?? '');

/** Caches OAuth2 tokens per connection. */
export class TokenCache {
  private readonly tokens = new Map<string, HeldToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** Tokens fetched so far (metrics, tests). */
  fetched = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Forgets a connection's token (after a 401, or when its settings change). */
  invalidate(key: string): void {
    this.tokens.delete(key);
  }

  /**
   * The Authorization header when it needs no token request (static credentials, or an OAuth2
   * token cached and not about to expire); undefined otherwise. Spares the per-request await.
   */
  headerNow(key: string, auth: AuthScheme, settings: SettingValues): Readonly<Record<string, string>> | undefined {
    if (auth.kind !== 'oauth2-client-credentials' && auth.kind !== 'oauth2-password') return this.staticHeader(auth, settings);
    const cached = this.tokens.get(key);
    return cached && cached.expiresAt - EXPIRY_MARGIN_MS > this.now() ? cached.header : undefined;
  }

  /** The Authorization header for a request, or none. */
  async header(key: string, auth: AuthScheme, settings: SettingValues): Promise<Readonly<Record<string, string>>> {
    if (auth.kind !== 'oauth2-client-credentials' && auth.kind !== 'oauth2-password') return this.staticHeader(auth, settings);
    const cached = this.headerNow(key, auth, settings);
    if (cached) return cached;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(auth, settings).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const t = await p;
    const held: HeldToken = { ...t, header: { authorization: `Bearer ${t.token}` } };
    this.tokens.set(key, held);
    return held.header;
  }

  private staticHeader(auth: Exclude<AuthScheme, { kind: 'oauth2-client-credentials' | 'oauth2-password' }>, settings: SettingValues): Record<string, string> {
    switch (auth.kind) {
      case 'none':
        return {};
      case 'basic':
        return { authorization: basic(setting(settings, auth.username), setting(settings, auth.password)) };
      case 'bearer':
        return { authorization: `Bearer ${setting(settings, auth.token)}` };
      default: {
        const never: never = auth;
        return never;
      }
    }
  }

  private async fetchToken(auth: Extract<AuthScheme, { kind: 'oauth2-client-credentials' | 'oauth2-password' }>, settings: SettingValues): Promise<CachedToken> {
    const form = new URLSearchParams();
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    const clientId = setting(settings, auth.clientId);
    const clientSecret = setting(settings, auth.clientSecret);
    if (auth.kind === 'oauth2-password') {
      form.set('grant_type', 'password');
      form.set('username', setting(settings, auth.username));
      form.set('password', setting(settings, auth.password));
    } else {
      form.set('grant_type', 'client_credentials');
    }
    if (auth.scope && settings[auth.scope]) form.set('scope', setting(settings, auth.scope));
    if (auth.kind === 'oauth2-client-credentials' && auth.credentialsIn === 'basic-header') {
      headers['authorization'] = basic(encodeURIComponent(clientId), encodeURIComponent(clientSecret));
    } else {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    }
    let res: Response;
    try {
      res = await fetch(setting(settings, auth.tokenUrl), { method: 'POST', headers, body: form.toString(), signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS) });
    } catch (err) {
      throw new AudientError('UNAVAILABLE', `the OAuth2 token endpoint did not answer: ${(err as Error).message}`);
    }
    const text = await res.text();
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // reported below
    }
    if (!res.ok || typeof body.access_token !== 'string') {
      const why = typeof body.error === 'string' ? `${body.error}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''}` : `HTTP ${res.status}`;
      // 5xx and 429 from the token endpoint are transient; anything else is a configuration problem.
      throw new AudientError(res.status >= 500 || res.status === 429 ? 'UNAVAILABLE' : 'FORBIDDEN', `OAuth2 token request refused (${why})`);
    }
    this.fetched++;
    const ttl = typeof body.expires_in === 'number' ? body.expires_in * 1000 : 3_600_000;
    return { token: body.access_token, expiresAt: this.now() + ttl };
  }
}
