import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * A real Redis Cluster on loopback, from Debian's redis-server: `masters` masters with
 * `replicas` replicas each on consecutive ports. Tests and benches use it; CI starts the
 * shared one (ports 7000-7005) before the tests with `tsx bench/redis-cluster.ts ensure`.
 */
export interface LocalCluster {
  ports: number[];
  /** `host:port` seeds of the masters, as REDIS_CLUSTER_NODES takes them. */
  seeds: string;
  /** Ports of the current masters (after a failover, a former replica). */
  masterPorts(): number[];
  /** SIGKILLs the server on `port` (only servers this cluster started). */
  kill(port: number): void;
  /** Starts the server on `port` again with its node file (it rejoins as a replica of whoever took over). */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

const cli = (port: number, ...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });

function clusterOk(port: number): boolean {
  const r = cli(port, 'cluster', 'info');
  return r.status === 0 && /cluster_state:ok/.test(r.stdout) && /cluster_known_nodes:[1-9]/.test(r.stdout);
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function serverArgs(port: number, dir: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    path.join(dir, `nodes-${port}.conf`),
    // A dead master is replaced within a few seconds, not the default 15.
    '--cluster-node-timeout',
    '2000',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--appendfilename',
    `aof-${port}.aof`,
    '--appenddirname',
    `aof-${port}`,
    '--save',
    '',
    '--dir',
    dir,
    '--maxmemory-policy',
    'noeviction',
    '--protected-mode',
    'no',
  ];
}

/**
 * Starts a cluster on `basePort` .. basePort + masters * (1 + replicas) - 1. `detached` servers
 * outlive this process (the shared CI cluster); others die with it and with stop().
 */
export async function startRedisCluster(opts: { basePort: number; masters?: number; replicas?: number; detached?: boolean }): Promise<LocalCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 1;
  const ports = Array.from({ length: masters * (1 + replicas) }, (_, i) => opts.basePort + i);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `redis-cluster-${opts.basePort}-`));
  const children = new Map<number, ChildProcess>();
  const start = (port: number) => {
    const child = spawn('redis-server', serverArgs(port, dir), { stdio: 'ignore', detached: opts.detached ?? false });
    if (opts.detached) child.unref();
    children.set(port, child);
  };
  for (const port of ports) start(port);
  await waitFor(() => ports.every((p) => cli(p, 'ping').stdout.trim() === 'PONG'), 15_000, 'the cluster servers');
  const created = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
    { encoding: 'utf8' },
  );
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  await waitFor(() => ports.every(clusterOk), 30_000, 'cluster_state:ok on every node');
  // Replicas report ok before their first sync; votes need every master's replica linked.
  await waitFor(() => ports.every((p) => !/master_link_status:down/.test(cli(p, 'info', 'replication').stdout)), 30_000, 'replicas in sync');
  return handle(ports, dir, children, start);
}

function handle(ports: number[], dir: string, children: Map<number, ChildProcess>, start: (port: number) => void): LocalCluster {
  return {
    ports,
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(','),
    masterPorts() {
      return ports.filter((p) => /role:master/.test(cli(p, 'info', 'replication').stdout));
    },
    kill(port) {
      const child = children.get(port);
      if (child) child.kill('SIGKILL');
      else cli(port, 'debug', 'segfault');
      children.delete(port);
    },
    async restart(port) {
      start(port);
      await waitFor(() => cli(port, 'ping').stdout.trim() === 'PONG', 15_000, `redis ${port} again`);
    },
    async stop() {
      for (const port of ports) {
        const child = children.get(port);
        if (child) child.kill('SIGKILL');
        else cli(port, 'shutdown', 'nosave');
      }
      await new Promise((r) => setTimeout(r, 200));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The shared cluster on `basePort` when it already runs (CI started it), else a detached new one. */
export async function ensureRedisCluster(basePort = 7000, masters = 3, replicas = 1): Promise<string> {
  const ports = Array.from({ length: masters * (1 + replicas) }, (_, i) => basePort + i);
  if (ports.every(clusterOk)) return ports.map((p) => `127.0.0.1:${p}`).join(',');
  const stale = ports.filter((p) => cli(p, 'ping').stdout.trim() === 'PONG');
  if (stale.length) throw new Error(`ports ${stale.join(', ')} answer but are not a healthy cluster: stop those servers or set REDIS_CLUSTER_TEST_NODES`);
  return (await startRedisCluster({ basePort, masters, replicas, detached: true })).seeds;
}

// `tsx bench/redis-cluster.ts ensure [basePort]`: what CI runs before the tests.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.argv[2] === 'ensure') {
  const seeds = await ensureRedisCluster(Number(process.argv[3] ?? 7000));
  console.log(`Redis Cluster up: ${seeds}`);
}
