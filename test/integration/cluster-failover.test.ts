import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRedisCluster, type LocalCluster } from '../../bench/redis-cluster.js';
import { createDb } from '../../src/db/client.js';
import { createTestDatabase } from '../helpers/db.js';
import { startRoleProcess, type RoleProcess } from '../helpers/processes.js';
import { call, countersAndRecount, eventually, JWT_SECRET, tokenFor } from '../helpers/stack.js';

// A private cluster: this test kills one of its masters, which must never touch the shared one.
let cluster: LocalCluster;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: ReturnType<typeof createDb>;
const roles: RoleProcess[] = [];

/** Six consecutive free ports (a cluster's bus listens on each port + 10000 too). */
async function freeRange(): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = [...Array(6).keys()].flatMap((i) => [base + i, base + i + 10_000]);
    if (await isFree(ports)) return base;
  }
}
async function isFree(ports: number[]): Promise<boolean> {
  const probes = ports.map(
    (port) =>
      new Promise<boolean>((resolve) => {
        const server = net
          .createServer()
          .once('error', () => resolve(false))
          .listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
      }),
  );
  return (await Promise.all(probes)).every(Boolean);
}

beforeAll(async () => {
  cluster = await startRedisCluster({ basePort: await freeRange() });
  database = await createTestDatabase();
  db = createDb(database.url, 4);
  const env = {
    DATABASE_URL: database.url,
    REDIS_CLUSTER_NODES: cluster.seeds,
    REDIS_NAMESPACE: `f${randomBytes(4).toString('hex')}`,
    JWT_SECRET,
    TRUST_PROXY: 'loopback',
    VOTE_PARTITIONS: '12',
    FRAUD_DEFENCES: 'off',
    // A 202 means the vote's job is on a replica too: the failover of its master cannot lose it.
    REDIS_WAIT_REPLICAS: '1',
    REDIS_WAIT_TIMEOUT_MS: '500',
  };
  for (const role of ['api', 'workers'] as const) roles.push(await startRoleProcess(role, env));
}, 180_000);

afterAll(async () => {
  await Promise.all(roles.map((r) => r.stop()));
  await cluster?.stop();
  await db?.destroy();
  await database?.drop();
}, 60_000);

it('a master SIGKILLed under load: its replica takes over, no 202 is lost, none counted twice, votes flow again within seconds', async () => {
  const api = { url: roles[0].url };
  const created = await call(api, 'POST', '/api/v1/polls', {
    token: await tokenFor(1),
    body: { question: 'Failover?', poll_type: 'SINGLE_CHOICE', options: [{ text: 'a' }, { text: 'b' }], status: 'ACTIVE' },
  });
  expect(created.status).toBe(201);
  const poll = created.body as { poll_id: number; options: Array<{ option_id: number }> };
  const accepted = new Map<string, string>(); // voter address -> vote id
  const statuses = new Map<number, number>();
  let next = 0;
  let running = true;
  let lastRefusalAt = 0;
  const voter = async () => {
    while (running) {
      const i = next++;
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const res = await call(api, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
        body: { options: [poll.options[i % 2].option_id] },
        headers: { 'x-forwarded-for': ip },
      }).catch(() => ({ status: 0, body: null }));
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 202) accepted.set(ip, res.body.vote_id);
      else lastRefusalAt = Date.now();
    }
  };
  const load = Promise.all(Array.from({ length: 16 }, voter));
  await eventually(async () => accepted.size >= 300, 60_000, 'votes flowing');

  const [victim] = cluster.masterPorts();
  const killedAt = Date.now();
  cluster.kill(victim);
  // A replica is promoted (cluster-node-timeout 2 s) and the clients find it.
  await eventually(async () => !cluster.masterPorts().includes(victim) && cluster.masterPorts().length === 3, 30_000, 'a replica promoted');
  // As an orchestrator would: the dead node comes back and rejoins as the new master's replica, so
  // its votes can be confirmed on a replica again (until then they get 503, never an unsafe 202).
  await cluster.restart(victim);
  const before = accepted.size;
  await eventually(async () => accepted.size > before + 300 && Date.now() - lastRefusalAt > 2000, 60_000, 'votes accepted again, none refused for 2 s');
  const recoveredInMs = lastRefusalAt ? Math.max(0, lastRefusalAt - killedAt) : 0;
  running = false;
  await load;

  const voteIds = [...accepted.values()];
  // Every 202's vote stored (or, if one never comes, the assertion below names it).
  await eventually(
    async () => {
      const { rows } = await sql<{
        n: number;
      }>`SELECT count(*)::int AS n FROM votes WHERE poll_id = ${poll.poll_id} AND vote_id = ANY(${voteIds}::uuid[])`.execute(db);
      return rows[0].n === voteIds.length;
    },
    60_000,
    'every accepted vote committed',
  ).catch(() => {});
  const { rows: stored } = await sql<{ vote_id: string }>`SELECT vote_id FROM votes WHERE poll_id = ${poll.poll_id}`.execute(db);
  const storedIds = new Set(stored.map((r) => r.vote_id));
  const lost = voteIds.filter((id) => !storedIds.has(id));
  const c = await countersAndRecount(db, poll.poll_id);
  console.log(
    `failover: 202s=${voteIds.length} stored=${storedIds.size} lost=${lost.length} statuses=${JSON.stringify(Object.fromEntries(statuses))} refused until ${recoveredInMs} ms after the kill`,
  );
  expect(lost).toEqual([]);
  expect(c.counters).toEqual(c.recount);
  expect(c.total).toBe(storedIds.size);
  // Only 202s and 503s (refused while the slots moved): never another answer.
  expect([...statuses.keys()].filter((s) => s !== 202 && s !== 503)).toEqual([]);
  expect(recoveredInMs).toBeLessThan(20_000);
}, 300_000);
