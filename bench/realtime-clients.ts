/**
 * One load-generator process of `npm run bench:realtime`: holds `--count` WebSocket clients on a
 * poll and measures, per client, message gaps and rates; only every `--sample`th client parses
 * its messages (seq, updated_at) so that parsing does not make this process the bottleneck.
 * Driven over IPC by bench/realtime.ts: "start" and "stop" bound the measured window, "tick"
 * carries the stored seq read from the database.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    count: { type: 'string' },
    sample: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '100' },
  },
});
const url = values.url!;
const count = Number(values.count);
const sampleEvery = Number(values.sample);
const send = (m: unknown) => process.send!(m);

// Enough arrival times per client to count a 5 s window at 2 messages a second.
const RING = 16;
const sockets: WebSocket[] = [];
const lastAt = new Float64Array(count);
const maxGap = new Float64Array(count);
const minGap = new Float64Array(count).fill(Infinity);
const received = new Uint32Array(count);
const recent = new Float64Array(count * RING); // the last RING arrival times, a ring per client
const maxIn1s = new Uint8Array(count);
const maxRate = new Float32Array(count);
const heldSeq = new Float64Array(count).fill(-1);
const staleness: number[] = [];
// The stored seq as the orchestrator reads it every 50 ms: when the store first moved past a seq.
const storeSeq: number[] = [];
const storeAt: number[] = [];
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
let measuring = false;
let windowStart = 0;
let failed = 0;
let closedEarly = 0;

function onMessage(i: number, data: Buffer): void {
  const now = performance.timeOrigin + performance.now();
  if (i % sampleEvery === 0) {
    const m = JSON.parse(data.toString());
    heldSeq[i] = m.seq;
  }
  if (measuring) {
    if (lastAt[i] >= windowStart) {
      const gap = now - lastAt[i];
      if (gap > maxGap[i]) maxGap[i] = gap;
      if (gap < minGap[i]) minGap[i] = gap;
    } else if (now - windowStart > maxGap[i]) maxGap[i] = now - windowStart;
    received[i]++;
    let in1s = 1;
    let intervals = 0;
    let oldest = now;
    for (let k = i * RING; k < (i + 1) * RING; k++) {
      if (now - recent[k] < 1000) in1s++;
      if (now - recent[k] < 5000) {
        intervals++;
        oldest = Math.min(oldest, recent[k]);
      }
    }
    if (in1s > maxIn1s[i]) maxIn1s[i] = in1s;
    // Messages per second over the last 5 s (at least 4 s of them): arrival jitter evens out.
    if (now - oldest >= 4000) maxRate[i] = Math.max(maxRate[i], (intervals * 1000) / (now - oldest));
    recent[i * RING + (received[i] % RING)] = now;
  }
  lastAt[i] = now;
}

function open(i: number): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    sockets[i] = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      resolve();
    });
    ws.on('message', (data: Buffer) => onMessage(i, data));
    ws.on('error', () => {});
    ws.on('close', () => {
      if (!opened) {
        failed++;
        resolve();
      } else closedEarly++;
    });
  });
}

async function connectAll(): Promise<void> {
  let next = 0;
  const concurrency = Number(values.concurrency);
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await open(next++);
    }),
  );
  send({ type: 'connected', ok: count - failed, failed });
}

/** How long the store has been past `seq`: 0 while the client holds the newest stored state. */
function behindFor(seq: number, now: number): number {
  let lo = 0;
  let hi = storeSeq.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (storeSeq[mid] > seq) hi = mid;
    else lo = mid + 1;
  }
  return lo < storeSeq.length ? now - storeAt[lo] : 0;
}

process.on('message', (m: { type: string; seq?: number; at?: number; sample?: boolean }) => {
  if (m.type === 'start') {
    measuring = true;
    windowStart = Date.now();
    loopDelay.enable();
  } else if (m.type === 'tick') {
    if (storeSeq.length === 0 || m.seq! > storeSeq[storeSeq.length - 1]) {
      storeSeq.push(m.seq!);
      storeAt.push(m.at!);
    }
    if (!measuring || !m.sample) return;
    const now = Date.now();
    for (let i = 0; i < count; i += sampleEvery) if (heldSeq[i] >= 0) staleness.push(behindFor(heldSeq[i], now));
  } else if (m.type === 'stop') {
    measuring = false;
    const end = m.at!;
    // A client silent until the end has its silence counted as a gap too.
    for (let i = 0; i < count; i++) maxGap[i] = Math.max(maxGap[i], Math.min(end, Date.now()) - Math.max(lastAt[i], windowStart));
    send({
      type: 'report',
      open: sockets.filter((s) => s?.readyState === WebSocket.OPEN).length,
      closedEarly,
      received: received.reduce((s, n) => s + n, 0),
      maxGap: Array.from(maxGap),
      minGap: Array.from(minGap).filter(Number.isFinite),
      maxIn1s: Array.from(maxIn1s),
      maxRate: Array.from(maxRate),
      staleness,
      loopMaxMs: loopDelay.max / 1e6,
    });
  } else if (m.type === 'exit') {
    for (const s of sockets) s?.terminate();
    process.exit(0);
  }
});

await connectAll();
