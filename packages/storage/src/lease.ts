/** Lease tokens of the activation outbox's claims. */
import { randomInt } from 'node:crypto';

/**
 * A new lease token: random (claimers in other processes draw their own), positive, and exact as
 * a JavaScript number and as SQLite INTEGER / PostgreSQL BIGINT.
 */
export function newLeaseToken(): number {
  return randomInt(1, 2 ** 48);
}
