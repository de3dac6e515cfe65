import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/logger.js';
import { createRedis } from '../../src/shared/redis.js';
import { redisKeys } from '../../src/shared/redis-keys.js';
import { openQueue, QUEUES } from '../../src/shared/queues.js';

const VOTE_FLAGGING_QUEUE = QUEUES.flagging.name;
import { startStack, tokenFor, type Stack } from '../helpers/stack.js';

const USER = 'ops';
const PASSWORD = 'correct horse battery staple';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const INJECTED = '<script>alert("pwned")</script>';

let stack: Stack;
let jobId: string;
beforeAll(async () => {
  // No workers: the job with hostile data must stay put for the board to show it.
  stack = await startStack({ workers: false, env: { ADMIN_USER: USER, ADMIN_PASSWORD: PASSWORD } });
  const connection = createRedis(stack.config.REDIS_URL);
  const queue = openQueue(QUEUES.flagging, { connection, keys: redisKeys(stack.config.REDIS_NAMESPACE), logger: createLogger('silent', 'test') });
  const job = await queue.add('flag-prefix', { poll_id: 1, prefix: INJECTED, vote_ids: [], reason: INJECTED });
  jobId = job.id!;
  await queue.close();
  connection.disconnect();
});
afterAll(async () => {
  await stack?.close();
});

const get = (path: string, authorization?: string) => fetch(stack.url + path, { headers: authorization ? { authorization } : {} });

/** The script and stylesheet URLs the board's HTML page loads. */
async function assetPaths(): Promise<string[]> {
  const html = await (await get('/admin/queues', basic(USER, PASSWORD))).text();
  const base = new URL(/<base href="([^"]+)"/.exec(html)![1], stack.url);
  return [...html.matchAll(/(?:src|href)="([^"]*static\/[^"]+)"/g)].map((m) => new URL(m[1], base).pathname);
}

describe('/admin/queues', () => {
  it('asks for credentials: 401 with a Basic challenge, also for a wrong password', async () => {
    const anonymous = await get('/admin/queues');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    expect((await anonymous.json()).error.code).toBe('AUTH_REQUIRED');
    expect((await get('/admin/queues', basic(USER, 'wrong'))).status).toBe(401);
    expect((await get('/admin/queues', basic('root', PASSWORD))).status).toBe(401);
    expect((await get('/admin/queues', 'Basic !!!')).status).toBe(401);
  });

  it('opens with Basic credentials or an admin token, refuses other tokens', async () => {
    const page = await get('/admin/queues', basic(USER, PASSWORD));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect((await get('/admin/queues', `Bearer ${await tokenFor(7, { role: 'admin' })}`)).status).toBe(200);
    const user = await get('/admin/queues', `Bearer ${await tokenFor(8)}`);
    expect(user.status).toBe(401);
    expect(user.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect((await user.json()).error.code).toBe('AUTH_REQUIRED');
    expect((await get('/admin/queues', 'Bearer not.a.token')).status).toBe(401);
  });

  it('protects its static assets and its API the same way', async () => {
    const assets = await assetPaths();
    expect(assets.filter((a) => a.endsWith('.js')).length).toBeGreaterThan(0);
    expect(assets.filter((a) => a.endsWith('.css')).length).toBeGreaterThan(0);
    for (const asset of assets) {
      expect((await get(asset)).status, asset).toBe(401);
      expect((await get(asset, basic(USER, PASSWORD))).status, asset).toBe(200);
    }
    expect((await get('/admin/queues/api/queues')).status).toBe(401);
  });

  it('lists every queue, read-only', async () => {
    const res = await get('/admin/queues/api/queues', basic(USER, PASSWORD));
    expect(res.status).toBe(200);
    const { queues } = await res.json();
    const names = queues.map((q: { name: string }) => q.name).sort();
    expect(names).toEqual(['analytics-rollup', 'poll-lifecycle', 'vote-flagging', 'vote-ingest-0']);
    for (const q of queues) expect(q.readOnlyMode).toBe(true);
    const emptied = await fetch(`${stack.url}/admin/queues/api/queues/${VOTE_FLAGGING_QUEUE}/empty`, {
      method: 'PUT',
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(emptied.status).toBe(405);
    const job = await get(`/admin/queues/api/queues/${VOTE_FLAGGING_QUEUE}/${jobId}`, basic(USER, PASSWORD));
    expect(job.status).toBe(200);
  });

  it('shows job data JSON-encoded, never as markup', async () => {
    const res = await get(`/admin/queues/api/queues/${VOTE_FLAGGING_QUEUE}/${jobId}`, basic(USER, PASSWORD));
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = await res.json();
    expect(body.job.data.reason).toBe(INJECTED);
    for (const page of ['/admin/queues', `/admin/queues/queue/${VOTE_FLAGGING_QUEUE}`, `/admin/queues/queue/${VOTE_FLAGGING_QUEUE}/${jobId}`]) {
      const res = await get(page, basic(USER, PASSWORD));
      expect(res.status, page).toBe(200);
      expect(await res.text()).not.toContain('pwned');
    }
  });
});

describe('/admin/queues without ADMIN_USER / ADMIN_PASSWORD', () => {
  it('is not mounted at all, even for an admin token', async () => {
    const bare = await startStack({ workers: false });
    try {
      const res = await fetch(`${bare.url}/admin/queues`, { headers: { authorization: `Bearer ${await tokenFor(7, { role: 'admin' })}` } });
      expect(res.status).toBe(404);
      expect((await fetch(`${bare.url}/admin/queues/api/queues`)).status).toBe(404);
    } finally {
      await bare.close();
    }
  });
});
