import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createDb } from '../src/db/client.js';
import { createDatabaseIfMissing, migrateToLatest } from '../src/db/migrate.js';
import { loadConfig } from '../src/shared/config.js';
import {
  benchToken,
  cpuSeconds,
  createBenchPoll,
  deleteBenchNamespace,
  dropDatabase,
  ensureWrk,
  flags,
  projectRoot,
  runWrk,
  startRole,
  waitHttp,
  type WrkResult,
} from './lib.js';

/**
 * bench:votes — drives one poll with many distinct anonymous voters through the real stack
 * (API + workers as separate processes, PostgreSQL, Redis) and prints accepted votes/s,
 * latency, how long after the load the results equal the number of 202s, and the ratio to
 * a bare node:http server measured with the same wrk settings in the same run.
 *
 *   npm run bench:votes -- --seconds 30 --connections 64 --threads 2
 */
const opts = flags({ seconds: '30', connections: '64', threads: '2', 'noop-seconds': '10', defences: 'on' });
const seconds = Number(opts.seconds);
const base = loadConfig();
ensureWrk();

const dbUrl = new URL(base.DATABASE_URL);
dbUrl.pathname = '/polls_bench';
const namespace = `bench${Date.now().toString(36)}`;
const env: Record<string, string> = {
  DATABASE_URL: dbUrl.toString(),
  REDIS_NAMESPACE: namespace,
  TRUST_PROXY: 'loopback',
  LOG_LEVEL: 'warn',
  PORT: '3100',
  WORKER_METRICS_PORT: '3102',
  JWT_SECRET: base.JWT_SECRET,
};
if (opts.defences === 'off') env.FRAUD_DEFENCES = 'off';

const children: ChildProcess[] = [];
const stopAll = () => children.forEach((c) => c.kill('SIGTERM'));
process.on('exit', stopAll);

await dropDatabase(env.DATABASE_URL);
await createDatabaseIfMissing(env.DATABASE_URL);
const db = createDb(env.DATABASE_URL, 2);
await migrateToLatest(db);

children.push(startRole('src/api/main.js', env, 'api'), startRole('src/workers/main.js', env, 'workers'));
const api = `http://127.0.0.1:${env.PORT}`;
await Promise.all([waitHttp(`${api}/readyz`), waitHttp(`http://127.0.0.1:${env.WORKER_METRICS_PORT}/readyz`)]);

const token = await benchToken(base.JWT_SECRET);
const createPoll = () => createBenchPoll(api, token);
const totalOf = async (pollId: number) => ((await (await fetch(`${api}/api/v1/polls/${pollId}/results`)).json()) as { total_votes: number }).total_votes;

const script = path.join(projectRoot, 'bench/wrk-votes.lua');
const wrkOpts = { threads: Number(opts.threads), connections: Number(opts.connections) };
const voteArgs = (p: { poll_id: number; options: Array<{ option_id: number }> }) => [
  `/api/v1/polls/${p.poll_id}/votes`,
  JSON.stringify({ options: [p.options[0].option_id] }),
];

// wrk stops counting at its deadline while answers are still in flight; the server's own
// counter is the exact number of 202s sent (warm-up poll subtracted).
const acceptedCounter = async () =>
  [...(await (await fetch(`${api}/metrics`)).text()).matchAll(/^votes_accepted_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);

// Warm-up on its own poll so JIT, pools and caches are hot before the measured run.
const warm = await createPoll();
await runWrk({ url: api, script, seconds: 3, ...wrkOpts, args: voteArgs(warm) });
await new Promise((r) => setTimeout(r, 500));
const warmAccepted = await acceptedCounter();

const poll = await createPoll();
console.log(`load: ${seconds}s, ${wrkOpts.connections} connections, ${wrkOpts.threads} wrk threads, poll ${poll.poll_id}, defences ${opts.defences}`);
const cpuUrls = { api, workers: `http://127.0.0.1:${env.WORKER_METRICS_PORT}` };
const cpuBefore = await cpuSeconds(cpuUrls);
const load = await runWrk({ url: api, script, seconds, ...wrkOpts, args: voteArgs(poll) });
const loadEnded = Date.now();
const cpuAfter = await cpuSeconds(cpuUrls);
const seen202 = load.statuses['202'] ?? 0;
// Requests in flight when wrk stopped still finish: the count is final once it stops moving.
let accepted = (await acceptedCounter()) - warmAccepted;
let total = await totalOf(poll.poll_id);
let convergedMs = -1;
for (let stableSince = Date.now(); Date.now() - stableSince < 300 && Date.now() - loadEnded < 120_000; ) {
  await new Promise((r) => setTimeout(r, 20));
  const [a, t] = [(await acceptedCounter()) - warmAccepted, await totalOf(poll.poll_id)];
  if (a !== accepted || t !== total) stableSince = Date.now();
  if (t >= a && convergedMs < 0) convergedMs = Date.now() - loadEnded;
  if (t < a) convergedMs = -1;
  [accepted, total] = [a, t];
}
await new Promise((r) => setTimeout(r, 1000));
const settled = await totalOf(poll.poll_id);

stopAll();
children.length = 0;
await db.destroy();
await deleteBenchNamespace(namespace);

// The ceiling: a bare node:http server, same wrk script and settings, same run.
const noop = startRole('bench/noop-server.js', { PORT: '3199' }, 'noop');
children.push(noop);
await new Promise((r) => setTimeout(r, 500));
const noopRes: WrkResult = await runWrk({
  url: 'http://127.0.0.1:3199',
  script,
  seconds: Number(opts['noop-seconds']),
  ...wrkOpts,
  args: voteArgs(poll),
});
stopAll();

const votesPerSecond = seen202 / seconds;
const others = Object.entries(load.statuses).filter(([s]) => s !== '202');
console.log('');
console.log(
  `accepted votes/s:        ${votesPerSecond.toFixed(0)}  (${seen202} × 202 seen by wrk in ${seconds}s, ${accepted} sent by the API${others.length ? `; other statuses ${JSON.stringify(Object.fromEntries(others))}` : ''})`,
);
console.log(
  `latency:                 p50 ${load.p50ms.toFixed(1)} ms, p90 ${load.p90ms.toFixed(1)} ms, p99 ${load.p99ms.toFixed(1)} ms, max ${load.maxms.toFixed(1)} ms`,
);
console.log(
  `results == accepted:     ${total === accepted ? 'yes' : 'NO'} after ${convergedMs} ms (results ${total}, accepted ${accepted}; 1 s later ${settled})`,
);
const cpuLine = (Object.keys(cpuAfter) as Array<keyof typeof cpuAfter>)
  .map((k) => {
    const used = cpuAfter[k] - cpuBefore[k];
    return `${k} ${((100 * used) / seconds).toFixed(0)}% (${((used * 1e6) / Math.max(seen202, 1)).toFixed(0)} µs/vote)`;
  })
  .join(', ');
console.log(`CPU during the load:     ${cpuLine}`);
console.log(`bare node:http no-op:    ${noopRes.requestsPerSecond.toFixed(0)} req/s (p99 ${noopRes.p99ms.toFixed(1)} ms)`);
console.log(`ratio to bare node:http: ${(votesPerSecond / noopRes.requestsPerSecond).toFixed(3)}`);
process.exit(total === accepted && settled === accepted ? 0 : 1);
