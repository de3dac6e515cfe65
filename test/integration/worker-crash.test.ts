import { spawn, type ChildProcess } from 'node:child_process';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, countersAndRecount, createPoll, eventually, startStack, voteQueuesIdle, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: false, env: { TRUST_PROXY: 'loopback', FRAUD_DEFENCES: 'off' } });
});
afterAll(async () => {
  await stack?.close();
});

/** The worker role as its own OS process, so it can be SIGKILLed. */
function spawnWorker(): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/workers/main.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: stack.config.DATABASE_URL,
      REDIS_URL: stack.config.REDIS_URL,
      REDIS_NAMESPACE: stack.config.REDIS_NAMESPACE,
      WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'silent',
    },
    stdio: 'ignore',
  });
}

it('a worker SIGKILLed in the middle of a batch: the standby counts its votes within 10 s, nothing lost, nothing twice', async () => {
  const poll = await createPoll(stack, { poll_type: 'MULTIPLE_CHOICE' });
  const ids = poll.options.map((o) => o.option_id);
  let accepted = 0;
  for (let start = 0; start < 6000; start += 300) {
    const res = await Promise.all(
      Array.from({ length: 300 }, (_, k) => {
        const i = start + k;
        return call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
          body: { options: ids.slice(0, 1 + (i % 3)) },
          headers: { 'x-forwarded-for': `10.7.${i >> 8}.${i & 255}` },
        });
      }),
    );
    accepted += res.filter((r) => r.status === 202).length;
  }
  expect(accepted).toBe(6000);

  const worker = spawnWorker();
  // Wait until the worker is inside a vote transaction, then start a standby and kill the first without warning.
  await eventually(
    async () => {
      const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND (state = 'idle in transaction' OR (state = 'active' AND query ILIKE '%votes%'))`.execute(stack.db);
      return rows[0].n > 0;
    },
    20_000,
    'a vote transaction in progress',
  );
  const standby = spawnWorker();
  try {
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    const killedAt = Date.now();
    const before = await countersAndRecount(stack.db, poll.poll_id);
    expect(before.total).toBeLessThan(6000);
    // The default vote lock (VOTE_LOCK_MS, 5 s) and commit lease (COMMIT_LEASE_MS, 3 s) hand the votes on.
    await eventually(async () => (await countersAndRecount(stack.db, poll.poll_id)).total === 6000, 10_000, 'all votes within 10 s of the crash');
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // The killed worker's job too is done (or given up): nothing left that could count a vote twice.
    await eventually(() => voteQueuesIdle(stack), 20_000, 'vote queues idle');
    const after = await countersAndRecount(stack.db, poll.poll_id);
    expect(after.total).toBe(6000);
    expect(after.validVotes).toBe(6000);
    expect(after.counters).toEqual(after.recount);
  } finally {
    standby.kill('SIGTERM');
    await new Promise((r) => standby.once('exit', r));
  }
});
