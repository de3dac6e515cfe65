import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { sql } from 'kysely';
import { createDb, type Db } from '../src/db/client.js';
import { createDatabaseIfMissing, migrateToLatest } from '../src/db/migrate.js';
import { loadConfig } from '../src/shared/config.js';
import { parseClusterNodes, type RedisTarget } from '../src/shared/redis.js';
import {
  type BenchPoll,
  benchToken,
  cpuSnapshot,
  createBenchPoll,
  cpuUsed,
  deleteBenchNamespace,
  dropDatabase,
  ensureWrk,
  flags,
  projectRoot,
  runWrk,
  startRole,
  waitHttp,
  type CpuSnapshot,
  type WrkResult,
} from './lib.js';
import { ensureRedisCluster } from './redis-cluster.js';

/**
 * bench:scale — one poll (or, with --polls 3, three at once) through the real stack on one
 * Redis and on a Redis Cluster, with 1 API + 1 worker process and with 2 + 2, and for each setup:
 * accepted votes/s, latency, refusals, accept-to-counted lag (over every vote of the run, from
 * `votes.accepted_at` and `votes.created_at`), the time until the results equal the 202s, CPU per
 * vote of every process, PostgreSQL and every Redis node, each master's share of the Redis CPU,
 * and the ratio to a bare node:http server (as many as there are APIs) under the same wrk load.
 *
 *   npm run bench:scale -- --redis both --procs both --polls 1 --seconds 30 --connections 64 --threads 2
 */
const opts = flags({
  redis: 'both',
  procs: 'both',
  polls: '1',
  seconds: '30',
  connections: '64',
  threads: '2',
  'warm-seconds': '3',
  'noop-seconds': '10',
  'base-port': '3300',
  'single-url': 'redis://127.0.0.1:6379',
  'cluster-port': '7000',
});
const pick = <T extends string>(v: string, all: T[], name: string): T[] => {
  if (v === 'both') return all;
  if (!all.includes(v as T)) throw new Error(`--${name} must be ${all.join('|')}|both, not ${v}`);
  return [v as T];
};
const redisModes = pick(opts.redis, ['single', 'cluster'], 'redis');
const procCounts = pick(opts.procs, ['1', '2'], 'procs').map(Number);
const pollCount = Number(opts.polls);
if (![1, 3].includes(pollCount)) throw new Error('--polls must be 1 or 3');
const seconds = Number(opts.seconds);
const connections = Number(opts.connections);
const basePort = Number(opts['base-port']);
const base = loadConfig();
ensureWrk();

const script = path.join(projectRoot, 'bench/wrk-votes.lua');
const commandLine = `npm run bench:scale -- ${process.argv.slice(2).join(' ')}`.trim();
/** wrk threads for `procs` servers: each thread talks to one server, so a multiple of them. */
const threadsFor = (procs: number) => Math.max(procs, Math.ceil(Number(opts.threads) / procs) * procs);

const dbUrl = new URL(base.DATABASE_URL);
dbUrl.pathname = '/polls_bench_scale';
const databaseUrl = dbUrl.toString();

// Every child, namespace and database this run made: stopped and removed on the way out, also on errors and ^C.
const children = new Set<ChildProcess>();
const stopping = new WeakSet<ChildProcess>();
/** Roles that died while they were needed: the setup they belong to fails. */
const crashed: string[] = [];
const namespaces = new Map<string, string | RedisTarget>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
async function stopChildren(): Promise<void> {
  const running = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of running) {
    stopping.add(c);
    c.kill('SIGTERM');
  }
  await Promise.all(
    running.map(
      (c) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => (c.kill('SIGKILL'), resolve()), 5000);
          c.once('exit', () => (clearTimeout(timer), resolve()));
        }),
    ),
  );
  children.clear();
}
async function cleanUp(): Promise<void> {
  await stopChildren();
  for (const [ns, target] of namespaces) {
    await deleteBenchNamespace(ns, target).catch((e) => console.error(`could not delete Redis namespace ${ns}: ${e}`));
    namespaces.delete(ns);
  }
  await dropDatabase(databaseUrl).catch((e) => console.error(`could not drop the bench database: ${e}`));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

function start(file: string, env: Record<string, string>, label: string): ChildProcess {
  const child = startRole(file, env, label);
  children.add(child);
  child.once('exit', (code, signal) => {
    if (!stopping.has(child)) {
      console.error(`[${label}] exited early (code ${code}, signal ${signal})`);
      crashed.push(label);
    }
    children.delete(child);
  });
  return child;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);

/** Sum of one counter (every label set) over the /metrics of several processes. */
async function counterSum(urls: string[], name: string): Promise<number> {
  const texts = await Promise.all(urls.map(async (u) => (await fetch(`${u}/metrics`)).text()));
  return sum(texts.flatMap((t) => [...t.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)`, 'gm'))].map((m) => Number(m[1]))));
}

/** A histogram's cumulative bucket counts (by upper bound, ms), summed over several processes' /metrics. */
async function histogram(urls: string[], name: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const u of urls) {
    const text = await (await fetch(`${u}/metrics`)).text();
    for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} ([\\d.e+-]+)`, 'gm'))) {
      const le = m[1] === '+Inf' ? Infinity : Number(m[1]) * 1000;
      out.set(le, (out.get(le) ?? 0) + Number(m[2]));
    }
  }
  return out;
}

/** Quantile q of the observations between two readings of a histogram, interpolated in its bucket (as Prometheus does). */
function histogramQuantile(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = counts[counts.length - 1] ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i] >= rank) {
      const lo = i === 0 ? 0 : bounds[i - 1];
      const below = i === 0 ? 0 : counts[i - 1];
      if (bounds[i] === Infinity) return lo;
      return lo + ((bounds[i] - lo) * (rank - below)) / Math.max(counts[i] - below, 1);
    }
  }
  return NaN;
}

const voteArgs = (polls: BenchPoll[]) => polls.flatMap((p) => [`/api/v1/polls/${p.poll_id}/votes`, JSON.stringify({ options: [p.options[0].option_id] })]);

interface Row {
  redis: string;
  procs: number;
  polls: number;
  partitions: number;
  queues: number;
  wrk: WrkResult;
  threads: number;
  votesPerSecond: number;
  accepted: number;
  counted: number;
  pendingReview: number;
  settled: number;
  convergedMs: number;
  lag: { n: number; p50: number; p99: number; max: number };
  commitLag: { p50: number; p99: number };
  /** CPU µs per accepted vote: per role process, PostgreSQL, per Redis node (with its role). */
  cpu: { procs: Record<string, number>; postgres: number; redis: Record<string, { us: number; role: string; share: number }> };
  windowSeconds: number;
}

/** The PostgreSQL processes that work for this run: the bench database's backends and the server's own background processes. */
async function benchPostgresPids(db: Db): Promise<number[]> {
  const { rows } = await sql<{ pid: number }>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR (datname IS NULL AND backend_type <> 'client backend')`.execute(db);
  return rows.map((r) => r.pid);
}

async function runSetup(mode: 'single' | 'cluster', procs: number): Promise<Row> {
  const namespace = `benchscale${Date.now().toString(36)}`;
  const seeds = mode === 'cluster' ? await ensureRedisCluster(Number(opts['cluster-port'])) : '';
  const target: RedisTarget = mode === 'cluster' ? { url: '', clusterNodes: parseClusterNodes(seeds) } : { url: opts['single-url'], clusterNodes: null };
  const redisNodes = mode === 'cluster' ? seeds.split(',') : [new URL(opts['single-url']).host];
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: opts['single-url'],
    REDIS_CLUSTER_NODES: seeds,
    REDIS_NAMESPACE: namespace,
    TRUST_PROXY: 'loopback',
    LOG_LEVEL: 'warn',
    JWT_SECRET: base.JWT_SECRET,
  };
  const { VOTE_PARTITIONS: partitions, VOTE_QUEUES: queues } = loadConfig({ ...process.env, ...env });
  const threads = threadsFor(procs);
  const label = `${mode} Redis, ${procs} API + ${procs} worker${procs > 1 ? 's' : ''}`;
  console.log(
    `\n## ${label}: ${pollCount} poll(s), ${partitions} partition(s), ${queues} vote queue(s), ${seconds}s, ${connections} connections, ${threads} wrk threads`,
  );

  await dropDatabase(databaseUrl);
  await createDatabaseIfMissing(databaseUrl);
  const db = createDb(databaseUrl, 2);
  namespaces.set(namespace, target);
  try {
    await migrateToLatest(db);
    const pids: Record<string, number> = {};
    const apis: string[] = [];
    const workers: string[] = [];
    for (let i = 0; i < procs; i++) {
      const apiPort = basePort + i;
      const workerPort = basePort + 10 + i;
      pids[`api${i + 1}`] = start('src/api/main.js', { ...env, PORT: String(apiPort), WORKER_METRICS_PORT: String(workerPort) }, `api${i + 1}`).pid!;
      pids[`worker${i + 1}`] = start('src/workers/main.js', { ...env, PORT: String(apiPort), WORKER_METRICS_PORT: String(workerPort) }, `worker${i + 1}`).pid!;
      apis.push(`http://127.0.0.1:${apiPort}`);
      workers.push(`http://127.0.0.1:${workerPort}`);
    }
    await Promise.all([...apis, ...workers].map((u) => waitHttp(`${u}/readyz`, 30_000)));
    const hosts = apis.map((u) => new URL(u).host);

    const token = await benchToken(base.JWT_SECRET);
    const createPoll = (question: string) => createBenchPoll(apis[0], token, { question });
    // Counted ballots (results plus those held for review) of some polls, straight from the counters.
    const countedOf = async (pollIds: number[]) => {
      const { rows } = await sql<{ total: string; pending: string }>`
        SELECT coalesce(sum(total_votes), 0) AS total, coalesce(sum(pending_review), 0) AS pending FROM poll_tallies WHERE poll_id = ANY(${pollIds})`.execute(
        db,
      );
      return { total: Number(rows[0].total), pending: Number(rows[0].pending) };
    };
    const accepted = () => counterSum(apis, 'votes_accepted_total');
    /** Waits until the counted ballots of `pollIds` equal the API's 202s (minus `offset`) and stop moving. */
    const converge = async (pollIds: number[], offset: number, since: number) => {
      let [a, c] = [(await accepted()) - offset, await countedOf(pollIds)];
      let convergedMs = -1;
      let lastAcceptedRead = Date.now();
      for (let stableSince = Date.now(); Date.now() - stableSince < 300 && Date.now() - since < 120_000; ) {
        await sleep(10);
        // The 202 counter only moves for requests in flight at the deadline: read it less often than the DB.
        const a2 = Date.now() - lastAcceptedRead >= 100 ? ((lastAcceptedRead = Date.now()), (await accepted()) - offset) : a;
        const c2 = await countedOf(pollIds);
        if (a2 !== a || c2.total !== c.total || c2.pending !== c.pending) stableSince = Date.now();
        const done = c2.total + c2.pending >= a2;
        if (done && convergedMs < 0) convergedMs = Date.now() - since;
        if (!done) convergedMs = -1;
        [a, c] = [a2, c2];
      }
      return { accepted: a, counted: c.total + c.pending, pending: c.pending, convergedMs };
    };

    // Warm-up on its own poll (JIT, pools, caches, the lease of every vote queue), drained before the measured window.
    const warm = await createPoll('Warm-up');
    const wrkBase = { url: apis[0], script, connections, threads, hosts };
    await runWrk({ ...wrkBase, seconds: Number(opts['warm-seconds']), args: voteArgs([warm]) });
    const warmed = await converge([warm.poll_id], 0, Date.now());
    const offset = await accepted();
    if (warmed.counted < warmed.accepted) console.warn(`warm-up: only ${warmed.counted} of ${warmed.accepted} counted after 120 s`);

    const polls = await Promise.all(Array.from({ length: pollCount }, (_, i) => createPoll(`Viral ${i + 1}?`)));
    const pollIds = polls.map((p) => p.poll_id);
    await sleep(300);
    const pgBefore = await benchPostgresPids(db);
    const cpuBefore: CpuSnapshot = await cpuSnapshot(pids, redisNodes, pgBefore);
    const lagBefore = await histogram(workers, 'vote_ingest_lag_seconds');
    const started = Date.now();
    const load = await runWrk({ ...wrkBase, seconds, args: voteArgs(polls) });
    const loadEnded = Date.now();
    const result = await converge(pollIds, offset, loadEnded);
    if (crashed.length) throw new Error(`${crashed.join(', ')} died during the run`);
    // The window covers the load and the drain of its backlog: every vote's commit is in it.
    const cpuAfter = await cpuSnapshot(pids, redisNodes, [...new Set([...pgBefore, ...(await benchPostgresPids(db))])]);
    const windowSeconds = (Date.now() - started) / 1000;
    const lagAfter = await histogram(workers, 'vote_ingest_lag_seconds');
    await sleep(1000);
    const settledCounts = await Promise.all(
      pollIds.map(async (id) => ((await (await fetch(`${apis[0]}/api/v1/polls/${id}/results`)).json()) as { total_votes: number }).total_votes),
    );
    const settled = sum(settledCounts) + (await countedOf(pollIds)).pending;

    // accepted_at is stamped at admission; created_at is now() of the commit transaction that wrote the row.
    const { rows: lagRows } = await sql<{ n: number; p50: number; p99: number; max: number }>`
      SELECT count(*)::int AS n,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
             max(ms) AS max
      FROM (SELECT extract(epoch FROM created_at - accepted_at) * 1000 AS ms FROM votes WHERE poll_id = ANY(${pollIds})) t`.execute(db);

    const used = cpuUsed(cpuBefore, cpuAfter);
    const perVote = (s: number) => (s * 1e6) / Math.max(result.accepted, 1);
    const masterCpu = sum(
      Object.values(used.redis)
        .filter((r) => r.role === 'master')
        .map((r) => r.cpu),
    );
    const seen202 = load.statuses['202'] ?? 0;
    const row: Row = {
      redis: mode,
      procs,
      polls: pollCount,
      partitions,
      queues,
      wrk: load,
      threads,
      votesPerSecond: seen202 / seconds,
      accepted: result.accepted,
      counted: result.counted,
      pendingReview: result.pending,
      settled,
      convergedMs: result.convergedMs,
      lag: { n: Number(lagRows[0].n), p50: Number(lagRows[0].p50), p99: Number(lagRows[0].p99), max: Number(lagRows[0].max) },
      commitLag: { p50: histogramQuantile(lagBefore, lagAfter, 0.5), p99: histogramQuantile(lagBefore, lagAfter, 0.99) },
      cpu: {
        procs: Object.fromEntries(Object.entries(used.procs).map(([k, v]) => [k, perVote(v)])),
        postgres: perVote(used.postgres),
        redis: Object.fromEntries(
          Object.entries(used.redis).map(([n, r]) => [n, { us: perVote(r.cpu), role: r.role, share: r.role === 'master' ? r.cpu / masterCpu : NaN }]),
        ),
      },
      windowSeconds,
    };
    printDetails(row);
    return row;
  } finally {
    await stopChildren();
    await db.destroy();
    await deleteBenchNamespace(namespace, target).catch((e) => console.error(`could not delete Redis namespace ${namespace}: ${e}`));
    namespaces.delete(namespace);
    await dropDatabase(databaseUrl);
  }
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : '–');
const others = (r: Row) => {
  const o = Object.entries(r.wrk.statuses)
    .filter(([s]) => s !== '202')
    .map(([s, n]) => `${s}×${n}`);
  if (r.wrk.socketErrors) o.push(`socket errors×${r.wrk.socketErrors}`);
  return o.length ? o.join(', ') : 'none';
};
const roleCpu = (r: Row, role: 'api' | 'worker') =>
  Object.entries(r.cpu.procs)
    .filter(([k]) => k.startsWith(role))
    .map(([, v]) => f0(v))
    .join(' + ');
const masters = (r: Row) => Object.entries(r.cpu.redis).filter(([, n]) => n.role === 'master');
const redisTotal = (r: Row) => sum(Object.values(r.cpu.redis).map((n) => n.us));
const busiest = (r: Row) => Math.max(...masters(r).map(([, n]) => n.share));

function printDetails(r: Row): void {
  const { wrk } = r;
  console.log(
    `accepted votes/s:     ${f0(r.votesPerSecond)} (${wrk.statuses['202'] ?? 0} × 202 seen by wrk in ${seconds}s, ${r.accepted} sent by the APIs; others: ${others(r)})`,
  );
  console.log(`latency:              p50 ${f1(wrk.p50ms)} ms, p90 ${f1(wrk.p90ms)} ms, p99 ${f1(wrk.p99ms)} ms, max ${f1(wrk.maxms)} ms`);
  console.log(
    `accept → commit:      p50 ${f1(r.lag.p50)} ms, p99 ${f1(r.lag.p99)} ms, max ${f1(r.lag.max)} ms over ${r.lag.n} votes (created_at − accepted_at; created_at is the commit transaction's start)`,
  );
  console.log(
    `accept → committed:   p50 ≈ ${f1(r.commitLag.p50)} ms, p99 ≈ ${f1(r.commitLag.p99)} ms (the workers' vote_ingest_lag_seconds histogram, after the commit)`,
  );
  console.log(
    `results == 202s:      ${r.counted === r.accepted ? 'yes' : 'NO'} ${r.convergedMs} ms after the load (counted ${r.counted}, of which held for review ${r.pendingReview}; 1 s later ${r.settled})`,
  );
  const procs = Object.entries(r.cpu.procs)
    .map(([k, v]) => `${k} ${f0(v)}`)
    .join(', ');
  console.log(`CPU µs/vote:          ${procs}, postgres ${f0(r.cpu.postgres)} (over ${r.windowSeconds.toFixed(1)} s: load + drain)`);
  const nodes = Object.entries(r.cpu.redis).map(
    ([n, v]) => `${n} ${v.role === 'master' ? 'M' : 'r'} ${f0(v.us)}${v.role === 'master' ? ` (${pct(v.share)})` : ''}`,
  );
  console.log(`Redis CPU µs/vote:    ${nodes.join(', ')}; busiest master ${pct(busiest(r))} of the masters' CPU`);
}

const rows: Row[] = [];
const noop = new Map<number, WrkResult>();
let failed = false;
try {
  for (const mode of redisModes) for (const procs of procCounts) rows.push(await runSetup(mode, procs));

  // The ceiling: as many bare node:http servers as APIs, the same wrk script and settings, the same run.
  for (const procs of procCounts) {
    const hosts = Array.from({ length: procs }, (_, i) => `127.0.0.1:${basePort + 50 + i}`);
    for (const h of hosts) start('bench/noop-server.js', { PORT: h.split(':')[1] }, 'noop');
    await sleep(500);
    const polls = Array.from({ length: pollCount }, (_, i) => ({ poll_id: i + 1, options: [{ option_id: 1 }] }));
    const res = await runWrk({
      url: `http://${hosts[0]}`,
      script,
      seconds: Number(opts['noop-seconds']),
      connections,
      threads: threadsFor(procs),
      args: voteArgs(polls),
      hosts,
    });
    noop.set(procs, res);
    console.log(
      `\nbare node:http ×${procs}: ${f0((res.statuses['202'] ?? 0) / Number(opts['noop-seconds']))} req/s (p50 ${f1(res.p50ms)} ms, p99 ${f1(res.p99ms)} ms)`,
    );
    await stopChildren();
  }
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await cleanUp();
}

if (rows.length) {
  const noopRate = (procs: number) => {
    const n = noop.get(procs);
    return n ? (n.statuses['202'] ?? 0) / Number(opts['noop-seconds']) : NaN;
  };
  console.log('');
  console.log(`Command: ${commandLine}`);
  console.log(`(${seconds}s per setup, ${connections} connections; CPU µs per accepted vote over the load and its drain; lag over every vote of the run)`);
  console.log('');
  console.log(
    '| Redis | procs | polls × partitions / queues | votes/s | p50 / p99 ms | non-202 | lag p50 / p99 / max ms | committed p99 ≈ ms | drain ms | API µs/vote | worker µs/vote | PostgreSQL µs/vote | Redis µs/vote | master shares (busiest) | × node:http |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const shares = masters(r)
      .map(([n, v]) => `${n.split(':')[1]} ${pct(v.share)}`)
      .join(' · ');
    const ok = busiest(r) <= 0.45 ? '✓' : '✗';
    console.log(
      `| ${r.redis} | ${r.procs}+${r.procs} | ${r.polls} × ${r.partitions} / ${r.queues} | ${f0(r.votesPerSecond)} | ${f1(r.wrk.p50ms)} / ${f1(r.wrk.p99ms)} | ${others(r)} | ` +
        `${f1(r.lag.p50)} / ${f1(r.lag.p99)} / ${f1(r.lag.max)} | ${f1(r.commitLag.p99)} | ${r.counted === r.accepted ? r.convergedMs : `NO (${r.counted}/${r.accepted})`} | ` +
        `${roleCpu(r, 'api')} | ${roleCpu(r, 'worker')} | ${f0(r.cpu.postgres)} | ${f0(redisTotal(r))} | ${r.redis === 'cluster' ? `${shares} (busiest ${pct(busiest(r))} ${ok})` : `${shares} (one server)`} | ${(r.votesPerSecond / noopRate(r.procs)).toFixed(3)} |`,
    );
  }
  console.log('');
  for (const [procs, n] of noop) console.log(`bare node:http ×${procs}: ${f0(noopRate(procs))} req/s, p99 ${f1(n.p99ms)} ms`);
}
const allCounted = rows.every((r) => r.counted === r.accepted && r.settled === r.accepted);
process.exit(failed || !allCounted || rows.length === 0 ? 1 : 0);
