/** API keys: generated once, shown once, stored only as a SHA-256 hash. */
import { createHash, randomBytes } from 'node:crypto';

/** A new secret API key. */
export function generateApiKey(): string {
  return `aud_${randomBytes(24).toString('base64url')}`;
}

/** The stored form of a key. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
