/**
 * Test helper: a real OAuth 2.0 authorisation server (the `oidc-provider` package) on loopback,
 * issuing client-credentials access tokens, so the destination runtime's token fetching, caching
 * and refresh-on-401 are tested against a standards-conforming server rather than a stub that
 * agrees with whatever our client happens to send.
 */
import type { Adapter, AdapterPayload, Configuration } from 'oidc-provider';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A client allowed to use the client-credentials grant. */
export interface OAuthTestClient {
  clientId: string;
  clientSecret: string;
  /**
   * How the client must authenticate at the token endpoint; sending the secret the other way is
   * refused with `invalid_client`. When omitted, either way is accepted.
   */
  auth?: 'client_secret_post' | 'client_secret_basic';
}

/** Options for {@link startOAuthServer}. */
export interface OAuthServerOptions {
  /** Registered clients; defaults to one `client_secret_basic` client `test-client` / `test-secret`. */
  clients?: OAuthTestClient[];
  /** Lifetime of issued access tokens; short values (1–2 s) make expiry testable. Default 600. */
  accessTokenTtlSeconds?: number;
}

/** What the authorisation server says about a presented token (RFC 7662, the fields we use). */
export interface Introspection {
  active: boolean;
  client_id?: string;
  exp?: number;
}

/** A running authorisation server. */
export interface OAuthServer {
  /** Issuer identifier, `http://127.0.0.1:<port>`. */
  issuer: string;
  /** Token endpoint: POST `grant_type=client_credentials` here. */
  tokenUrl: string;
  /** Asks the server's introspection endpoint whether `token` is a live access token. */
  introspect(token: string): Promise<Introspection>;
  /** Access tokens issued so far. */
  readonly issued: number;
  close(): Promise<void>;
}

/** The audience (RFC 8707 resource indicator) every token is issued for. */
export const TEST_RESOURCE = 'urn:audient:test-receiver';

const DEFAULT_CLIENTS: OAuthTestClient[] = [{ clientId: 'test-client', clientSecret: 'test-secret' }];

type OidcProviderModule = typeof import('oidc-provider');
type TokenTtl = (ctx: unknown, token: unknown, client: unknown) => number;

let providerModule: Promise<OidcProviderModule> | undefined;

/**
 * Loads oidc-provider once. On import it warns that Node 20 is not a supported runtime (it asks
 * for 22+); the client-credentials and introspection paths we use work on 20, so that one notice
 * is filtered to keep test output clean. Other warnings pass through.
 */
function loadProvider(): Promise<OidcProviderModule> {
  providerModule ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
      warn(...args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
    }
  })();
  return providerModule;
}

interface Stored {
  payload: AdapterPayload;
  expiresAt: number | undefined;
}

/**
 * A per-server in-memory store. oidc-provider ships one too, but it prints a production warning
 * on every start and is shared by all providers in the process; ours is private to one server.
 */
function memoryAdapterFactory(): (name: string) => Adapter {
  const rows = new Map<string, Stored>();
  const byGrant = new Map<string, Set<string>>();
  const read = (key: string): AdapterPayload | undefined => {
    const row = rows.get(key);
    if (!row) return undefined;
    if (row.expiresAt !== undefined && row.expiresAt <= Date.now()) {
      rows.delete(key);
      return undefined;
    }
    return row.payload;
  };
  return (name) => {
    const key = (id: string): string => `${name}:${id}`;
    const findBy = (field: 'userCode' | 'uid', value: string): AdapterPayload | undefined => {
      for (const [k, row] of rows) {
        if (k.startsWith(`${name}:`) && row.payload[field] === value) return read(k);
      }
      return undefined;
    };
    return {
      async upsert(id, payload, expiresIn) {
        rows.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
        if (payload.grantId) {
          const ids = byGrant.get(payload.grantId) ?? new Set<string>();
          ids.add(key(id));
          byGrant.set(payload.grantId, ids);
        }
      },
      async find(id) {
        return read(key(id));
      },
      async findByUserCode(userCode) {
        return findBy('userCode', userCode);
      },
      async findByUid(uid) {
        return findBy('uid', uid);
      },
      async consume(id) {
        const row = rows.get(key(id));
        if (row) row.payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        rows.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        for (const k of byGrant.get(grantId) ?? []) rows.delete(k);
        byGrant.delete(grantId);
      },
    };
  };
}

let jwk: Record<string, unknown> | undefined;

/**
 * An RSA signing key as a private JWK, so the provider does not fall back to its published dev
 * keys. Opaque tokens are never signed with it; it is made once per process because RSA key
 * generation costs about half a second.
 */
function signingJwk(): Record<string, unknown> {
  if (!jwk) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
  }
  return jwk;
}

/**
 * Starts an authorisation server on 127.0.0.1 (random port) issuing opaque client-credentials
 * access tokens for {@link TEST_RESOURCE}. Opaque rather than JWT so that validity is decided by
 * the server (introspection), which is what lets tests observe expiry and revocation.
 */
export async function startOAuthServer(opts: OAuthServerOptions = {}): Promise<OAuthServer> {
  const { default: Provider, errors } = await loadProvider();
  const clients = opts.clients ?? DEFAULT_CLIENTS;
  const ttl = opts.accessTokenTtlSeconds ?? 600;
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new Error('accessTokenTtlSeconds must be a positive integer');

  // The introspection endpoint needs an authenticated caller: the resource server's own client.
  const introspector = { id: 'test-resource-server', secret: randomBytes(16).toString('hex') };

  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const tokenTtl: TokenTtl = () => ttl;
  const configuration: Configuration = {
    adapter: memoryAdapterFactory(),
    jwks: { keys: [signingJwk()] },
    clients: [
      ...clients.map((c) => ({
        client_id: c.clientId,
        client_secret: c.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: c.auth ?? 'client_secret_basic',
      })),
      {
        client_id: introspector.id,
        client_secret: introspector.secret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    features: {
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only the resource server may ask, as a real deployment would configure it.
        allowedPolicy: (_ctx, client) => client.clientId === introspector.id,
      },
      // No browser flows here; the dev login pages would also print a warning.
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => TEST_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== TEST_RESOURCE) throw new errors.InvalidTarget();
          return { scope: 'ingest', audience: TEST_RESOURCE, accessTokenFormat: 'opaque', accessTokenTTL: ttl };
        },
      },
    },
    ttl: { ClientCredentials: tokenTtl, AccessToken: tokenTtl },
    // No browser callers: refuse CORS instead of running the default policy (which also logs).
    clientBasedCORS: () => false,
  };
  const provider = new Provider(issuer, configuration);

  // oidc-provider treats client_secret_basic and client_secret_post as interchangeable. A client
  // registered with an explicit `auth` is held to it, so a runtime that ignores a destination's
  // configured auth style fails here as it would against a strict provider.
  const strictAuth = new Map(clients.flatMap((c) => (c.auth ? [[c.clientId, c.auth] as const] : [])));
  let issued = 0;
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200) return;
    const clientId = ctx.oidc.client?.clientId;
    const expected = clientId === undefined ? undefined : strictAuth.get(clientId);
    const used = typeof ctx.oidc.body?.client_secret === 'string' ? 'client_secret_post' : 'client_secret_basic';
    if (expected !== undefined && used !== expected) {
      await ctx.oidc.entities.ClientCredentials?.destroy();
      ctx.status = 401;
      ctx.body = { error: 'invalid_client', error_description: `client must authenticate with ${expected}` };
      return;
    }
    issued += 1;
  });
  // Errors already become OAuth error responses (a 500 for a bug); Koa need not print them too.
  provider.silent = true;
  handler = provider.callback();

  const tokenUrl = new URL(provider.pathFor('token'), issuer).href;
  const introspectionUrl = new URL(provider.pathFor('introspection'), issuer).href;
  const basic = `Basic ${Buffer.from(`${introspector.id}:${introspector.secret}`).toString('base64')}`;

  return {
    issuer,
    tokenUrl,
    get issued() {
      return issued;
    },
    async introspect(token) {
      const res = await fetch(introspectionUrl, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }),
      });
      if (!res.ok) throw new Error(`introspection failed: HTTP ${res.status}`);
      const body = (await res.json()) as Introspection;
      return {
        active: body.active === true,
        ...(typeof body.client_id === 'string' ? { client_id: body.client_id } : {}),
        ...(typeof body.exp === 'number' ? { exp: body.exp } : {}),
      };
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
