import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import proxyaddr from 'proxy-addr';
import { clientIp, rememberPeerTrust } from '../src/shared/request.js';

// What clientIp did before every written form was made one (kept here to compare against).
function previousClientIp(req: IncomingMessage, trust: (addr: string, i: number) => boolean): string {
  const withoutZone = (ip: string) => (ip.indexOf('%') < 0 ? ip : ip.slice(0, ip.indexOf('%')));
  let ip = withoutZone(proxyaddr(req, trust));
  if (isIP(ip) === 0) ip = withoutZone(req.socket.remoteAddress ?? '0.0.0.0');
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

const N = 2_000_000;
const ROUNDS = 7;
const request = (peer: string, forwardedFor?: string) =>
  ({
    socket: { remoteAddress: peer },
    connection: { remoteAddress: peer },
    headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {},
  }) as unknown as IncomingMessage;

/** Median ns per call over ROUNDS rounds of N calls, after a warm-up. */
function nsPerCall(fn: (req: IncomingMessage) => string, reqs: IncomingMessage[]): number {
  let sink = 0;
  for (let i = 0; i < N; i++) sink += fn(reqs[i & 255]).length;
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) sink += fn(reqs[i & 255]).length;
    rounds.push(((performance.now() - t0) * 1e6) / N);
  }
  if (sink === 42) console.log('');
  return rounds.sort((a, b) => a - b)[ROUNDS >> 1];
}

const trust = rememberPeerTrust(proxyaddr.compile('loopback'));
const none = () => false;
const cases: Array<[string, IncomingMessage[], (addr: string, i: number) => boolean]> = [
  ['plain IPv4 peer, no proxy', Array.from({ length: 256 }, (_, i) => request(`203.0.113.${i}`)), none],
  ['IPv4-mapped peer (dual-stack socket), no proxy', Array.from({ length: 256 }, (_, i) => request(`::ffff:203.0.113.${i}`)), none],
  ['X-Forwarded-For IPv4 behind a loopback proxy', Array.from({ length: 256 }, (_, i) => request('::ffff:127.0.0.1', `198.51.${i}.7`)), trust],
  ['X-Forwarded-For IPv6 behind a loopback proxy', Array.from({ length: 256 }, (_, i) => request('::ffff:127.0.0.1', `2001:db8:${i.toString(16)}::7`)), trust],
];
console.log(`clientIp, median ns per call over ${ROUNDS} rounds of ${N.toLocaleString('en')} calls`);
for (const [name, reqs, t] of cases) {
  const before = nsPerCall((req) => previousClientIp(req, t), reqs);
  const after = nsPerCall((req) => clientIp(req, t), reqs);
  console.log(`${name.padEnd(48)} before ${before.toFixed(1).padStart(6)} ns   now ${after.toFixed(1).padStart(6)} ns`);
}
