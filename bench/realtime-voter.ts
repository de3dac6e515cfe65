/**
 * The vote stream of `npm run bench:realtime`: `--rate` anonymous votes a second through the
 * real API, each from its own X-Forwarded-For address (the API runs with TRUST_PROXY=loopback).
 * Reports its counts over IPC on "stop".
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    api: { type: 'string' },
    poll: { type: 'string' },
    options: { type: 'string' },
    rate: { type: 'string' },
  },
});
const api = new URL(values.api!);
const path = `/api/v1/polls/${values.poll}/votes`;
const optionIds = values.options!.split(',').map(Number);
const rate = Number(values.rate);
const MAX_IN_FLIGHT = 512;

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const statuses: Record<string, number> = {};
let inFlight = 0;
let skipped = 0;
let voter = 0;

function castOne(): void {
  const n = ++voter;
  const body = JSON.stringify({ options: [optionIds[n % optionIds.length]] });
  inFlight++;
  const req = http.request(
    {
      host: api.hostname,
      port: api.port,
      path,
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'user-agent': 'bench-realtime',
        'x-forwarded-for': `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
      },
    },
    (res) => {
      res.resume();
      res.on('end', () => {
        inFlight--;
        statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
      });
    },
  );
  req.on('error', () => {
    inFlight--;
    statuses.error = (statuses.error ?? 0) + 1;
  });
  req.end(body);
}

// Paced on elapsed time, so a slow tick catches up instead of lowering the rate.
const started = Date.now();
let cast = 0;
const timer = setInterval(() => {
  const due = Math.floor(((Date.now() - started) / 1000) * rate);
  while (cast < due) {
    cast++;
    if (inFlight >= MAX_IN_FLIGHT) skipped++;
    else castOne();
  }
}, 5);

process.on('message', (m: { type: string }) => {
  if (m.type === 'stop') {
    clearInterval(timer);
    process.send!({ type: 'report', sent: voter, skipped, statuses, seconds: (Date.now() - started) / 1000 });
  } else if (m.type === 'exit') process.exit(0);
});
