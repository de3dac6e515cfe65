/**
 * The vote stream of `npm run bench:realtime`: `--rate` anonymous votes a second through the
 * real API, each from its own X-Forwarded-For address (the API runs with TRUST_PROXY=loopback).
 * Requests are pipelined on a few keep-alive sockets and answers are read only as far as their
 * status: a node:http client costs the shared cores more per vote than the API's own work
 * does, and the instrument must not take the CPU the gateway is measured on.
 * Reports its counts over IPC on "stop".
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    api: { type: 'string' },
    poll: { type: 'string' },
    options: { type: 'string' },
    rate: { type: 'string' },
    sockets: { type: 'string', default: '32' },
  },
});
const api = new URL(values.api!);
const path = `/api/v1/polls/${values.poll}/votes`;
const optionIds = values.options!.split(',').map(Number);
const rate = Number(values.rate);
const MAX_IN_FLIGHT = 512;

const statuses: Record<string, number> = {};
let inFlight = 0;
let skipped = 0;
let voter = 0;

interface Conn {
  socket: net.Socket;
  inFlight: number;
  buffered: Buffer;
}

/** Counts the complete answers at the front of `c.buffered` and drops them. */
function readAnswers(c: Conn): void {
  let buf = c.buffered;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const head = buf.toString('latin1', 0, headEnd);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (buf.length < headEnd + 4 + length) break;
    const status = head.slice(9, 12);
    statuses[status] = (statuses[status] ?? 0) + 1;
    c.inFlight--;
    inFlight--;
    buf = buf.subarray(headEnd + 4 + length);
  }
  c.buffered = buf;
}

function connect(): Conn {
  const c: Conn = { socket: net.connect(Number(api.port), api.hostname), inFlight: 0, buffered: Buffer.alloc(0) };
  c.socket.setNoDelay(true);
  c.socket.on('data', (d: Buffer) => {
    c.buffered = c.buffered.length ? Buffer.concat([c.buffered, d]) : d;
    readAnswers(c);
  });
  c.socket.on('error', () => {});
  c.socket.on('close', () => {
    // Whatever was still unanswered on it is lost to the count: say so, and carry on.
    statuses.error = (statuses.error ?? 0) + c.inFlight;
    inFlight -= c.inFlight;
    conns[conns.indexOf(c)] = connect();
  });
  return c;
}
const conns = Array.from({ length: Number(values.sockets) }, connect);

function request(n: number): string {
  const body = `{"options":[${optionIds[n % optionIds.length]}]}`;
  return (
    `POST ${path} HTTP/1.1\r\nHost: ${api.host}\r\nContent-Type: application/json\r\nUser-Agent: bench-realtime\r\n` +
    `X-Forwarded-For: 10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  );
}

// Paced on elapsed time, so a slow tick catches up instead of lowering the rate. A tick's votes
// go out spread over the sockets, one write per socket.
const started = Date.now();
let cast = 0;
let next = 0;
const timer = setInterval(() => {
  const due = Math.floor(((Date.now() - started) / 1000) * rate);
  const out = new Map<Conn, string[]>();
  while (cast < due) {
    cast++;
    if (inFlight >= MAX_IN_FLIGHT) {
      skipped++;
      continue;
    }
    const c = conns[next++ % conns.length];
    c.inFlight++;
    inFlight++;
    const list = out.get(c);
    if (list) list.push(request(++voter));
    else out.set(c, [request(++voter)]);
  }
  for (const [c, list] of out) c.socket.write(list.join(''));
}, 5);

process.on('message', (m: { type: string }) => {
  if (m.type === 'stop') {
    clearInterval(timer);
    process.send!({ type: 'report', sent: voter, skipped, statuses, seconds: (Date.now() - started) / 1000 });
  } else if (m.type === 'exit') process.exit(0);
});
