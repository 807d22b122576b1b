import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateSettings, type RequestDescriptor } from '@audient/core';
import { makeRecord } from '../testing/records.js';
import { exampleSettings, httpApi } from './index.js';

const ctx = { settings: exampleSettings, timeoutMs: 2000 };

/** Seed 001's example profile. */
const seedProfile = makeRecord({
  profileId: 'p-seed',
  attributes: {
    person: { birthDate: 'YYYY-MM-DD', name: { firstName: 'John', lastName: 'Doe' } },
    personalEmail: { address: 'john.doe@acme.com' },
  },
  audiences: [
    { id: '7841ba61-23c1-4bb3-a495-00d3g5fe1e93', status: 'exited', at: '2020-05-25T21:24:39Z' },
    { id: '59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae', status: 'existing', at: '2020-05-25T23:37:33Z' },
  ],
  identityMap: {
    ecid: [{ id: '14575006536349286404619648085736425115' }, { id: '66478888669296734530114754794777368480' }],
    email_lc_sha256: [{ id: '655332b5fa2aea4498bf7a290cff017cb4' }, { id: '66baf76ef9de8b42df8903f00e0e3dc0b7' }],
  },
});

const response = (status: number, body = '') => ({ status, headers: {}, body });

describe('http-api destination', () => {
  it("sends seed 001's example profile exactly in the seed's shape", () => {
    const [req, ...rest] = httpApi.toRequests([seedProfile], ctx);
    assert.equal(rest.length, 0);
    assert.ok(req);
    assert.equal(req.method, 'POST');
    assert.equal(req.url, 'https://collector.example.com/profiles?source=audient');
    assert.deepEqual(req.headers, { 'X-Tenant': 'acme', 'X-Env': 'prod', 'content-type': 'application/json' });
    assert.deepEqual(req.items, [0]);
    const expected = {
      person: { birthDate: 'YYYY-MM-DD', name: { firstName: 'John', lastName: 'Doe' } },
      personalEmail: { address: 'john.doe@acme.com' },
      segmentMembership: {
        ups: {
          '7841ba61-23c1-4bb3-a495-00d3g5fe1e93': { lastQualificationTime: '2020-05-25T21:24:39Z', status: 'exited' },
          '59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae': { lastQualificationTime: '2020-05-25T23:37:33Z', status: 'existing' },
        },
      },
      identityMap: {
        ecid: [{ id: '14575006536349286404619648085736425115' }, { id: '66478888669296734530114754794777368480' }],
        email_lc_sha256: [{ id: '655332b5fa2aea4498bf7a290cff017cb4' }, { id: '66baf76ef9de8b42df8903f00e0e3dc0b7' }],
      },
    };
    assert.equal(req.body, JSON.stringify(expected));
  });

  it('sends one request per profile, in order, and platform keys win over mapped ones', () => {
    const a = makeRecord({ profileId: 'a', attributes: { segmentMembership: 'spoof', loyalty: { tier: 'gold' } } });
    const b = makeRecord({ profileId: 'b' });
    const reqs = httpApi.toRequests([a, b], ctx);
    assert.deepEqual(
      reqs.map((r) => r.items),
      [[0], [1]],
    );
    assert.equal(reqs[0]?.body, JSON.stringify({ loyalty: { tier: 'gold' }, segmentMembership: { ups: {} }, identityMap: {} }));
  });

  it('allows zero custom headers', () => {
    const settings = { ...exampleSettings, customHeaders: '' };
    const v = validateSettings(httpApi, settings);
    assert.deepEqual(v.errors, []);
    const [req] = httpApi.toRequests([seedProfile], { settings: v.values, timeoutMs: 2000 });
    assert.deepEqual(req?.headers, { 'content-type': 'application/json' });
    const { customHeaders: _omitted, ...without } = exampleSettings;
    assert.deepEqual(validateSettings(httpApi, without).errors, []);
  });

  it('refuses malformed custom headers with an error naming the entry', () => {
    const v = validateSettings(httpApi, { ...exampleSettings, customHeaders: 'a:b,c' });
    assert.equal(v.errors.length, 1);
    assert.equal(v.errors[0]?.path, 'settings.customHeaders');
    assert.match(v.errors[0]?.message ?? '', /entry 2 \("c"\) is not name:value/);
    const bad = validateSettings(httpApi, { ...exampleSettings, customHeaders: 'X Bad:1' });
    assert.match(bad.errors[0]?.message ?? '', /entry 1: "X Bad" is not a valid header name/);
  });

  it('refuses headers Audient sets itself, and duplicates', () => {
    const v = validateSettings(httpApi, { ...exampleSettings, customHeaders: 'Content-Type:text/plain,X-A:1,x-a:2' });
    assert.deepEqual(
      v.errors.map((e) => e.message),
      ['Content-Type is set by Audient and cannot be overridden', 'x-a is given twice'],
    );
    const auth = validateSettings(httpApi, { ...exampleSettings, customHeaders: 'Authorization:Bearer x' });
    assert.match(auth.errors[0]?.message ?? '', /Authorization is set by Audient/);
  });

  it('keeps the query parameters of the endpoint', () => {
    const settings = { ...exampleSettings, httpEndpoint: 'https://h.example/in?a=1&b=two%20words' };
    assert.equal(httpApi.toRequests([seedProfile], { settings, timeoutMs: 2000 })[0]?.url, 'https://h.example/in?a=1&b=two%20words');
  });

  it('classifies by status: 2xx ok, 429/5xx retried, other 4xx dropped, 401 retried after token refresh', () => {
    const req: RequestDescriptor = { method: 'POST', url: 'u', headers: {}, items: [0] };
    const classify = httpApi.classify;
    assert.ok(classify);
    assert.deepEqual(classify(response(200), req, [seedProfile]), [{ ok: true }]);
    assert.deepEqual(classify(response(204), req, [seedProfile]), [{ ok: true }]);
    assert.deepEqual(classify(response(400, '{"error":"bad field person"}'), req, [seedProfile]), [
      { ok: false, retry: false, message: 'HTTP 400: {"error":"bad field person"}' },
    ]);
    assert.deepEqual(classify(response(429), req, [seedProfile]), [{ ok: false, retry: true, message: 'HTTP 429' }]);
    assert.deepEqual(classify(response(500, 'oops'), req, [seedProfile]), [{ ok: false, retry: true, message: 'HTTP 500: oops' }]);
    assert.deepEqual(classify(response(401), req, [seedProfile]), [{ ok: false, retry: true, message: 'HTTP 401' }]);
    assert.deepEqual(classify(response(403), req, [seedProfile]), [{ ok: false, retry: false, message: 'HTTP 403' }]);
  });

  it('declares OAuth2 client credentials against the auth endpoint', () => {
    assert.deepEqual(httpApi.auth, { kind: 'oauth2-client-credentials', tokenUrl: 'authEndpoint', clientId: 'clientId', clientSecret: 'clientSecret' });
    const v = validateSettings(httpApi, { ...exampleSettings, clientSecret: undefined });
    assert.deepEqual(
      v.errors.map((e) => e.path),
      ['settings.clientSecret'],
    );
  });
});
