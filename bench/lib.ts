import { execSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import pg from 'pg';
import { createRedis, deleteNamespace, type RedisTarget, whenReady } from '../src/shared/redis.js';

/** dist/ root of the compiled project (benches run from dist/bench). */
export const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const projectRoot = path.resolve(distRoot, '..');

/** Reads `--name value` flags with defaults. */
export function flags<T extends Record<string, string>>(defaults: T): T {
  const out: Record<string, string> = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) continue;
    out[m[1]] = m[2] ?? (argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[++i] : 'true');
  }
  return out as T;
}

/** Starts a compiled role (e.g. 'src/api/main.js') as a child process. */
export function startRole(file: string, env: Record<string, string>, label: string): ChildProcess {
  // BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to every role started.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.join(distRoot, file)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[${label}] ${d}`));
  return child;
}

/** Waits until GET url answers 200. */
export async function waitHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Makes sure wrk is on the PATH (installing the Debian package if allowed). */
export function ensureWrk(): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return;
  console.log('wrk not found; installing it with apt-get (Debian package "wrk")');
  spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' });
  if (spawnSync('wrk', ['--version']).error !== undefined) {
    throw new Error('wrk is required: apt-get install wrk');
  }
}

export interface WrkResult {
  requestsPerSecond: number;
  statuses: Record<string, number>;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  maxms: number;
  /** wrk's socket errors (connect, read, write, timeout), 0 when it printed none. */
  socketErrors: number;
  raw: string;
}

/** Runs wrk with a Lua script and parses what it prints. */
export function runWrk(opts: {
  url: string;
  script: string;
  seconds: number;
  connections: number;
  threads: number;
  args: string[];
  /** host:port of each server: wrk-votes.lua points thread i at the (i mod n)-th (WRK_HOSTS). */
  hosts?: string[];
}): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'wrk',
      [`-t${opts.threads}`, `-c${opts.connections}`, `-d${opts.seconds}s`, '--timeout', '10s', '-s', opts.script, opts.url, '--', ...opts.args],
      { env: { ...process.env, WRK_HOSTS: (opts.hosts ?? []).join(',') } },
    );
    // wrk dies with the bench, also when the bench exits on an error or ^C mid-run.
    const kill = () => child.kill('SIGKILL');
    process.on('exit', kill);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', () => {
      process.off('exit', kill);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const lat = /LATENCY_US p50=(\d+) p90=(\d+) p99=(\d+) max=(\d+)/.exec(out);
      const statuses = JSON.parse(/STATUSES (\{.*\})/.exec(out)?.[1] ?? '{}');
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      resolve({
        requestsPerSecond: rps,
        statuses,
        p50ms: lat ? Number(lat[1]) / 1000 : NaN,
        p90ms: lat ? Number(lat[2]) / 1000 : NaN,
        p99ms: lat ? Number(lat[3]) / 1000 : NaN,
        maxms: lat ? Number(lat[4]) / 1000 : NaN,
        socketErrors: sock ? sock.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
        raw: out,
      });
    });
  });
}

/** A signed token for the bench's poll creator. */
export function benchToken(secret: string, sub = 1, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(String(sub)).setExpirationTime('2h').sign(new TextEncoder().encode(secret));
}

export interface BenchPoll {
  poll_id: number;
  options: Array<{ option_id: number }>;
}

/** Creates an ACTIVE SINGLE_CHOICE poll (yes / no, CAPTCHA when flagged unless `overrides` say otherwise) through the API. */
export async function createBenchPoll(apiUrl: string, token: string, overrides: Record<string, unknown> = {}): Promise<BenchPoll> {
  const res = await fetch(`${apiUrl}/api/v1/polls`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      question: 'Viral?',
      poll_type: 'SINGLE_CHOICE',
      options: [{ text: 'yes' }, { text: 'no' }],
      status: 'ACTIVE',
      settings: { captcha: 'flagged' },
      ...overrides,
    }),
  });
  if (res.status !== 201) throw new Error(`create poll: ${res.status} ${await res.text()}`);
  return (await res.json()) as BenchPoll;
}

/** Drops a bench database so every run starts empty. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Deletes a bench run's Redis keys and queues so runs do not pile up in Redis. */
export async function deleteBenchNamespace(
  namespace: string,
  redisUrl: string | RedisTarget = process.env.REDIS_URL ?? 'redis://localhost:6379',
): Promise<void> {
  const redis = createRedis(redisUrl);
  try {
    // A cluster client knows its masters only once it is ready; before, there is nothing to scan.
    await whenReady(redis, 10_000);
    if (redis.status !== 'ready') throw new Error(`Redis not ready after 10 s (${redis.status})`);
    await deleteNamespace(redis, namespace);
  } finally {
    redis.disconnect();
  }
}

const CLK_TCK = (() => {
  try {
    return (
      Number(
        execSync('getconf CLK_TCK', { stdio: ['ignore', 'pipe', 'ignore'] })
          .toString()
          .trim(),
      ) || 100
    );
  } catch {
    return 100;
  }
})();

/** CPU seconds (utime + stime) a process has used, from /proc; NaN once it is gone. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Pids of the local PostgreSQL server's processes, from /proc (empty where there is no /proc). */
export function postgresPids(): number[] {
  const pids: number[] = [];
  for (const pid of fs.existsSync('/proc') ? fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)) : []) {
    try {
      if (/^\d+ \(postgres\)/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) pids.push(Number(pid));
    } catch {
      // the process ended between listing and reading
    }
  }
  return pids;
}

/** CPU seconds (used_cpu_sys + used_cpu_user) and role of one Redis server, from INFO. */
export async function redisServerCpu(url: string): Promise<{ cpu: number; role: string }> {
  const redis = createRedis(url);
  try {
    const info = await redis.info();
    const field = (k: string) => new RegExp(`^${k}:([^\\r\\n]+)`, 'm').exec(info)?.[1] ?? '';
    return { cpu: Number(field('used_cpu_sys')) + Number(field('used_cpu_user')), role: field('role') };
  } finally {
    redis.disconnect();
  }
}

/** A CPU reading of many processes and Redis servers at one moment (see cpuSnapshot). */
export interface CpuSnapshot {
  /** Each labelled process's CPU seconds. */
  procs: Record<string, number>;
  /** Each Redis server's CPU seconds and role, by host:port. */
  redis: Record<string, { cpu: number; role: string }>;
  /** Each PostgreSQL process's CPU seconds, by pid. */
  postgres: Map<number, number>;
}

/**
 * CPU used so far by N labelled processes (their /proc stat), N Redis servers (INFO cpu, each
 * `host:port`) and PostgreSQL (`pgPids`, by default every process of the local server).
 */
export async function cpuSnapshot(pids: Record<string, number>, redisNodes: string[], pgPids: number[] = postgresPids()): Promise<CpuSnapshot> {
  const procs = Object.fromEntries(Object.entries(pids).map(([label, pid]) => [label, procCpuSeconds(pid)]));
  const redis = Object.fromEntries(await Promise.all(redisNodes.map(async (n) => [n, await redisServerCpu(`redis://${n}`)] as const)));
  const postgres = new Map(pgPids.map((pid) => [pid, procCpuSeconds(pid)] as const));
  return { procs, redis, postgres };
}

/**
 * CPU seconds used between two snapshots: per labelled process, per Redis server (with its role
 * at the end), and by PostgreSQL (processes started in between count from zero; those that
 * ended in between are lost, so keep the pools' connections alive across the window).
 */
export function cpuUsed(before: CpuSnapshot, after: CpuSnapshot) {
  const procs = Object.fromEntries(Object.keys(after.procs).map((k) => [k, after.procs[k] - (before.procs[k] ?? 0)]));
  const redis = Object.fromEntries(Object.entries(after.redis).map(([n, r]) => [n, { cpu: r.cpu - (before.redis[n]?.cpu ?? 0), role: r.role }]));
  let postgres = 0;
  for (const [pid, cpu] of after.postgres) if (Number.isFinite(cpu)) postgres += cpu - (before.postgres.get(pid) ?? 0);
  return { procs, redis, postgres };
}

/**
 * CPU seconds used so far by the API and worker processes (their own process_cpu_seconds_total),
 * Redis (INFO cpu) and PostgreSQL (its processes in /proc, where the server is local).
 */
export async function cpuSeconds(urls: { api: string; workers: string }, redisUrl = process.env.REDIS_URL ?? 'redis://localhost:6379') {
  const own = async (url: string) => Number(/^process_cpu_seconds_total\{[^}]*\} ([\d.e+-]+)/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? NaN);
  const redisCpu = (await redisServerCpu(redisUrl)).cpu;
  const postgres = postgresPids().reduce((s, pid) => s + (procCpuSeconds(pid) || 0), 0);
  return { api: await own(urls.api), workers: await own(urls.workers), redis: redisCpu, postgres };
}
