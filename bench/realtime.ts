/**
 * `npm run bench:realtime`: N WebSocket clients watch one poll while votes flow at a steady
 * rate through the real pipeline (API + workers + gateway, each its own process from dist/),
 * then prints delivery rates, staleness against the stored counts, and the gateway's RSS and
 * CPU. Bounded in time; everything stays on 127.0.0.1.
 *
 *   npm run bench:realtime -- --clients 15000 --rate 2000 --seconds 30
 *   (or --api-url/--ws-url [--gateway-pid] to target running processes; DATABASE_URL must then
 *   name their database, for the staleness samples)
 */
import { execSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchToken, createBenchPoll } from './lib.js';
import pg from 'pg';
import { createDb } from '../src/db/client.js';
import { createDatabaseIfMissing, migrateToLatest } from '../src/db/migrate.js';
import { loadConfig } from '../src/shared/config.js';
import { createRedis, deleteNamespace } from '../src/shared/redis.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    // Each process may hold at most 20,000 open files: 7,500 sockets per process leaves room.
    'per-process': { type: 'string', default: '7500' },
    sample: { type: 'string', default: '20' },
    'api-url': { type: 'string' },
    'ws-url': { type: 'string' },
    'gateway-pid': { type: 'string' },
  },
});
const CLIENTS = Number(args.clients);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '..');
const config = loadConfig();
const started: ChildProcess[] = [];
const log = (line: string) => console.log(`[bench] ${line}`);
const max = (xs: number[]) => xs.reduce((m, x) => Math.max(m, x), -Infinity);
const min = (xs: number[]) => xs.reduce((m, x) => Math.min(m, x), Infinity);
/** The same URL on 127.0.0.1 when it names localhost (which may resolve to ::1). */
function onLoopback(raw: string): string {
  const url = new URL(raw);
  if (url.hostname === 'localhost') url.hostname = '127.0.0.1';
  return url.toString();
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not become ready at ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts API, workers and gateway from dist/ on a fresh database and Redis namespace. */
async function startPipeline() {
  const dbUrl = new URL(onLoopback(config.DATABASE_URL));
  dbUrl.pathname = `/polls_bench_${randomBytes(4).toString('hex')}`;
  const databaseUrl = dbUrl.toString();
  await createDatabaseIfMissing(databaseUrl);
  const db = createDb(databaseUrl, 1);
  await migrateToLatest(db);
  await db.destroy();
  const namespace = `bench${randomBytes(4).toString('hex')}`;
  const [apiPort, wsPort, workerPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    REDIS_URL: onLoopback(config.REDIS_URL),
    REDIS_NAMESPACE: namespace,
    PORT: String(apiPort),
    REALTIME_PORT: String(wsPort),
    WORKER_METRICS_PORT: String(workerPort),
    TRUST_PROXY: 'loopback',
    VOTES_PER_IP_PER_POLL_PER_HOUR: '1000000',
    PREFIX_VOTES_LIMIT: '1000000000',
    WS_MAX_CONNECTIONS_PER_IP: '1000000',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  const run = (file: string) => {
    // BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to every role started.
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, path.join(dist, 'src', file)], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    started.push(child);
    return child;
  };
  const gateway = run('realtime/main.js');
  const apiRole = run('api/main.js');
  const workers = run('workers/main.js');
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const wsUrl = `ws://127.0.0.1:${wsPort}`;
  const cleanup = async () => {
    const redis = createRedis(onLoopback(config.REDIS_URL));
    await deleteNamespace(redis, namespace);
    redis.disconnect();
    const admin = new pg.Client({ connectionString: Object.assign(new URL(databaseUrl), { pathname: '/postgres' }).toString() });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${dbUrl.pathname.slice(1)}" WITH (FORCE)`);
    await admin.end();
  };
  try {
    await Promise.all([waitReady(apiUrl, 'API'), waitReady(`http://127.0.0.1:${workerPort}`, 'workers'), waitReady(wsUrl.replace('ws', 'http'), 'gateway')]);
  } catch (err) {
    await stopStarted();
    await cleanup();
    throw err;
  }
  return { apiUrl, wsUrl, databaseUrl, gatewayPid: gateway.pid!, rolePids: { api: apiRole.pid!, workers: workers.pid! }, cleanup };
}

async function stopStarted(): Promise<void> {
  const running = started.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of running) c.kill('SIGTERM');
  await Promise.all(running.map((c) => new Promise((r) => c.once('exit', r))));
}

/** CPU seconds used and resident memory of a process, from /proc. */
function procStats(pid: number): { cpuSeconds: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpuSeconds: ticks / CLK_TCK, rssMiB: Number(rss) / 1024 };
}
const CLK_TCK = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}
const cpuOf = (pids: number[]) =>
  pids.reduce((sum, pid) => {
    try {
      return sum + procStats(pid).cpuSeconds;
    } catch {
      return sum;
    }
  }, 0);

/** One value of the gateway's /metrics (the event-loop figures cover the time since the last scrape). */
async function gatewayMetrics(httpUrl: string) {
  const text = await fetch(`${httpUrl}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    sent: value('realtime_messages_sent_total'),
    loopP99Ms: value('nodejs_eventloop_lag_p99_seconds') * 1000,
    loopMaxMs: value('nodejs_eventloop_lag_max_seconds') * 1000,
  };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function nextMessage<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" from a bench process in ${timeoutMs} ms`)), timeoutMs);
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
  });
}

async function main() {
  const target =
    args['api-url'] && args['ws-url']
      ? {
          apiUrl: args['api-url'],
          wsUrl: args['ws-url'],
          databaseUrl: config.DATABASE_URL,
          gatewayPid: Number(args['gateway-pid']) || 0,
          rolePids: {} as Record<string, number>,
          cleanup: async () => {},
        }
      : await startPipeline();
  const gatewayHttp = target.wsUrl.replace(/^ws/, 'http');
  const children: ChildProcess[] = [];
  try {
    const token = await benchToken(config.JWT_SECRET);
    const created = await createBenchPoll(target.apiUrl, token, {
      question: 'Realtime bench',
      options: [{ text: 'a' }, { text: 'b' }, { text: 'c' }, { text: 'd' }],
      settings: { captcha: 'off' },
    });
    const pollId = created.poll_id;
    log(`poll ${pollId}; API ${target.apiUrl}; gateway ${target.wsUrl}; ${CLIENTS} clients; ${RATE} votes/s; ${SECONDS} s`);

    const perProcess = Number(args['per-process']);
    const procs = Math.ceil(CLIENTS / perProcess);
    const connectStart = Date.now();
    const clientProcs = Array.from({ length: procs }, (_, i) => {
      const count = Math.floor(CLIENTS / procs) + (i < CLIENTS % procs ? 1 : 0);
      const child = fork(path.join(here, 'realtime-clients.js'), [
        '--url',
        `${target.wsUrl}/ws?poll_id=${pollId}`,
        '--count',
        String(count),
        '--sample',
        args.sample!,
      ]);
      children.push(child);
      // The instrument must not be what lags: its clients read as soon as a message arrives.
      try {
        os.setPriority(child.pid!, -5);
      } catch {
        /* not permitted: measure at the normal priority */
      }
      return child;
    });
    const connected = await Promise.all(clientProcs.map((c) => nextMessage<{ ok: number; failed: number }>(c, 'connected', 180_000)));
    const ok = connected.reduce((s, c) => s + c.ok, 0);
    const failed = connected.reduce((s, c) => s + c.failed, 0);
    log(`connected ${ok} clients (${failed} failed) in ${((Date.now() - connectStart) / 1000).toFixed(1)} s; votes start, warming up`);

    const sampler = new pg.Client({ connectionString: target.databaseUrl });
    await sampler.connect();
    let lastRead: Promise<unknown> = Promise.resolve();
    const readTally = () => {
      // One query at a time on the one connection.
      const read = lastRead
        .catch(() => {})
        .then(async () => {
          const before = Date.now();
          const { rows } = await sampler.query<{ seq: string; total_votes: string }>(
            'SELECT sum(seq) AS seq, sum(total_votes) AS total_votes FROM poll_tallies WHERE poll_id = $1',
            [pollId],
          );
          return { seq: Number(rows[0].seq), total: Number(rows[0].total_votes), at: (before + Date.now()) / 2 };
        });
      lastRead = read;
      return read;
    };
    let peakRss = 0;
    let ticks = 0;
    // The longest the stored counts stood still in the window: no client can be updated meanwhile.
    let lastSeq = -1;
    let lastChange = 0;
    let storeIdleMs = 0;
    let measuringFrom = Infinity;
    let reading = false;
    const ticker = setInterval(async () => {
      if (reading) return;
      reading = true;
      const sample = ++ticks % 5 === 0;
      const t = await readTally().catch(() => null);
      reading = false;
      if (t && t.seq !== lastSeq) {
        if (lastChange >= measuringFrom) storeIdleMs = Math.max(storeIdleMs, t.at - lastChange);
        lastSeq = t.seq;
        lastChange = t.at;
      }
      if (t) for (const c of clientProcs) c.send({ type: 'tick', seq: t.seq, at: t.at, sample });
      if (sample && target.gatewayPid) peakRss = Math.max(peakRss, procStats(target.gatewayPid).rssMiB);
    }, 50);
    const voter = fork(path.join(here, 'realtime-voter.js'), [
      '--api',
      target.apiUrl,
      '--poll',
      String(pollId),
      '--options',
      created.options.map((o) => o.option_id).join(','),
      '--rate',
      String(RATE),
    ]);
    children.push(voter);
    await new Promise((r) => setTimeout(r, Number(args.warmup) * 1000));

    const t0 = Date.now();
    measuringFrom = t0;
    const tally0 = await readTally();
    const sent0 = (await gatewayMetrics(gatewayHttp)).sent;
    const gw0 = target.gatewayPid ? procStats(target.gatewayPid) : null;
    // Who else used the shared cores in the window: on 2 cores the gateway competes with all of them.
    const roles: Record<string, number[]> = {
      ...Object.fromEntries(Object.entries(target.rolePids).map(([k, pid]) => [k, [pid]])),
      'clients (load)': clientProcs.map((c) => c.pid!),
      'voter (load)': [voter.pid!],
    };
    const roles0 = Object.fromEntries(Object.entries(roles).map(([k, pids]) => [k, cpuOf(pids)]));
    const busy0 = machineBusySeconds();
    for (const c of clientProcs) c.send({ type: 'start' });
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    // The window closes now for every client, however long the reads below take.
    const reportsPromise = Promise.all(
      clientProcs.map((c) => {
        const r = nextMessage<{
          open: number;
          closedEarly: number;
          received: number;
          maxGap: number[];
          minGap: number[];
          maxIn1s: number[];
          maxRate: number[];
          staleness: number[];
          loopMaxMs: number;
        }>(c, 'report', 60_000);
        c.send({ type: 'stop', at: Date.now() });
        return r;
      }),
    );
    clearInterval(ticker);
    const seconds = (Date.now() - t0) / 1000;
    const tally1 = await readTally();
    const gwMetrics = await gatewayMetrics(gatewayHttp);
    const sent1 = gwMetrics.sent;
    const gw1 = target.gatewayPid ? procStats(target.gatewayPid) : null;
    const roles1 = Object.fromEntries(Object.entries(roles).map(([k, pids]) => [k, cpuOf(pids)]));
    const busy1 = machineBusySeconds();
    await sampler.end();

    const reports = await reportsPromise;
    const votes = nextMessage<{ statuses: Record<string, number>; skipped: number }>(voter, 'report', 10_000);
    voter.send({ type: 'stop' });
    const voteReport = await votes;

    const maxGaps = reports.flatMap((r) => r.maxGap);
    const minGaps = reports.flatMap((r) => r.minGap);
    const maxIn1s = reports.flatMap((r) => r.maxIn1s);
    const maxRate = reports.flatMap((r) => r.maxRate);
    const staleness = reports.flatMap((r) => r.staleness);
    const received = reports.reduce((s, r) => s + r.received, 0);
    const open = reports.reduce((s, r) => s + r.open, 0);
    const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
    console.log('');
    console.log(
      `clients connected            ${ok} of ${CLIENTS} (${failed} failed, ${open} still open at the end, ${reports.reduce((s, r) => s + r.closedEarly, 0)} closed by the server)`,
    );
    console.log(
      `votes counted                ${fmt((tally1.total - tally0.total) / seconds)} /s over ${fmt(seconds, 1)} s (target ${RATE}); API answers ${JSON.stringify(voteReport.statuses)}, ${voteReport.skipped} not sent (512 in flight)`,
    );
    console.log(`stored counts stood still    at most ${fmt(storeIdleMs)} ms at a time (read every 50 ms)`);
    console.log(`messages sent (gateway)      ${fmt((sent1 - sent0) / seconds)} /s`);
    console.log(`messages received (clients)  ${fmt(received / seconds)} /s = ${fmt(received / seconds / Math.max(1, ok), 2)} per client per s`);
    // Arrival times jitter around the server's 500 ms spacing, so a 1 s window can catch a third message.
    console.log(`highest per-client rate      ${fmt(max(maxRate), 2)} messages/s (over any 4-5 s stretch); p50 client ${fmt(percentile(maxRate, 50), 2)}/s`);
    console.log(
      `per-client 1 s windows       most in any 1 s window ${max(maxIn1s)}; clients with 3+: ${maxIn1s.filter((n) => n > 2).length}; shortest gap between two messages ${fmt(min(minGaps))} ms (receive jitter)`,
    );
    console.log(
      `longest gap per client       p50 ${fmt(percentile(maxGaps, 50))} ms, p99 ${fmt(percentile(maxGaps, 99))} ms, max ${fmt(max(maxGaps))} ms; clients with a gap over 1 s: ${maxGaps.filter((g) => g > 1000).length}`,
    );
    console.log(
      `staleness (sampled clients)  p50 ${fmt(percentile(staleness, 50))} ms, p99 ${fmt(percentile(staleness, 99))} ms, max ${fmt(max(staleness))} ms (${staleness.length} samples every 250 ms: time since the stored seq, read every 50 ms, moved past the client's)`,
    );
    if (gw0 && gw1) {
      console.log(`gateway RSS                  ${fmt(gw1.rssMiB)} MiB at the end, peak ${fmt(Math.max(peakRss, gw1.rssMiB))} MiB`);
      console.log(`gateway CPU                  ${fmt(((gw1.cpuSeconds - gw0.cpuSeconds) / seconds) * 100)} % of one core`);
    } else console.log('gateway RSS / CPU            n/a (pass --gateway-pid)');
    console.log(
      `CPU of the others            ${Object.keys(roles)
        .map((k) => `${k} ${fmt(((roles1[k] - roles0[k]) / seconds) * 100)}%`)
        .join(', ')} (of one core)`,
    );
    console.log(
      `machine busy                 ${fmt(((busy1 - busy0) / seconds / os.cpus().length) * 100)} % of ${os.cpus().length} cores (PostgreSQL, Redis and the kernel's loopback TCP make up the rest)`,
    );
    console.log(`gateway event-loop delay     p99 ${fmt(gwMetrics.loopP99Ms)} ms, max ${fmt(gwMetrics.loopMaxMs)} ms`);
    console.log(`load-generator loop delay    max ${fmt(max(reports.map((r) => r.loopMaxMs)))} ms (client processes)`);
  } finally {
    for (const c of children) {
      if (c.connected) c.send({ type: 'exit' });
      setTimeout(() => c.kill('SIGKILL'), 5000).unref();
    }
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    await stopStarted();
    await target.cleanup();
  }
}

// Bounded whatever happens: a stuck run is killed rather than left holding sockets.
const guard = setTimeout(
  () => {
    console.error('[bench] took too long; stopping');
    for (const c of started) c.kill('SIGKILL');
    process.exit(1);
  },
  (SECONDS + 300) * 1000,
);
guard.unref();
main().then(
  () => process.exit(0),
  (err) => {
    console.error('[bench] failed:', err);
    for (const c of started) c.kill('SIGTERM');
    process.exit(1);
  },
);
