import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, freePort } from './stack.js';

/*
 * The service's roles as real OS processes (`node --import tsx src/<role>/main.ts`), so that
 * tests can SIGKILL, SIGTERM and restart them as an orchestrator or a crash would.
 */

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Remembers a child so that it is killed if the test process exits without its teardown. */
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
}

const hasSetpriv = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

/**
 * The command line that runs `cmd` with SIGKILL as its parent-death signal (util-linux
 * setpriv execs the command, so the pid is the command's own): a test process killed
 * with -9 leaves no server or role running behind it.
 */
export function withParentDeathSignal(cmd: string, args: string[]): string[] {
  return hasSetpriv ? ['setpriv', '--pdeathsig', 'KILL', cmd, ...args] : [cmd, ...args];
}

export type RoleKind = 'api' | 'workers' | 'realtime';

const ENTRY: Record<RoleKind, string> = {
  api: 'src/api/main.ts',
  workers: 'src/workers/main.ts',
  realtime: 'src/realtime/main.ts',
};
const PORT_ENV: Record<RoleKind, string> = { api: 'PORT', workers: 'WORKER_METRICS_PORT', realtime: 'REALTIME_PORT' };

/** Only these variables pass from the test's environment to a role: no stray DATABASE_URL, REDIS_URL or REDIS_CLUSTER_NODES. */
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'];

/** How a role process ended. */
export interface RoleExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One role process, restartable on the same port with the same environment. */
export interface RoleProcess {
  name: string;
  kind: RoleKind;
  port: number;
  url: string;
  readonly running: boolean;
  readonly pid: number | undefined;
  /** Spawns the process and resolves once it answers `/readyz` with 200. */
  start(): Promise<void>;
  /** Sends `signal` and resolves with how the process exited (SIGKILL after `timeoutMs`). */
  signal(signal: NodeJS.Signals, timeoutMs?: number): Promise<RoleExit>;
  /** SIGKILL: dies at once, in-flight requests and jobs with it. */
  kill(): Promise<RoleExit>;
  /** SIGTERM: the graceful shutdown an orchestrator asks for. */
  stop(): Promise<RoleExit>;
  restart(): Promise<void>;
  /** The last `lines` lines of the role's log (stdout and stderr of every run). */
  logTail(lines?: number): string;
}

/**
 * Defines a role process. `env` is read at every start, so a test can change the stack's
 * environment (say, add REDIS_CLUSTER_NODES) and restart the role into it.
 */
export function defineRole(opts: {
  name: string;
  kind: RoleKind;
  port: number;
  env: () => Record<string, string>;
  logFile: string;
  readyTimeoutMs?: number;
}): RoleProcess {
  const { name, kind, port, logFile } = opts;
  let child: ChildProcess | null = null;
  let exited: Promise<RoleExit> = Promise.resolve({ code: null, signal: null });

  const role: RoleProcess = {
    name,
    kind,
    port,
    url: `http://127.0.0.1:${port}`,
    get running() {
      return child !== null;
    },
    get pid() {
      return child?.pid;
    },
    async start() {
      if (child) return;
      const inherited = Object.fromEntries(INHERITED.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]));
      const env = { ...inherited, ...opts.env(), [PORT_ENV[kind]]: String(port) };
      appendFileSync(logFile, `\n===== ${new Date().toISOString()} start ${name}\n`);
      const [cmd, ...args] = withParentDeathSignal(process.execPath, ['--import', 'tsx', ENTRY[kind]]);
      const c = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
      trackChild(c);
      const write = (chunk: Buffer) => appendFileSync(logFile, chunk);
      c.stdout!.on('data', write);
      c.stderr!.on('data', write);
      child = c;
      exited = new Promise((resolve) =>
        c.once('exit', (code, signal) => {
          if (child === c) child = null;
          appendFileSync(logFile, `===== ${new Date().toISOString()} ${name} exited (${signal ?? code})\n`);
          resolve({ code, signal });
        }),
      );
      let gone = false;
      void exited.then(() => (gone = true));
      await eventually(
        async () => {
          if (gone) throw new Error(`${name} exited during start:\n${role.logTail(20)}`);
          const res = await fetch(`${role.url}/readyz`, { signal: AbortSignal.timeout(3000) }).catch(() => null);
          await res?.body?.cancel();
          return res?.status === 200;
        },
        opts.readyTimeoutMs ?? 90_000,
        `${name} ready on port ${port}`,
      );
    },
    async signal(sig, timeoutMs = 40_000) {
      const c = child;
      if (!c) return exited;
      c.kill(sig);
      const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    kill: () => role.signal('SIGKILL'),
    stop: () => role.signal('SIGTERM'),
    async restart() {
      await role.stop();
      await role.start();
    },
    logTail(lines = 40) {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
  };
  return role;
}

/** Starts a role with `env` on a free port, logging to a temp file, and waits until it is ready. */
export async function startRoleProcess(kind: RoleKind, env: Record<string, string>): Promise<RoleProcess> {
  const port = await freePort();
  const logFile = path.join(mkdtempSync(path.join(tmpdir(), `role-${kind}-`)), 'log');
  const role = defineRole({ name: `${kind}:${port}`, kind, port, env: () => ({ LOG_LEVEL: 'warn', ...env }), logFile });
  await role.start();
  return role;
}
