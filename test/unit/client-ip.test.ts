import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import { describe, expect, it } from 'vitest';
import { clientIp, rememberPeerTrust } from '../../src/shared/request.js';

const request = (peer: string, forwardedFor?: string) =>
  ({
    socket: { remoteAddress: peer },
    connection: { remoteAddress: peer },
    headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {},
  }) as unknown as IncomingMessage;

describe('clientIp with the peer verdict remembered', () => {
  const loopback = proxyaddr.compile('loopback');

  it('answers as the plain rule does, call after call', () => {
    const trust = rememberPeerTrust(loopback);
    const cases: Array<[string, string | undefined, string]> = [
      ['::ffff:127.0.0.1', '203.0.113.7', '203.0.113.7'],
      ['::ffff:127.0.0.1', '203.0.113.8', '203.0.113.8'],
      ['::ffff:10.0.0.1', '203.0.113.7', '10.0.0.1'],
      ['127.0.0.1', '198.51.100.1, 127.0.0.1', '198.51.100.1'],
      ['127.0.0.1', '127.0.0.1, 198.51.100.2', '198.51.100.2'],
      ['::1', undefined, '::1'],
      ['::ffff:10.0.0.1', '203.0.113.9', '10.0.0.1'],
      // Zones name our interfaces, and PostgreSQL's inet refuses them.
      ['fe80::fc:ff:fe00:1%eth0', undefined, 'fe80::fc:ff:fe00:1'],
      ['127.0.0.1', '::1%x', '::1'],
      ['127.0.0.1', 'fe80::1%25eth0, 198.51.100.3', '198.51.100.3'],
    ];
    for (let round = 0; round < 2; round++) {
      for (const [peer, xff, expected] of cases) {
        expect(clientIp(request(peer, xff), trust)).toBe(expected);
        expect(clientIp(request(peer, xff), loopback)).toBe(expected);
      }
    }
  });

  it('asks the rule once per peer, and every time for forwarded hops', () => {
    const calls: Array<[string, number]> = [];
    const trust = rememberPeerTrust((addr, i) => {
      calls.push([addr, i]);
      return loopback(addr, i);
    });
    // proxy-addr reads the chain from the peer outwards and never asks about its last entry.
    for (let n = 1; n <= 3; n++) clientIp(request('::ffff:127.0.0.1', `198.51.100.1, 203.0.113.${n}`), trust);
    expect(calls.filter(([, i]) => i === 0)).toEqual([['::ffff:127.0.0.1', 0]]);
    expect(calls.filter(([, i]) => i > 0)).toEqual([
      ['203.0.113.1', 1],
      ['203.0.113.2', 1],
      ['203.0.113.3', 1],
    ]);
  });
});

describe('clientIp in its one written form', () => {
  const loopback = proxyaddr.compile('loopback');

  it('counts every spelling of one forwarded address as that address', () => {
    const trust = rememberPeerTrust(loopback);
    for (const forwarded of ['10.1.1.1', '::FFFF:10.1.1.1', '::ffff:a01:101', '0:0:0:0:0:FFFF:0A01:0101', '010.001.001.001']) {
      expect(clientIp(request('127.0.0.1', forwarded), trust), forwarded).toBe('10.1.1.1');
    }
    expect(clientIp(request('127.0.0.1', '2001:0DB8:0:0::1'), trust)).toBe('2001:db8::1');
    expect(clientIp(request('::FFFF:192.0.2.5'), trust)).toBe('192.0.2.5');
  });

  it('falls back to the peer when the forwarded entry is not an address', () => {
    expect(clientIp(request('::ffff:127.0.0.1', 'not-an-ip'), loopback)).toBe('127.0.0.1');
    expect(clientIp(request('::1', '999.1.1.1'), loopback)).toBe('::1');
  });
});
