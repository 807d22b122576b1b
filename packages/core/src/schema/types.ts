/**
 * The data model's types: schemas of two classes (profile, experience event) made of typed
 * fields, identity descriptors and data-usage labels. Pure data, shared by server, CLI and console.
 */

/** The two schema classes: attributes of a person, or something that happened at a time. */
export type SchemaClass = 'profile' | 'event';

/** Every field type a schema can declare. */
export type FieldType =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'date'
  | 'date-time'
  | 'enum'
  | 'object'
  | 'array'
  | 'map';

/** Marks a field whose value is an identity of the given namespace. */
export interface IdentityDescriptor {
  /** Namespace code, e.g. `email`, `ECID`, `crmId` (matched case-insensitively). */
  namespace: string;
  /** The primary identity keys the record's fragment; at most one per schema. */
  primary?: boolean;
}

/** One typed field. Objects nest through `properties`, arrays through `items`, maps through `values`. */
export interface FieldDef {
  type: FieldType;
  title?: string;
  description?: string;
  /** For `object`: its fields. */
  properties?: Record<string, FieldDef>;
  /** For `array`: the element type. */
  items?: FieldDef;
  /** For `map`: the type of every value (keys are free strings). */
  values?: FieldDef;
  /** For `enum`: the allowed string values. */
  enum?: string[];
  /** Record must carry this field (checked on the field's parent object when that is present). */
  required?: boolean;
  /** For strings: length bounds and a regular expression. */
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  /** For numbers: inclusive bounds. */
  minimum?: number;
  maximum?: number;
  /** This field carries an identity. Only on string fields. */
  identity?: IdentityDescriptor;
  /** Data-usage labels (e.g. `C1`, `I1`, `S1`) for governance. */
  labels?: string[];
}

/** A schema as stored: class, standard field groups it includes and its own custom fields. */
export interface SchemaDef {
  id: string;
  name: string;
  description?: string;
  class: SchemaClass;
  /** Ids of standard field groups included, e.g. `profile-person-details`. */
  fieldGroups: string[];
  /** Custom fields at the root, merged over the field groups' fields. */
  fields: Record<string, FieldDef>;
  version: number;
}

/** A dataset: records of one schema; only profile-enabled datasets feed unified profiles. */
export interface DatasetDef {
  id: string;
  name: string;
  schemaId: string;
  profileEnabled: boolean;
}
