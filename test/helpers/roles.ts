import { spawn, type ChildProcess } from 'node:child_process';
import { eventually, freePort } from './stack.js';

/** One role of the service (API, workers or gateway) running as its own OS process. */
export interface RoleProcess {
  child: ChildProcess;
  url: string;
  /** The last lines it logged (for a failing test's message). */
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const ENTRY = { api: 'src/api/main.ts', workers: 'src/workers/main.ts', realtime: 'src/realtime/main.ts' } as const;
const PORT_ENV = { api: 'PORT', workers: 'WORKER_METRICS_PORT', realtime: 'REALTIME_PORT' } as const;

/** Starts a role with `env` on a free port and waits until its /healthz answers. */
export async function startRole(role: keyof typeof ENTRY, env: Record<string, string>): Promise<RoleProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY[role]], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, [PORT_ENV[role]]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (d: Buffer) => {
    lines.push(...d.toString().split('\n').filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${role} exited: ${lines.slice(-20).join('\n')}`);
      return fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    },
    // tsx compiles on start: slow on a busy machine.
    90_000,
    `${role} up`,
  );
  return {
    child,
    url,
    log: () => lines.join('\n'),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
