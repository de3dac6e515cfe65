import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { createRedis, deleteNamespace, redisTargetOf, serversOf, type RedisClient } from '../../src/shared/redis.js';
import { createTestDatabase } from '../helpers/db.js';
import { watch } from '../helpers/realtime.js';
import { startRoleProcess, type RoleProcess } from '../helpers/processes.js';
import { call, countersAndRecount, eventually, freePort, JWT_SECRET, tokenFor } from '../helpers/stack.js';
import { solveCaptcha } from '../helpers/captcha.js';

// Two of each role on a real 3-master Redis Cluster (with one seed that never answers), one poll
// of each type spread over 12 partitions.
const seeds = inject('clusterSeeds');
const namespace = `c${randomBytes(4).toString('hex')}`;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: ReturnType<typeof createDb>;
let redis: RedisClient;
const apis: RoleProcess[] = [];
const workers: RoleProcess[] = [];
const gateways: RoleProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, 4);
  const deadSeed = `127.0.0.1:${await freePort()}`;
  const env = {
    DATABASE_URL: database.url,
    REDIS_CLUSTER_NODES: `${deadSeed},${seeds}`,
    REDIS_NAMESPACE: namespace,
    JWT_SECRET,
    TRUST_PROXY: 'loopback',
    VOTE_PARTITIONS: '12',
    PREFIX_VOTES_LIMIT: '30',
    VOTES_PER_IP_PER_POLL_PER_HOUR: '1000',
    CAPTCHA_MAX_NUMBER: '2000',
    MIN_RESPONSE_MS: '0',
    ADMIN_USER: 'ops',
    ADMIN_PASSWORD: 'ops-password',
    ANALYTICS_ROLLUP_DELAY_MS: '200',
  };
  // Each one is listed as soon as it runs, so that afterAll stops it even if another fails to start.
  const start = (role: 'api' | 'workers' | 'realtime', into: RoleProcess[]) => startRoleProcess(role, env).then((r) => void into.push(r));
  await Promise.all([
    start('api', apis),
    start('api', apis),
    start('workers', workers),
    start('workers', workers),
    start('realtime', gateways),
    start('realtime', gateways),
  ]);
  redis = createRedis(redisTargetOf({ REDIS_URL: '', REDIS_CLUSTER_NODES: seeds }));
}, 120_000);

afterAll(async () => {
  await Promise.all([...apis, ...workers, ...gateways].map((r) => r.stop()));
  if (redis) {
    await deleteNamespace(redis, namespace);
    redis.disconnect();
  }
  await db?.destroy();
  await database?.drop();
}, 60_000);

const api = (i: number) => ({ url: apis[i % apis.length].url });
const vote = (i: number, pollId: number, body: Record<string, unknown>, ip: string, token?: string) =>
  call(api(i), 'POST', `/api/v1/polls/${pollId}/votes`, { body, headers: { 'x-forwarded-for': ip, 'user-agent': 'cluster-test' }, token });

async function createPoll(overrides: Record<string, unknown>) {
  const res = await call(api(0), 'POST', '/api/v1/polls', {
    token: await tokenFor(1),
    body: {
      question: 'Cluster?',
      poll_type: 'SINGLE_CHOICE',
      options: [{ text: 'a' }, { text: 'b' }, { text: 'c' }, { text: 'd' }],
      status: 'ACTIVE',
      ...overrides,
    },
  });
  expect(res.status).toBe(201);
  return res.body as { poll_id: number; options: Array<{ option_id: number }> };
}

/** Runs `tasks` with at most `width` in flight. */
async function inParallel<T>(count: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

/** Keys of `pattern` per master. */
async function keysPerMaster(pattern: string): Promise<number[]> {
  return Promise.all(
    serversOf(redis).map(async (server) => {
      let n = 0;
      let cursor = '0';
      do {
        const [next, keys] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        n += keys.length;
        cursor = next;
      } while (cursor !== '0');
      return n;
    }),
  );
}

const stored = async (pollId: number) => {
  const { rows } = await sql<{ total: number }>`SELECT coalesce(sum(total_votes), 0)::int AS total FROM poll_tallies WHERE poll_id = ${pollId}`.execute(db);
  return rows[0].total;
};

describe('on a Redis Cluster', () => {
  it('2 APIs, 2 workers and 2 gateways count thousands of votes of every type exactly, from every master', async () => {
    const single = await createPoll({ allow_change_vote: true });
    const multiple = await createPoll({ poll_type: 'MULTIPLE_CHOICE', settings: { max_choices: 3 } });
    const ranked = await createPoll({ poll_type: 'RANKED' });
    const rating = await createPoll({ poll_type: 'RATING' });
    const ids = (p: { options: Array<{ option_id: number }> }) => p.options.map((o) => o.option_id);
    const watchers = gateways.map((g) => watch(g, { poll_id: single.poll_id }));
    await Promise.all(watchers.map((w) => w.waitFor((m) => m.type === 'results', 15_000, 'a snapshot')));

    const N = 1200;
    // Addresses walk many /24s (a handful of votes each), so nothing is flagged for velocity.
    const ip = (i: number) => `10.${(i >> 12) & 255}.${(i >> 4) & 255}.${(i & 15) + 1}`;
    const bodies = [
      (i: number) => [single.poll_id, { options: [ids(single)[i % 4]] }] as const,
      (i: number) => [multiple.poll_id, { options: ids(multiple).slice(0, 1 + (i % 3)) }] as const,
      (i: number) => [ranked.poll_id, { ranking: [...ids(ranked)].sort((a, b) => ((a * 7 + i) % 5) - ((b * 7 + i) % 5)).slice(0, 2 + (i % 3)) }] as const,
      (i: number) =>
        [
          rating.poll_id,
          {
            ratings: Object.fromEntries(
              ids(rating)
                .slice(0, 1 + (i % 4))
                .map((o, k) => [String(o), 1 + ((i + k) % 5)]),
            ),
          },
        ] as const,
    ];
    const t0 = Date.now();
    const statuses = await inParallel(N * 4, 32, async (k) => {
      const i = k >> 2;
      const [pollId, body] = bodies[k & 3](i);
      return (await vote(k, pollId, body, ip(i))).status;
    });
    expect(statuses.filter((s) => s !== 202)).toEqual([]);
    console.log(`cluster: ${N * 4} votes in ${Date.now() - t0} ms`);
    // Half the single-choice voters change their mind, through the other API.
    const changes = await inParallel(N / 2, 32, async (i) => (await vote(i + 1, single.poll_id, { options: [ids(single)[(i + 1) % 4]] }, ip(i))).body);
    expect(changes.every((c) => c.status === 'accepted' && c.changed)).toBe(true);

    // The totals do not move with a change: wait for the changes themselves.
    await eventually(
      async () => {
        const { rows } = await sql<{ n: number }>`SELECT coalesce(sum(change_count), 0)::int AS n FROM votes WHERE poll_id = ${single.poll_id}`.execute(db);
        return rows[0].n === N / 2;
      },
      30_000,
      'the changes counted',
    );
    for (const poll of [single, multiple, ranked, rating]) {
      await eventually(async () => (await stored(poll.poll_id)) === N, 30_000, `poll ${poll.poll_id} counted`);
      const c = await countersAndRecount(db, poll.poll_id);
      expect(c.counters).toEqual(c.recount);
      expect({ total: c.total, valid: c.validVotes }).toEqual({ total: N, valid: N });
    }
    // Each gateway's watcher ends on the stored counts.
    const counts = (await countersAndRecount(db, single.poll_id)).counters;
    const expected = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v]));
    for (const w of watchers) await w.waitFor((m) => JSON.stringify(m.counts) === JSON.stringify(expected), 15_000, 'the stored counts');
    for (const w of watchers) w.close();

    // One poll is spread: every master holds some of its claims and some of the vote queues' jobs.
    const claims = await keysPerMaster(`${namespace}:vote:{*}:${single.poll_id}:*`);
    expect(claims).toHaveLength(3);
    expect(
      claims.every((n) => n > 0),
      `claims per master: ${claims}`,
    ).toBe(true);
    expect(claims.reduce((a, b) => a + b, 0)).toBe(N);
    const jobCounters = await keysPerMaster(`${namespace}:{*}:vote-ingest-*:id`);
    expect(
      jobCounters.every((n) => n > 0),
      `vote queues with jobs per master: ${jobCounters}`,
    ).toBe(true);
  }, 240_000);

  it('CAPTCHA, velocity flagging, bulk review, analytics, the close with its final message and Bull Board all work', async () => {
    const guarded = await createPoll({ settings: { captcha: 'always' } });
    const refused = await vote(0, guarded.poll_id, { options: [guarded.options[0].option_id] }, '192.0.2.10');
    expect(refused.status).toBe(428);
    const ch = refused.body.error.challenge;
    const captcha = await solveCaptcha(ch);
    expect((await vote(1, guarded.poll_id, { options: [guarded.options[0].option_id], captcha }, '192.0.2.10')).status).toBe(202);
    expect((await vote(0, guarded.poll_id, { options: [guarded.options[0].option_id], captcha }, '192.0.2.11')).status).toBe(428);

    // A burst from one /24 crosses PREFIX_VOTES_LIMIT (30): its window is held for review.
    const poll = await createPoll({});
    const option = poll.options[1].option_id;
    const burst = await inParallel(31, 8, (i) => vote(i, poll.poll_id, { options: [option] }, `198.51.100.${i + 1}`));
    expect(burst.map((r) => r.status).filter((s) => s !== 202)).toEqual([]);
    const results = async () => (await call(api(0), 'GET', `/api/v1/polls/${poll.poll_id}/results`)).body;
    await eventually(async () => (await results()).pending_review === 31, 20_000, 'the burst held for review');
    const admin = await tokenFor(9, { role: 'admin' });
    for (const r of burst.slice(0, 10)) {
      expect((await call(api(1), 'POST', `/api/v1/admin/votes/${r.body.vote_id}/review`, { token: admin, body: { decision: 'VALID' } })).status).toBe(200);
    }
    await eventually(async () => (await results()).total_votes === 10, 10_000, 'ten accepted');
    const c = await countersAndRecount(db, poll.poll_id);
    expect(c.counters).toEqual(c.recount);
    expect({ total: c.total, pending: c.pending }).toEqual({ total: 10, pending: 21 });

    const owner = await tokenFor(1);
    await eventually(
      async () => (await call(api(0), 'GET', `/api/v1/polls/${poll.poll_id}/analytics`, { token: owner })).body.suspicious_votes === 21,
      15_000,
      'analytics rolled up',
    );

    const watcher = watch(gateways[1], { poll_id: poll.poll_id });
    await watcher.waitFor((m) => m.total_votes === 10, 10_000, 'the live count');
    expect((await call(api(1), 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: owner })).status).toBe(200);
    const final = await watcher.waitFor((m) => m.final === true, 20_000, 'the final message');
    expect(final.total_votes).toBe(10);
    watcher.close();
    expect((await vote(0, poll.poll_id, { options: [option] }, '203.0.113.1')).status).toBe(409);

    const board = await fetch(`${apis[0].url}/admin/queues/api/queues`, {
      headers: { authorization: `Basic ${Buffer.from('ops:ops-password').toString('base64')}` },
    });
    expect(board.status).toBe(200);
    const names = ((await board.json()) as { queues: Array<{ name: string }> }).queues.map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['vote-ingest-0', 'vote-ingest-1', 'vote-ingest-2', 'vote-flagging', 'poll-lifecycle', 'analytics-rollup']));
    for (const a of apis) expect((await fetch(`${a.url}/readyz`)).status).toBe(200);
  });
});
