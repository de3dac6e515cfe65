import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import { canonicalIp } from '../domain/ip-address.js';

// What a request says of itself, for every role that takes requests: its path ids and its client address.

/** Parses a path id: a positive integer that fits a JS number, else null. */
export function parseId(raw: string | undefined): number | null {
  if (!raw || !/^[1-9][0-9]{0,15}$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}

/** The TRUST_PROXY setting in Express's trust-proxy syntax: unset trusts no proxy. */
export function trustProxySetting(raw: string | undefined): boolean | number | string {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^[0-9]+$/.test(raw)) return Number(raw);
  return raw;
}

/**
 * The trust-proxy rule with its verdict on the connecting peer (hop 0) remembered: peers are a
 * few load balancers, and parsing their address again on every vote is a measurable share of it.
 */
export function rememberPeerTrust(trust: (addr: string, i: number) => boolean): (addr: string, i: number) => boolean {
  const peers = new Map<string, boolean>();
  return (addr, i) => {
    if (i !== 0) return trust(addr, i);
    let trusted = peers.get(addr);
    if (trusted === undefined) {
      if (peers.size >= 1024) peers.clear();
      trusted = trust(addr, 0);
      peers.set(addr, trusted);
    }
    return trusted;
  };
}

/**
 * The client address per the trust-proxy rule, in its one written form (IPv4-mapped IPv6 as
 * IPv4, canonical IPv6, no zone): every spelling of one address is one voter.
 */
export function clientIp(req: IncomingMessage, trust: (addr: string, i: number) => boolean): string {
  // A forwarded entry that is not an address (a broken or hostile proxy) must not become one.
  return canonicalIp(proxyaddr(req, trust)) ?? canonicalIp(req.socket.remoteAddress ?? '') ?? '0.0.0.0';
}
