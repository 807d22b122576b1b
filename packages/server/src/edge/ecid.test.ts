import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeIdentityCookie, encodeIdentityCookie, isEcid, mintEcid } from './ecid.js';

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
