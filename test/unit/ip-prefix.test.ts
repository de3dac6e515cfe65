import { describe, expect, it } from 'vitest';
import { addressGroupsOf } from '../../src/domain/ip-prefix.js';

describe('addressGroupsOf', () => {
  it('groups IPv4 by /24 and limits per address', () => {
    expect(addressGroupsOf('203.0.113.77')).toEqual({ limitKey: '203.0.113.77', prefixes: ['203.0.113.0/24'] });
  });
  it('treats IPv4-mapped IPv6 as IPv4', () => {
    expect(addressGroupsOf('::ffff:203.0.113.77')).toEqual(addressGroupsOf('203.0.113.77'));
  });
  it('groups IPv6 by /64 and /48, and limits per /64', () => {
    const a = addressGroupsOf('2001:db8:abcd:12:1:2:3:4');
    expect(a).toEqual({ limitKey: '2001:db8:abcd:12::/64', prefixes: ['2001:db8:abcd:12::/64', '2001:db8:abcd::/48'] });
    expect(addressGroupsOf('2001:0db8:abcd:0012:ffff::1').limitKey).toBe(a.limitKey);
    expect(addressGroupsOf('2001:db8:abcd:13::1').prefixes[1]).toBe(a.prefixes[1]);
  });
  it('keeps unparseable addresses apart without prefixes', () => {
    expect(addressGroupsOf('not-an-ip')).toEqual({ limitKey: 'raw:not-an-ip', prefixes: [] });
  });
});
