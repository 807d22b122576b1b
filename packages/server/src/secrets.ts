/**
 * Secrets at rest: AES-256-GCM with a key from AUDIENT_SECRET_KEY (64 hex chars) or, failing
 * that, a key generated once into `<dataDir>/secret.key` with owner-only permissions. Sealed
 * values carry a version prefix so the scheme can change later.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AudientError } from '@audient/core';

const PREFIX = 'v1:';

/** Seals and opens secrets. */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** The box for a data directory (key from `hexKey`, or the key file, created if missing). */
  static open(dataDir: string, hexKey?: string): SecretBox {
    if (hexKey) {
      if (!/^[0-9a-fA-F]{64}$/.test(hexKey)) throw new Error('AUDIENT_SECRET_KEY must be 64 hexadecimal characters (32 bytes)');
      return new SecretBox(Buffer.from(hexKey, 'hex'));
    }
    const path = join(dataDir, 'secret.key');
    if (!existsSync(path)) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      writeFileSync(path, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
    }
    return new SecretBox(Buffer.from(readFileSync(path, 'utf8').trim(), 'hex'));
  }

  /** Encrypts a secret for storage. */
  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  /** Decrypts a sealed secret; a wrong key or tampering is an error, never garbage. */
  unseal(sealed: string): string {
    if (!sealed.startsWith(PREFIX)) throw new AudientError('INTERNAL', 'stored secret has an unknown format');
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    try {
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    } catch {
      throw new AudientError('INTERNAL', 'a stored secret cannot be decrypted: the secret key changed or the data was altered');
    }
  }
}
