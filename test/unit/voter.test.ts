import { describe, expect, it } from 'vitest';
import { anonymousVoterKey, voterIdentityOf } from '../../src/domain/voter.js';

const UA = 'Mozilla/5.0';

describe('anonymousVoterKey', () => {
  it('is f: and a 32-character URL-safe hash, the same for the same poll, address, browser and fingerprint', () => {
    const key = anonymousVoterKey(7, '192.0.2.1', UA, 'fp');
    expect(key).toMatch(/^f:[A-Za-z0-9_-]{32}$/);
    expect(anonymousVoterKey(7, '192.0.2.1', UA, 'fp')).toBe(key);
  });
  it('changes with each of them', () => {
    const key = anonymousVoterKey(7, '192.0.2.1', UA, 'fp');
    const others = [
      anonymousVoterKey(8, '192.0.2.1', UA, 'fp'),
      anonymousVoterKey(7, '192.0.2.2', UA, 'fp'),
      anonymousVoterKey(7, '192.0.2.1', 'curl/8', 'fp'),
      anonymousVoterKey(7, '192.0.2.1', UA, 'fp2'),
      anonymousVoterKey(7, '192.0.2.1', UA),
    ];
    expect(new Set([key, ...others]).size).toBe(6);
  });
  it('takes no fingerprint as the empty one', () => {
    expect(anonymousVoterKey(7, '192.0.2.1', UA)).toBe(anonymousVoterKey(7, '192.0.2.1', UA, ''));
  });
});

describe('voterIdentityOf', () => {
  it('knows a signed-in voter by user id alone, routed by it, limited and watched by address', () => {
    const id = voterIdentityOf({ pollId: 7, userId: 42, ip: '192.0.2.1', userAgent: UA, fingerprint: 'fp' });
    expect(id).toEqual({ voterKey: 'u:42', routingKey: 'u:42', limitKey: '192.0.2.1', prefixes: ['192.0.2.0/24'] });
    const elsewhere = voterIdentityOf({ pollId: 7, userId: 42, ip: '198.51.100.9', userAgent: 'curl/8' });
    expect(elsewhere.voterKey, 'another address and browser is the same voter').toBe('u:42');
    expect(elsewhere.limitKey).toBe('198.51.100.9');
  });

  it('knows an anonymous IPv4 voter by the hash, routed by the /24', () => {
    const id = voterIdentityOf({ pollId: 7, userId: null, ip: '192.0.2.1', userAgent: UA, fingerprint: 'fp' });
    expect(id).toEqual({
      voterKey: anonymousVoterKey(7, '192.0.2.1', UA, 'fp'),
      routingKey: '192.0.2.0/24',
      limitKey: '192.0.2.1',
      prefixes: ['192.0.2.0/24'],
    });
  });

  it('routes an anonymous IPv6 voter by the widest watched prefix (/48), limits them by /64', () => {
    const id = voterIdentityOf({ pollId: 7, userId: null, ip: '2001:db8:1:2:3:4:5:6', userAgent: UA });
    expect(id).toEqual({
      voterKey: anonymousVoterKey(7, '2001:db8:1:2:3:4:5:6', UA),
      routingKey: '2001:db8:1::/48',
      limitKey: '2001:db8:1:2::/64',
      prefixes: ['2001:db8:1:2::/64', '2001:db8:1::/48'],
    });
  });

  it('puts the voters of one /24 in one partition however they differ, so their velocity is watched in one place', () => {
    const a = voterIdentityOf({ pollId: 7, userId: null, ip: '192.0.2.1', userAgent: UA });
    const b = voterIdentityOf({ pollId: 7, userId: null, ip: '192.0.2.200', userAgent: 'curl/8', fingerprint: 'x' });
    expect(a.voterKey).not.toBe(b.voterKey);
    expect(a.routingKey).toBe(b.routingKey);
  });

  it('routes an address it cannot parse by its limit key, watching no prefix', () => {
    const id = voterIdentityOf({ pollId: 7, userId: null, ip: 'not-an-ip', userAgent: UA });
    expect(id).toMatchObject({ routingKey: 'raw:not-an-ip', limitKey: 'raw:not-an-ip', prefixes: [] });
  });
});
