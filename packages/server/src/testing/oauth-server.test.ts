import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startOAuthServer, type OAuthServer } from './oauth-server.js';

interface TokenResponse {
  access_token?: string;
  token_type?: string;
  expires_in?: number;
  error?: string;
}

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function postToken(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(form) });
  return { status: res.status, body: (await res.json()) as TokenResponse };
}

describe('startOAuthServer', () => {
  let oauth: OAuthServer;
  before(async () => {
    oauth = await startOAuthServer({
      clients: [
        { clientId: 'poster', clientSecret: 'post-secret', auth: 'client_secret_post' },
        { clientId: 'basic', clientSecret: 'basic-secret', auth: 'client_secret_basic' },
      ],
    });
  });
  after(() => oauth.close());

  it('listens on loopback over plain http', () => {
    assert.match(oauth.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(oauth.tokenUrl.startsWith(oauth.issuer));
  });

  it('issues a token to a client_secret_post client (credentials in the form body)', async () => {
    const before = oauth.issued;
    const { status, body } = await postToken(oauth.tokenUrl, {
      grant_type: 'client_credentials',
      client_id: 'poster',
      client_secret: 'post-secret',
    });
    assert.equal(status, 200);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 600);
    assert.ok(body.access_token);
    assert.equal(oauth.issued, before + 1);
    const info = await oauth.introspect(body.access_token);
    assert.equal(info.active, true);
    assert.equal(info.client_id, 'poster');
    assert.ok(info.exp !== undefined && info.exp > Date.now() / 1000);
  });

  it('issues a token to a client_secret_basic client (HTTP Basic header)', async () => {
    const { status, body } = await postToken(
      oauth.tokenUrl,
      { grant_type: 'client_credentials' },
      { authorization: basic('basic', 'basic-secret') },
    );
    assert.equal(status, 200);
    assert.ok(body.access_token);
    assert.equal((await oauth.introspect(body.access_token)).client_id, 'basic');
  });

  it('refuses a wrong secret with 401 invalid_client', async () => {
    const before = oauth.issued;
    const post = await postToken(oauth.tokenUrl, {
      grant_type: 'client_credentials',
      client_id: 'poster',
      client_secret: 'nope',
    });
    assert.equal(post.status, 401);
    assert.equal(post.body.error, 'invalid_client');
    const viaBasic = await postToken(
      oauth.tokenUrl,
      { grant_type: 'client_credentials' },
      { authorization: basic('basic', 'nope') },
    );
    assert.equal(viaBasic.status, 401);
    assert.equal(viaBasic.body.error, 'invalid_client');
    assert.equal(oauth.issued, before);
  });

  it('refuses credentials sent with the method the client did not register', async () => {
    const before = oauth.issued;
    const { status, body } = await postToken(
      oauth.tokenUrl,
      { grant_type: 'client_credentials' },
      { authorization: basic('poster', 'post-secret') },
    );
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_client');
    assert.equal(body.access_token, undefined);
    const viaPost = await postToken(oauth.tokenUrl, {
      grant_type: 'client_credentials',
      client_id: 'basic',
      client_secret: 'basic-secret',
    });
    assert.equal(viaPost.status, 401);
    assert.equal(viaPost.body.error, 'invalid_client');
    assert.equal(oauth.issued, before);
  });

  it('accepts either method from a client registered without one', async () => {
    const oauth = await startOAuthServer();
    try {
      const viaBasic = await postToken(
        oauth.tokenUrl,
        { grant_type: 'client_credentials' },
        { authorization: basic('test-client', 'test-secret') },
      );
      const viaPost = await postToken(oauth.tokenUrl, {
        grant_type: 'client_credentials',
        client_id: 'test-client',
        client_secret: 'test-secret',
      });
      assert.deepEqual([viaBasic.status, viaPost.status], [200, 200]);
      assert.equal(oauth.issued, 2);
    } finally {
      await oauth.close();
    }
  });

  it('reports unknown tokens as inactive', async () => {
    assert.deepEqual(await oauth.introspect('not-a-token'), { active: false });
  });
});

describe('startOAuthServer token expiry', () => {
  it('a token introspects active, then inactive once its TTL has passed', async () => {
    // The provider counts whole seconds from a floored issue time, so a 1 s token issued late in a
    // second can expire within milliseconds; 2 s leaves it alive for more than 1 s, and dead by 2.1 s.
    const oauth = await startOAuthServer({ accessTokenTtlSeconds: 2 });
    try {
      const { body } = await postToken(
        oauth.tokenUrl,
        { grant_type: 'client_credentials' },
        { authorization: basic('test-client', 'test-secret') },
      );
      assert.equal(body.expires_in, 2);
      assert.ok(body.access_token);
      assert.equal((await oauth.introspect(body.access_token)).active, true);
      await new Promise((resolve) => setTimeout(resolve, 2100));
      assert.equal((await oauth.introspect(body.access_token)).active, false);
    } finally {
      await oauth.close();
    }
  });

  it('rejects a non-positive TTL', async () => {
    await assert.rejects(startOAuthServer({ accessTokenTtlSeconds: 0 }), /accessTokenTtlSeconds/);
  });
});
