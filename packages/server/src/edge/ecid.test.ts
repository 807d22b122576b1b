import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeIdentityCookie, encodeIdentityCookie, isEcid, mintEcid } from './ecid.js';

describe('mintEcid', () => {
  it('mints distinct ECIDs, across refills of the random pool, with both halves random', () => {
    // 20,000 ECIDs draw 320,000 random bytes: the 8 KB pool is refilled about 40 times.
    const ecids = Array.from({ length: 20_000 }, () => mintEcid());
    for (const e of ecids) assert.ok(isEcid(e), e);
    assert.equal(new Set(ecids).size, ecids.length);
    assert.equal(new Set(ecids.map((e) => e.slice(0, 19))).size, ecids.length, 'first halves differ');
    assert.equal(new Set(ecids.map((e) => e.slice(19))).size, ecids.length, 'second halves differ');
    // Each half is a 64-bit number modulo 10^19 written in 19 digits: its leading digit is each
    // of 0–9 with a chance of 5–11 %. A stuck or zeroed pool would not give all ten.
    const leading = new Set(ecids.map((e) => e[0]));
    assert.equal(leading.size, 10);
  });
});

describe('identity cookie', () => {
  it('holds the ECID as Adobe writes it: base64 of protobuf field 1 (0x0a), its length, then the digits', () => {
    const ecid = '12345678901234567890123456789012345678';
    const value = encodeIdentityCookie(ecid);
    const bytes = Buffer.from(value, 'base64');
    assert.equal(bytes[0], 0x0a);
    assert.equal(bytes[1], 38);
    assert.equal(bytes.subarray(2).toString('utf8'), ecid);
    assert.equal(value, Buffer.concat([Buffer.from([0x0a, 38]), Buffer.from(ecid)]).toString('base64'));
  });

  it('reads back every minted ECID, URL-encoded or not', () => {
    for (let i = 0; i < 50; i++) {
      const ecid = mintEcid();
      assert.ok(isEcid(ecid));
      const value = encodeIdentityCookie(ecid);
      assert.equal(decodeIdentityCookie(value), ecid);
      assert.equal(decodeIdentityCookie(encodeURIComponent(value)), ecid);
    }
  });
});
