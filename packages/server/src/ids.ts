/** Identifier generation for the server side (the core gets ids injected). */
import { randomBytes, randomFillSync, randomUUID } from 'node:crypto';

/** A random UUID (datastream ids, audience ids; the edge mints event ids with timeOrderedUuid). */
export const newUuid = (): string => randomUUID();

let lastTime = 0;
let counter = 0;

/**
 * A time-sortable id (`<ms base36><counter><random>`): newest-first listing and cursor paging
 * can order by id alone.
 */
export function sortableId(prefix: string): string {
  const now = Date.now();
  counter = now === lastTime ? counter + 1 : 0;
  lastTime = now;
  return `${prefix}_${now.toString(36).padStart(9, '0')}${counter.toString(36).padStart(3, '0')}${randomBytes(5).toString('hex')}`;
}

let uuidTime = 0;
let uuidSeq = 0;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** The id being written, and where (module state: one id at a time, synchronously). */
const uuidOut = Buffer.alloc(36);
let uuidAt = 0;
/**
 * Random bytes drawn in bulk, each handed out once: one `randomFillSync` per 8 KB, where a
 * `randomBytes` call per id cost about 5 µs here (a system call each), for 16 bytes.
 */
const entropy = Buffer.alloc(8 * 1024);
let entropyAt = entropy.length;

/** Where `n` fresh random bytes start in `entropy` (`n` at most its size). */
function takeEntropy(n: number): number {
  if (entropyAt + n > entropy.length) {
    randomFillSync(entropy);
    entropyAt = 0;
  }
  const at = entropyAt;
  entropyAt += n;
  return at;
}

/** A uniformly random unsigned 64-bit integer (cryptographically strong, from the pool). */
export function randomUint64(): bigint {
  return entropy.readBigUInt64BE(takeEntropy(8));
}

function putHex(value: number, digits: number): void {
  for (let d = digits - 1; d >= 0; d--) {
    uuidOut[uuidAt + d] = HEX[value & 15]!;
    value = Math.floor(value / 16);
  }
  uuidAt += digits;
}

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond time, then a 12-bit counter that keeps ids of one
 * millisecond in order, then random bits. New profiles' ids sort by creation time, so their
 * index entries land at the end of the B-trees instead of on random pages. Written into a buffer
 * and decoded once: the id is one flat string of 36 bytes, where a template of pieces is a tree
 * of concatenations several times that size for as long as the id is kept (event ids held in
 * the profile views).
 */
export function timeOrderedUuid(): string {
  const now = Date.now();
  if (now > uuidTime) (uuidTime = now, uuidSeq = 0);
  else if (++uuidSeq > 0xfff) (uuidTime += 1, uuidSeq = 0);
  const r = takeEntropy(8);
  uuidAt = 0;
  putHex(Math.floor(uuidTime / 0x10000), 8);
  uuidOut[uuidAt++] = 0x2d;
  putHex(uuidTime % 0x10000, 4);
  uuidOut[uuidAt++] = 0x2d;
  // Version 7, the counter.
  putHex(0x7000 | uuidSeq, 4);
  uuidOut[uuidAt++] = 0x2d;
  // Variant 0b10, then 62 random bits.
  putHex(0x8000 | (((entropy[r]! << 8) | entropy[r + 1]!) & 0x3fff), 4);
  uuidOut[uuidAt++] = 0x2d;
  for (let k = r + 2; k < r + 8; k++) putHex(entropy[k]!, 2);
  return uuidOut.toString('latin1', 0, 36);
}
