import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { canonicalIp } from '../../src/domain/ip-address.js';

describe('canonicalIp', () => {
  it('writes every form of an IPv4-mapped address as its IPv4 address', () => {
    for (const form of [
      '10.1.1.1',
      '::ffff:10.1.1.1',
      '::FFFF:10.1.1.1',
      '::ffff:a01:101',
      '::FFFF:A01:101',
      '::ffff:0a01:0101',
      '0:0:0:0:0:ffff:a01:101',
      '0000:0000:0000:0000:0000:FFFF:0A01:0101',
      '0::ffff:10.1.1.1',
      '::0:ffff:10.1.1.1',
      '0:0:0:0:0:ffff:10.1.1.1',
      '::ffff:010.001.001.001',
      '010.001.001.001',
      '10.01.1.001',
      '::ffff:10.1.1.1%eth0',
    ]) {
      expect(canonicalIp(form), form).toBe('10.1.1.1');
    }
  });

  it('writes IPv6 per RFC 5952: lower case, no leading zeros, the longest zero run compressed', () => {
    const cases: Array<[string, string]> = [
      ['2001:DB8::1', '2001:db8::1'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:0:0:1:0:0', '2001:db8::1:0:0'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:db8::0:1', '2001:db8::1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['::', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['::0001', '::1'],
      ['1::', '1::'],
      ['fe80::fc:ff:fe00:1%eth0', 'fe80::fc:ff:fe00:1'],
      // Not mapped: an IPv4-compatible or IPv4-translated address stays IPv6, in hex.
      ['::10.1.1.1', '::a01:101'],
      ['::ffff:0:10.1.1.1', '::ffff:0:a01:101'],
      ['64:ff9b::10.1.1.1', '64:ff9b::a01:101'],
    ];
    for (const [form, canonical] of cases) expect(canonicalIp(form), form).toBe(canonical);
  });

  it('agrees with ipaddr.js on random addresses written every way', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let k = 0; k < 500; k++) {
      // Zero groups are frequent, so compression has runs to choose between.
      const groups = Array.from({ length: 8 }, () => (rnd(3) === 0 ? 0 : rnd(0x10000)));
      if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) continue;
      const expected = ipaddr.IPv6.parse(groups.map((g) => g.toString(16)).join(':')).toRFC5952String();
      const forms = [
        groups.map((g) => g.toString(16)).join(':'),
        groups.map((g) => g.toString(16).padStart(4, '0').toUpperCase()).join(':'),
        ipaddr.IPv6.parse(expected).toNormalizedString(),
        expected.toUpperCase(),
      ];
      for (const f of forms) expect(canonicalIp(f), f).toBe(expected);
    }
  });

  it('refuses what is not an address', () => {
    for (const bad of [
      '',
      'unknown',
      '10.1.1',
      '10.1.1.1.1',
      '256.1.1.1',
      '1.2.3.4x',
      '0x0a.1.1.1',
      '1234.1.1.1',
      ' 10.1.1.1',
      '10.1.1.1 ',
      ':::',
      '1:::2',
      '1::2::3',
      '12345::1',
      'g::1',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7::8',
      ':1:2:3:4:5:6:7',
      '::ffff:10.1.1',
      '::ffff:1.2.3.4:5',
      '1.2.3.4::',
    ]) {
      expect(canonicalIp(bad), JSON.stringify(bad)).toBeNull();
    }
  });
});
