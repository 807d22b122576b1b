/**
 * Turns a schema (class + field groups + custom fields) into one root object field, checks that
 * definitions are well formed, and refuses breaking changes between versions.
 */
import { AudientError, type ErrorDetail } from '../errors.js';
import { EVENT_BASE, PROFILE_BASE, findFieldGroup } from './field-groups.js';
import type { FieldDef, FieldType, SchemaClass, SchemaDef } from './types.js';

const FIELD_TYPES: readonly FieldType[] = [
  'string', 'integer', 'number', 'boolean', 'date', 'date-time', 'enum', 'object', 'array', 'map',
];
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A schema resolved to one root object field, with its identity fields listed. */
export interface ResolvedSchema {
  id: string;
  class: SchemaClass;
  version: number;
  root: FieldDef;
  /** Every field that carries an identity, by dot path. */
  identityFields: Array<{ path: string[]; namespace: string; primary: boolean }>;
}

function checkField(def: unknown, path: string, details: ErrorDetail[]): void {
  const push = (reason: string, message: string): void => {
    details.push({ path, reason, message });
  };
  if (typeof def !== 'object' || def === null || Array.isArray(def)) {
    push('definition', 'a field definition must be an object with a type');
    return;
  }
  const d = def as FieldDef;
  if (!FIELD_TYPES.includes(d.type)) {
    push('definition', `unknown field type ${JSON.stringify(d.type)}; expected one of ${FIELD_TYPES.join(', ')}`);
    return;
  }
  if (d.type === 'object') {
    if (!d.properties || typeof d.properties !== 'object') push('definition', 'an object field needs properties');
    else {
      for (const [name, child] of Object.entries(d.properties)) {
        if (!NAME_RE.test(name)) push('definition', `field name ${JSON.stringify(name)} must be letters, digits and _`);
        checkField(child, path ? `${path}.${name}` : name, details);
      }
    }
  }
  if (d.type === 'array') {
    if (!d.items) push('definition', 'an array field needs items');
    else checkField(d.items, `${path}[]`, details);
  }
  if (d.type === 'map') {
    if (!d.values) push('definition', 'a map field needs values');
    else checkField(d.values, `${path}{}`, details);
  }
  if (d.type === 'enum' && (!Array.isArray(d.enum) || d.enum.length === 0 || d.enum.some((v) => typeof v !== 'string'))) {
    push('definition', 'an enum field needs a non-empty list of string values');
  }
  if (d.pattern !== undefined) {
    try {
      new RegExp(d.pattern);
    } catch {
      push('definition', `pattern ${JSON.stringify(d.pattern)} is not a valid regular expression`);
    }
  }
  if (d.identity !== undefined && d.type !== 'string') push('definition', 'only string fields can carry an identity');
}

function mergeFields(
  into: Record<string, FieldDef>,
  from: Record<string, FieldDef>,
  path: string,
  details: ErrorDetail[],
): void {
  for (const [name, def] of Object.entries(from)) {
    const at = path ? `${path}.${name}` : name;
    const existing = into[name];
    if (!existing) {
      into[name] = def;
    } else if (existing.type === 'object' && def.type === 'object') {
      const props = { ...(existing.properties ?? {}) };
      mergeFields(props, def.properties ?? {}, at, details);
      into[name] = { ...existing, ...def, properties: props };
    } else if (existing.type !== def.type) {
      details.push({
        path: at,
        reason: 'conflict',
        message: `field is ${existing.type} in a field group and cannot be redefined as ${def.type}`,
      });
    } else {
      into[name] = { ...existing, ...def };
    }
  }
}

function collectIdentities(def: FieldDef, path: string[], out: ResolvedSchema['identityFields']): void {
  if (def.identity) out.push({ path, namespace: def.identity.namespace, primary: def.identity.primary === true });
  if (def.type === 'object' && def.properties) {
    for (const [name, child] of Object.entries(def.properties)) collectIdentities(child, [...path, name], out);
  }
}

/** Resolves a schema to one root field; throws VALIDATION_FAILED listing every problem. */
export function resolveSchema(schema: SchemaDef): ResolvedSchema {
  const details: ErrorDetail[] = [];
  const fields: Record<string, FieldDef> = { ...(schema.class === 'profile' ? PROFILE_BASE : EVENT_BASE) };
  for (const groupId of schema.fieldGroups) {
    const group = findFieldGroup(groupId);
    if (!group) {
      details.push({ path: 'fieldGroups', reason: 'unknown', message: `unknown field group ${JSON.stringify(groupId)}` });
    } else if (group.class !== schema.class) {
      details.push({
        path: 'fieldGroups',
        reason: 'class',
        message: `field group ${groupId} is for ${group.class} schemas, this schema is ${schema.class}`,
      });
    } else {
      mergeFields(fields, group.fields, '', details);
    }
  }
  for (const [name, def] of Object.entries(schema.fields)) {
    if (!NAME_RE.test(name)) {
      details.push({ path: `fields.${name}`, reason: 'definition', message: 'field names are letters, digits and _' });
    }
    checkField(def, name, details);
  }
  if (details.length === 0) mergeFields(fields, schema.fields, '', details);
  const root: FieldDef = { type: 'object', properties: fields };
  const identityFields: ResolvedSchema['identityFields'] = [];
  collectIdentities(root, [], identityFields);
  if (identityFields.filter((f) => f.primary).length > 1) {
    details.push({ path: 'fields', reason: 'identity', message: 'a schema has at most one primary identity field' });
  }
  if (details.length > 0) throw new AudientError('VALIDATION_FAILED', `schema ${schema.name} is not valid`, details);
  return { id: schema.id, class: schema.class, version: schema.version, root, identityFields };
}

function compareField(before: FieldDef, after: FieldDef | undefined, path: string, out: ErrorDetail[]): void {
  if (!after) {
    out.push({ path, reason: 'removed', message: 'removing a field would orphan stored data' });
    return;
  }
  if (before.type !== after.type) {
    out.push({ path, reason: 'type-change', message: `type changes from ${before.type} to ${after.type}` });
    return;
  }
  if (!before.required && after.required) {
    out.push({ path, reason: 'required', message: 'an existing optional field cannot become required' });
  }
  if (before.type === 'enum') {
    const lost = (before.enum ?? []).filter((v) => !(after.enum ?? []).includes(v));
    if (lost.length) out.push({ path, reason: 'enum', message: `enum values removed: ${lost.join(', ')}` });
  }
  const narrowed =
    (after.maxLength ?? Infinity) < (before.maxLength ?? Infinity) ||
    (after.minLength ?? 0) > (before.minLength ?? 0) ||
    (after.maximum ?? Infinity) < (before.maximum ?? Infinity) ||
    (after.minimum ?? -Infinity) > (before.minimum ?? -Infinity) ||
    (after.pattern !== undefined && after.pattern !== before.pattern);
  if (narrowed) out.push({ path, reason: 'constraint', message: 'constraints may only be relaxed, never tightened' });
  if (JSON.stringify(before.identity ?? null) !== JSON.stringify(after.identity ?? null)) {
    out.push({ path, reason: 'identity', message: 'identity descriptors cannot change once data is stored' });
  }
  if (before.type === 'object') {
    for (const [name, child] of Object.entries(before.properties ?? {})) {
      compareField(child, after.properties?.[name], path ? `${path}.${name}` : name, out);
    }
  } else if (before.type === 'array' && before.items) {
    compareField(before.items, after.items, `${path}[]`, out);
  } else if (before.type === 'map' && before.values) {
    compareField(before.values, after.values, `${path}{}`, out);
  }
}

/** Refuses any change from `before` to `after` other than additions (fields, enum values, groups). */
export function checkEvolution(before: SchemaDef, after: SchemaDef): void {
  const details: ErrorDetail[] = [];
  if (before.class !== after.class) {
    details.push({ path: 'class', reason: 'class', message: 'a schema cannot change class' });
  }
  const removedGroups = before.fieldGroups.filter((g) => !after.fieldGroups.includes(g));
  if (removedGroups.length) {
    details.push({ path: 'fieldGroups', reason: 'removed', message: `field groups removed: ${removedGroups.join(', ')}` });
  }
  if (details.length === 0) {
    compareField(resolveSchema(before).root, resolveSchema(after).root, '', details);
  }
  if (details.length > 0) {
    throw new AudientError(
      'BREAKING_SCHEMA_CHANGE',
      `schema ${before.name}: only additive changes are allowed (${details.length} breaking)`,
      details,
    );
  }
}

/** Finds the definition of a dot path in a resolved root (array items and map values are stepped into). */
export function fieldAt(root: FieldDef, path: readonly string[]): FieldDef | undefined {
  let cur: FieldDef | undefined = root;
  for (const seg of path) {
    while (cur && cur.type === 'array') cur = cur.items;
    if (!cur) return undefined;
    if (cur.type === 'object') cur = cur.properties?.[seg];
    else if (cur.type === 'map') cur = cur.values;
    else return undefined;
  }
  return cur;
}

/** Every leaf path of a resolved root, for suggestions ("did you mean") and console forms. */
export function leafPaths(root: FieldDef, prefix = ''): string[] {
  const out: string[] = [];
  if (root.type === 'object') {
    for (const [name, child] of Object.entries(root.properties ?? {})) {
      out.push(...leafPaths(child, prefix ? `${prefix}.${name}` : name));
    }
  } else if (prefix) {
    out.push(prefix);
  }
  return out;
}

/**
 * The union of several resolved roots of one class (a sandbox's "union schema"), as audience
 * queries see it. Where two schemas disagree on a field's type, the first one wins; the
 * disagreement is returned so it can be reported.
 */
export function unionRoots(roots: readonly FieldDef[]): { root: FieldDef; conflicts: ErrorDetail[] } {
  const conflicts: ErrorDetail[] = [];
  const fields: Record<string, FieldDef> = {};
  for (const r of roots) mergeFields(fields, r.properties ?? {}, '', conflicts);
  return { root: { type: 'object', properties: fields }, conflicts };
}
