import { spawn, type ChildProcess } from 'node:child_process';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { countersAndRecount, createPoll, eventually, freePort, JWT_SECRET, type Stack, startStack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'loopback', FRAUD_DEFENCES: 'off' } });
});
afterAll(async () => {
  await stack?.close();
});

/** The API role as its own OS process, so it can be sent a real SIGTERM. */
function spawnApi(port: number): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/api/main.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: stack.config.DATABASE_URL,
      REDIS_URL: stack.config.REDIS_URL,
      REDIS_NAMESPACE: stack.config.REDIS_NAMESPACE,
      JWT_SECRET,
      TRUST_PROXY: 'loopback',
      FRAUD_DEFENCES: 'off',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => err };
}

it('a SIGTERM in the middle of a load run loses no 202-accepted vote', async () => {
  const poll = await createPoll(stack, { poll_type: 'MULTIPLE_CHOICE' });
  const ids = poll.options.map((o) => o.option_id);
  const port = await freePort();
  const api = spawnApi(port);
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${url}/healthz`).catch(() => null))?.status === 200, 20_000, 'API child up');

  const TOTAL = 6000;
  const CONCURRENCY = 100;
  const SIGTERM_AFTER = 1500;
  let next = 0;
  let accepted = 0;
  let refused = 0;
  let failed = 0;
  let signalled = false;
  const client = async () => {
    while (next < TOTAL) {
      const i = next++;
      try {
        const res = await fetch(`${url}/api/v1/polls/${poll.poll_id}/votes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
          body: JSON.stringify({ options: ids.slice(0, 1 + (i % 3)) }),
        });
        const body = await res.json();
        if (res.status === 202) {
          expect(body.status).toBe('accepted');
          accepted++;
        } else refused++;
      } catch {
        failed++; // connection refused or closed: the server never answered, so nothing was promised
      }
      if (!signalled && accepted >= SIGTERM_AFTER) {
        signalled = true;
        api.child.kill('SIGTERM');
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  expect(signalled).toBe(true);
  expect(await api.exited, api.stderr()).toBe(0);
  expect(accepted).toBeGreaterThanOrEqual(SIGTERM_AFTER);
  expect(accepted + refused + failed).toBe(TOTAL);
  // Votes kept being answered after the signal until the server had closed: a real mid-flight stop.
  expect(failed).toBeGreaterThan(0);

  const counted = async () => {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM votes WHERE poll_id = ${poll.poll_id}`.execute(stack.db);
    return rows[0].n;
  };
  await eventually(async () => (await counted()) >= accepted, 30_000, 'every accepted vote committed');
  await new Promise((r) => setTimeout(r, 1000));
  expect(await counted()).toBe(accepted);
  expect((await countersAndRecount(stack.db, poll.poll_id)).total).toBe(accepted);
});
