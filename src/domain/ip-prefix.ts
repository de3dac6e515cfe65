import { isIPv4 } from 'node:net';
import ipaddr from 'ipaddr.js';

/** How an address is grouped for limits: the rate-limit key and the prefixes watched for velocity. */
export interface AddressGroups {
  /** Key of the per-IP limit: an IPv4 address, or an IPv6 /64 (one subscriber's usual allocation). */
  limitKey: string;
  /** Prefixes watched for bursts: IPv4 /24; IPv6 /64 and /48 (a site rotating through its /64s). */
  prefixes: string[];
}

/** Groups a client address into its rate-limit key and velocity prefixes. */
export function addressGroupsOf(ip: string): AddressGroups {
  // The common case, a plain dotted quad, without a full parse (this runs for every vote).
  if (isIPv4(ip)) return { limitKey: ip, prefixes: [`${ip.slice(0, ip.lastIndexOf('.'))}.0/24`] };
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ip); // IPv4-mapped IPv6 becomes IPv4
  } catch {
    return { limitKey: `raw:${ip}`, prefixes: [] };
  }
  if (addr.kind() === 'ipv4') {
    const o = (addr as ipaddr.IPv4).octets;
    return { limitKey: addr.toString(), prefixes: [`${o[0]}.${o[1]}.${o[2]}.0/24`] };
  }
  const p = (addr as ipaddr.IPv6).parts.map((n) => n.toString(16));
  const p64 = `${p.slice(0, 4).join(':')}::/64`;
  return { limitKey: p64, prefixes: [p64, `${p.slice(0, 3).join(':')}::/48`] };
}
