import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ensureBackingServices } from '../../src/shared/startup.js';
import type { RealtimeHandle } from '../../src/realtime/gateway.js';
import { startRealtime, watch } from '../helpers/realtime.js';
import { call, createPoll, eventually, freePort, type Stack, startStack, tokenFor } from '../helpers/stack.js';

let port: number;
let dir: string;
let redis: ChildProcess | null = null;
let stack: Stack;
let gateway: RealtimeHandle;

/** A private Redis that fsyncs every write to its append-only file, so a kill loses nothing. */
async function startRedis(): Promise<void> {
  redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  );
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    await eventually(async () => (await client.ping().catch(() => null)) === 'PONG', 10_000, 'private redis up');
  } finally {
    client.disconnect();
  }
}

async function killRedis(): Promise<void> {
  const child = redis!;
  redis = null;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  port = await freePort();
  dir = mkdtempSync(path.join(tmpdir(), 'polls-redis-'));
  await startRedis();
  stack = await startStack({ env: { REDIS_URL: `redis://127.0.0.1:${port}`, TRUST_PROXY: 'loopback', FRAUD_DEFENCES: 'off' } });
  gateway = await startRealtime(stack.config);
});
afterAll(async () => {
  if (!redis) await startRedis().catch(() => {});
  await gateway?.close();
  await stack?.close();
  if (redis) await killRedis();
  rmSync(dir, { recursive: true, force: true });
});

const vote = (pollId: number, optionId: number, ip: string) =>
  call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body: { options: [optionId] }, headers: { 'x-forwarded-for': ip } });
const readyz = async (url: string) => (await fetch(`${url}/readyz`)).status;
const total = async (pollId: number) => (await call(stack, 'GET', `/api/v1/polls/${pollId}/results`)).body.total_votes as number;

describe('startup checks', () => {
  it('warn loudly when Redis may evict keys, and stay quiet on noeviction', async () => {
    const client = new Redis(port, '127.0.0.1');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await ensureBackingServices('test', { redisUrl: `redis://127.0.0.1:${port}` });
      expect(warn.mock.calls.flat().join(' ')).toMatch(/maxmemory-policy is "allkeys-lru".*noeviction/);
      warn.mockClear();
      await client.config('SET', 'maxmemory-policy', 'noeviction');
      await ensureBackingServices('test', { redisUrl: `redis://127.0.0.1:${port}` });
      // The stack's own BullMQ connections on this server may print their eviction notice meanwhile: only ours count.
      expect(warn.mock.calls.filter(([first]) => String(first).startsWith('[test]'))).toEqual([]);
    } finally {
      warn.mockRestore();
      client.disconnect();
    }
  });
});

describe('startup checks: persistence', () => {
  it('warn loudly when Redis keeps no append-only file, and stay quiet with one', async () => {
    const client = new Redis(port, '127.0.0.1');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      await client.config('SET', 'appendonly', 'no');
      await ensureBackingServices('test', { redisUrl: `redis://127.0.0.1:${port}` });
      expect(warn.mock.calls.flat().join(' ')).toMatch(/\[test\] WARNING: Redis has no append-only file \(appendonly no\)/);
      warn.mockClear();
      await client.config('SET', 'appendonly', 'yes');
      await ensureBackingServices('test', { redisUrl: `redis://127.0.0.1:${port}` });
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
      await client.config('SET', 'appendonly', 'yes').catch(() => {});
      client.disconnect();
    }
  });
});

describe('Redis goes away and comes back', () => {
  it('readiness drops to 503, votes get 503 UNAVAILABLE (never 202), and nothing accepted is lost', async () => {
    const poll = await createPoll(stack);
    const draft = await createPoll(stack, { status: 'DRAFT', end_time: new Date(Date.now() + 3_600_000).toISOString() });
    const option = poll.options[0].option_id;
    for (let i = 1; i <= 20; i++) expect((await vote(poll.poll_id, option, `10.20.0.${i}`)).status).toBe(202);
    await eventually(async () => (await total(poll.poll_id)) === 20, 15_000, '20 counted');
    expect(await readyz(stack.url)).toBe(200);
    expect(await readyz(stack.workers!.url)).toBe(200);

    await killRedis();
    await eventually(async () => (await readyz(stack.url)) === 503, 10_000, 'API not ready');
    await eventually(async () => (await readyz(stack.workers!.url)) === 503, 10_000, 'workers not ready');
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${stack.workers!.url}/healthz`)).status).toBe(200);
    // Scrapes still answer (queue depths are then simply absent).
    expect((await fetch(`${stack.workers!.url}/metrics`)).status).toBe(200);
    for (let i = 1; i <= 10; i++) {
      const refused = await vote(poll.poll_id, option, `10.21.0.${i}`);
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('UNAVAILABLE');
    }
    // A poll that would need its close scheduled is not created, or published, half-way.
    const owner = await tokenFor(1);
    const soon = new Date(Date.now() + 60_000).toISOString();
    const mine = async () => (await call(stack, 'GET', '/api/v1/polls?creator=me&limit=100', { token: owner })).body.items.length as number;
    const before = await mine();
    const body = { question: 'During the outage?', poll_type: 'SINGLE_CHOICE', options: [{ text: 'a' }, { text: 'b' }], status: 'ACTIVE', end_time: soon };
    const created = await call(stack, 'POST', '/api/v1/polls', { token: owner, body });
    expect({ status: created.status, code: created.body.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' });
    const published = await call(stack, 'POST', `/api/v1/polls/${draft.poll_id}/publish`, { token: owner });
    expect({ status: published.status, code: published.body.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' });
    expect(await mine()).toBe(before);
    expect((await call(stack, 'GET', `/api/v1/polls/${draft.poll_id}`, { token: owner })).body.status).toBe('DRAFT');
    // A watcher is told at once that live results are unavailable, not left waiting for a snapshot.
    expect(await watch(gateway, { poll_id: poll.poll_id }).ended).toMatchObject({ code: 1011 });

    await startRedis();
    await eventually(async () => (await readyz(stack.url)) === 200, 15_000, 'API ready again');
    await eventually(async () => (await readyz(stack.workers!.url)) === 200, 15_000, 'workers ready again');
    let accepted = 0;
    for (let i = 1; i <= 10; i++) if ((await vote(poll.poll_id, option, `10.22.0.${i}`)).status === 202) accepted++;
    expect(accepted).toBeGreaterThan(0);
    await eventually(async () => (await total(poll.poll_id)) === 20 + accepted, 20_000, 'new votes counted');
    // The voters' claims survived the crash: a repeat voter from before is still recognised.
    expect((await vote(poll.poll_id, option, '10.20.0.1')).status).toBe(409);
    // The 503s accepted nothing: those voters can vote now, once.
    expect((await vote(poll.poll_id, option, '10.21.0.1')).status).toBe(202);
    await eventually(async () => (await total(poll.poll_id)) === 21 + accepted, 15_000, 'late voter counted');
    // And the gateway serves watchers again.
    const back = watch(gateway, { poll_id: poll.poll_id });
    expect((await back.waitFor((m) => m.type === 'results')).total_votes).toBe(21 + accepted);
    back.close();
  });
});
