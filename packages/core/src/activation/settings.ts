/** Validation of destination settings against their declared fields. */
import type { ErrorDetail } from '../errors.js';
import type { DestinationDefinition, SettingField, SettingValues } from './types.js';

/** Whether a field is stored encrypted and never returned. */
export const isSecretField = (f: SettingField): boolean => f.secret === true || f.type === 'password';

/**
 * Parses `header1:value1,header2:value2` strictly: names are RFC 7230 tokens, values have no
 * control characters; an empty string means no headers.
 */
export function parseHeaderList(text: string): { headers: Record<string, string> } | { error: string } {
  const headers: Record<string, string> = {};
  if (text.trim() === '') return { headers };
  const parts = text.split(',');
  for (const [i, part] of parts.entries()) {
    const colon = part.indexOf(':');
    if (colon < 1) return { error: `entry ${i + 1} (${JSON.stringify(part.trim())}) is not name:value` };
    const name = part.slice(0, colon).trim();
    const value = part.slice(colon + 1).trim();
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return { error: `entry ${i + 1}: ${JSON.stringify(name)} is not a valid header name` };
    if (/[\u0000-\u001f\u007f]/.test(value)) return { error: `entry ${i + 1}: the value of ${name} contains control characters` };
    if (['host', 'content-length', 'authorization', 'transfer-encoding', 'connection'].includes(name.toLowerCase())) {
      return { error: `entry ${i + 1}: ${name} is set by Audient and cannot be overridden` };
    }
    headers[name] = value;
  }
  return { headers };
}

/** Checks settings; returns every problem, and the values with defaults applied. */
export function validateSettings(def: DestinationDefinition, input: Record<string, unknown>): { values: SettingValues; errors: ErrorDetail[] } {
  const errors: ErrorDetail[] = [];
  const values: SettingValues = {};
  const known = new Set(def.settings.map((f) => f.key));
  for (const key of Object.keys(input)) {
    if (!known.has(key)) errors.push({ path: `settings.${key}`, reason: 'unknown-field', message: `${def.name} has no setting ${key}` });
  }
  for (const f of def.settings) {
    const path = `settings.${f.key}`;
    const raw = input[f.key] ?? f.default;
    if (raw === undefined || raw === '') {
      if (f.required) errors.push({ path, reason: 'required', message: `${f.label} is required` });
      continue;
    }
    const bad = (expected: string): void => {
      errors.push({ path, reason: 'type', message: `${f.label}: expected ${expected}`, expected, received: typeof raw });
    };
    switch (f.type) {
      case 'number':
        if (typeof raw !== 'number' || !Number.isFinite(raw)) bad('a number');
        else values[f.key] = raw;
        break;
      case 'boolean':
        if (typeof raw !== 'boolean') bad('true or false');
        else values[f.key] = raw;
        break;
      case 'enum':
        if (typeof raw !== 'string' || !(f.options ?? []).some((o) => o.value === raw)) bad(`one of ${(f.options ?? []).map((o) => o.value).join(', ')}`);
        else values[f.key] = raw;
        break;
      case 'url': {
        if (typeof raw !== 'string') {
          bad('a URL');
          break;
        }
        let u: URL | undefined;
        try {
          u = new URL(raw);
        } catch {
          u = undefined;
        }
        if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) bad('an http(s) URL');
        else values[f.key] = raw;
        break;
      }
      case 'headers': {
        if (typeof raw !== 'string') {
          bad('header1:value1,header2:value2');
          break;
        }
        const parsed = parseHeaderList(raw);
        if ('error' in parsed) errors.push({ path, reason: 'format', message: `${f.label}: ${parsed.error}; expected header1:value1,header2:value2` });
        else values[f.key] = raw;
        break;
      }
      default:
        if (typeof raw !== 'string') bad('a string');
        else if (f.pattern && !new RegExp(f.pattern).test(raw)) errors.push({ path, reason: 'pattern', message: `${f.label} does not match ${f.pattern}` });
        else values[f.key] = raw;
    }
  }
  if (errors.length === 0 && def.checkSettings) {
    for (const e of def.checkSettings(values)) errors.push({ path: `settings.${e.key}`, reason: 'invalid', message: e.message });
  }
  return { values, errors };
}

/** A settings object with secrets replaced by a mask (for APIs, logs and dry runs). */
export function maskSettings(def: DestinationDefinition, values: SettingValues): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const f of def.settings) {
    if (values[f.key] === undefined) continue;
    out[f.key] = isSecretField(f) ? '••••••' : values[f.key]!;
  }
  return out;
}
