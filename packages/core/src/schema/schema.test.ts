import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AudientError } from '../errors.js';
import { checkEvolution, fieldAt, resolveSchema } from './resolve.js';
import type { SchemaDef } from './types.js';
import { validateRecord } from './validate.js';

const profile: SchemaDef = {
  id: 'crm',
  name: 'CRM',
  class: 'profile',
  fieldGroups: ['profile-person-details', 'profile-loyalty-details'],
  fields: { _acme: { type: 'object', properties: { crmId: { type: 'string', identity: { namespace: 'crmId', primary: true } } } } },
  version: 1,
};

describe('schemas', () => {
  it('resolves field groups and custom fields into one root', () => {
    const r = resolveSchema(profile);
    assert.equal(fieldAt(r.root, ['person', 'name', 'lastName'])?.type, 'string');
    assert.equal(fieldAt(r.root, ['loyalty', 'points'])?.type, 'number');
    assert.deepEqual(r.identityFields, [{ path: ['_acme', 'crmId'], namespace: 'crmId', primary: true }]);
  });

  it('refuses unknown field groups and malformed fields, listing every problem', () => {
    assert.throws(
      () => resolveSchema({ ...profile, fieldGroups: ['nope', 'event-web-details'], fields: { x: { type: 'strng' as never } } }),
      (e: unknown) => e instanceof AudientError && e.details.length === 3,
    );
  });

  it('allows additive evolution and refuses breaking changes with reasons', () => {
    const added: SchemaDef = { ...profile, fields: { ...profile.fields, tier: { type: 'enum', enum: ['gold'] } } };
    checkEvolution(profile, added);
    checkEvolution(added, { ...added, fields: { ...added.fields, tier: { type: 'enum', enum: ['gold', 'silver'] } } });
    const cases: Array<[SchemaDef, string]> = [
      [{ ...added, fields: { ...added.fields, tier: { type: 'enum', enum: ['silver'] } } }, 'enum'],
      [{ ...added, fields: { ...added.fields, tier: { type: 'string' } } }, 'type-change'],
      [{ ...added, fieldGroups: ['profile-person-details'] }, 'removed'],
      [{ ...added, fields: { ...added.fields, tier: { type: 'enum', enum: ['gold'], required: true } } }, 'required'],
    ];
    for (const [after, reason] of cases) {
      assert.throws(
        () => checkEvolution(added, after),
        (e: unknown) => e instanceof AudientError && e.code === 'BREAKING_SCHEMA_CHANGE' && e.details.some((d) => d.reason === reason),
      );
    }
  });

  it('validates records with paths, expectations and suggestions', () => {
    const root = resolveSchema(profile).root;
    assert.deepEqual(validateRecord(root, { person: { birthDate: '1980-02-29' } }), []);
    const d = validateRecord(root, {
      person: { birthDate: '1981-02-29', name: { lastName: ['x'] }, gendr: 'male' },
      loyalty: { points: '12', loyaltyID: ['a', 3] },
    });
    assert.deepEqual(
      d.map((x) => [x.path, x.reason]),
      [
        ['person.birthDate', 'type'],
        ['person.name.lastName', 'type'],
        ['person.gendr', 'unknown-field'],
        ['loyalty.points', 'type'],
        ['loyalty.loyaltyID[1]', 'type'],
      ],
    );
    assert.match(d[2]!.message, /did you mean person\.gender/);
    assert.equal(validateRecord(root, [1])[0]?.reason, 'type');
  });
});
