/** Checks every registered destination's declaration and the basics of its pure functions. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isSecretField, validateSettings, type AuthScheme, type DestinationDefinition, type SettingValues } from '@audient/core';
import { destinationList, destinations, getDestination, listDestinations } from './registry.js';
import { makeRecord } from './testing/records.js';

const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const SECRET_LOOKING = /secret|password|key|token/i;

/** The setting keys an auth scheme names. */
function authKeys(auth: AuthScheme): string[] {
  switch (auth.kind) {
    case 'none':
      return [];
    case 'basic':
      return [auth.username, auth.password];
    case 'bearer':
      return [auth.token];
    case 'oauth2-client-credentials':
      return [auth.clientId, auth.clientSecret];
    case 'oauth2-password':
      return [auth.clientId, auth.clientSecret, auth.username, auth.password];
    default: {
      const never: never = auth;
      return never;
    }
  }
}

/** The module of a destination's folder: `src/<id>/index.ts`. */
async function folderModule(id: string): Promise<Record<string, unknown>> {
  return (await import(`./${id}/index.js`)) as Record<string, unknown>;
}

/** The documented example settings a destination module exports. */
async function exampleOf(d: DestinationDefinition): Promise<SettingValues> {
  const example = (await folderModule(d.id))['exampleSettings'];
  assert.ok(example && typeof example === 'object', `${d.id} exports exampleSettings`);
  return example as SettingValues;
}

/** Records carrying every identity the destination may need. */
function sampleRecords(d: DestinationDefinition) {
  const targets = d.identities.targets.length ? d.identities.targets : ['ecid'];
  return Array.from({ length: 5 }, (_, i) =>
    makeRecord({
      profileId: `sample-${i}`,
      attributes: d.allowsAttributes ? { first_name: `Name${i}` } : {},
      identities: Object.fromEntries(targets.map((t) => [t, [`${t}-value-${i}`]])),
      identityMap: { ecid: [{ id: `ecid-${i}`, primary: true }] },
      audiences: [
        { id: 'aud-a', name: 'Audience A', status: 'realized' },
        { id: 'aud-b', name: 'Audience B', status: i % 2 ? 'existing' : 'exited' },
      ],
      idempotencyKey: `df:sample-${i}:1`,
    }),
  );
}

describe('destination registry', () => {
  it('has unique ids, and finds and lists them all', () => {
    const ids = destinationList.map((d) => d.id);
    assert.equal(new Set(ids).size, ids.length, 'unique ids');
    assert.equal(destinations.size, ids.length);
    for (const id of ids) assert.equal(getDestination(id), destinations.get(id));
    assert.equal(getDestination('nope'), undefined);
    assert.deepEqual(
      listDestinations().map((s) => s.id),
      [...ids].sort(),
    );
    for (const s of listDestinations()) assert.equal('toRequests' in s, false, 'summaries carry no functions');
  });

  for (const d of destinationList) {
    describe(`declaration of ${d.id}`, () => {
      it('id is a kebab slug that names its folder, whose module exports this definition', async () => {
        assert.match(d.id, SLUG);
        assert.ok(existsSync(fileURLToPath(new URL(`./${d.id}/index.ts`, import.meta.url))), `src/${d.id}/index.ts exists`);
        const mod = await folderModule(d.id);
        assert.ok(Object.values(mod).includes(d), `src/${d.id}/index.ts exports the registered definition`);
        assert.ok(d.name.trim() && d.description.trim());
      });

      it('settings: unique keys, labels, secret-looking keys secret, enums with options', () => {
        const keys = d.settings.map((f) => f.key);
        assert.equal(new Set(keys).size, keys.length, 'unique setting keys');
        for (const f of d.settings) {
          assert.ok(f.label.trim(), `${f.key} has a label`);
          if (SECRET_LOOKING.test(f.key)) assert.ok(isSecretField(f), `${f.key} looks secret: mark it secret or type password`);
          if (f.type === 'enum') assert.ok(f.options?.length, `${f.key} lists its options`);
          if (f.pattern !== undefined) assert.doesNotThrow(() => new RegExp(f.pattern ?? ''), `${f.key} pattern compiles`);
        }
      });

      it('auth names existing settings, secrets for secrets', () => {
        const byKey = new Map(d.settings.map((f) => [f.key, f]));
        for (const key of authKeys(d.auth)) assert.ok(byKey.has(key), `auth names setting ${key}`);
        if (d.auth.kind === 'oauth2-client-credentials' || d.auth.kind === 'oauth2-password') {
          assert.equal(byKey.get(d.auth.tokenUrl)?.type, 'url', 'tokenUrl names a url setting');
          assert.ok(isSecretField(byKey.get(d.auth.clientSecret)!), 'client secret is secret');
        }
        if (d.auth.kind === 'basic' || d.auth.kind === 'oauth2-password') assert.ok(isSecretField(byKey.get(d.auth.password)!), 'password is secret');
        if (d.auth.kind === 'bearer') assert.ok(isSecretField(byKey.get(d.auth.token)!), 'token is secret');
      });

      it('identity requirements are consistent', () => {
        const { targets, required = [], oneOf = [] } = d.identities;
        assert.equal(new Set(targets).size, targets.length, 'unique targets');
        if (targets.length) {
          for (const r of [...required, ...oneOf]) assert.ok(targets.includes(r), `${r} is one of the targets`);
        }
        assert.notEqual(oneOf.length, 1, 'oneOf with a single entry should be required');
      });

      it('delivery and timeout are sane', () => {
        if (d.delivery.kind === 'batch') {
          assert.ok(Number.isInteger(d.delivery.maxSize) && d.delivery.maxSize >= 1, 'maxSize ≥ 1');
          assert.ok(d.delivery.maxAgeMs >= 0, 'maxAgeMs ≥ 0');
        }
        assert.ok(d.timeoutMs > 0 && d.timeoutMs <= 30_000, 'timeoutMs in (0, 30000]');
        assert.ok(d.marketingActions.length > 0, 'declares its marketing actions');
      });

      it('validateSettings accepts the documented example and refuses a missing required setting', async () => {
        const example = await exampleOf(d);
        assert.deepEqual(validateSettings(d, example).errors, []);
        for (const f of d.settings.filter((s) => s.required && s.default === undefined)) {
          const { [f.key]: _dropped, ...missing } = example;
          const errors = validateSettings(d, missing).errors;
          assert.ok(
            errors.some((e) => e.path === `settings.${f.key}` && e.reason === 'required'),
            `missing ${f.key} is refused`,
          );
        }
        assert.ok(d.settings.some((s) => s.required), 'at least one required setting');
      });

      it('toRequests covers every record exactly once, with well-formed requests', async () => {
        const { values } = validateSettings(d, await exampleOf(d));
        const records = sampleRecords(d);
        if (d.category === 'edge') {
          // Edge destinations are pulled by the page (profile lookup): nothing is ever pushed.
          assert.deepEqual(d.toRequests(records, { settings: values, timeoutMs: d.timeoutMs }), []);
          return;
        }
        for (const batch of [records, records.slice(0, 1)]) {
          const requests = d.toRequests(batch, { settings: values, timeoutMs: d.timeoutMs });
          const items = requests.flatMap((r) => r.items).sort((a, b) => a - b);
          assert.deepEqual(items, batch.map((_, i) => i), 'each record in exactly one request');
          for (const r of requests) {
            assert.ok(r.items.length > 0, 'no empty request');
            assert.doesNotThrow(() => new URL(r.url), 'absolute URL');
            for (const name of Object.keys(r.headers)) assert.notEqual(name.toLowerCase(), 'authorization', 'the runtime adds Authorization');
            if (r.body !== undefined) assert.doesNotThrow(() => JSON.parse(r.body ?? ''), 'JSON body');
            if (d.delivery.kind === 'batch') assert.ok(r.items.length <= d.delivery.maxSize);
            if (d.delivery.kind === 'per-profile') assert.equal(r.items.length, 1);
          }
          if (d.classify) {
            const r = requests[0]!;
            assert.equal(d.classify({ status: 200, headers: {}, body: '' }, r, batch).length, r.items.length, 'one outcome per item');
            assert.ok(d.classify({ status: 503, headers: {}, body: '' }, r, batch).every((o) => !o.ok && o.retry), '503 retried');
            assert.ok(d.classify({ status: 400, headers: {}, body: '' }, r, batch).every((o) => !o.ok && !o.retry), '400 not retried');
          }
        }
      });
    });
  }
});
