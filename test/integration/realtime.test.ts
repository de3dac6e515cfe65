import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { RealtimeHandle } from '../../src/realtime/gateway.js';
import { createPollFeeds, type Watcher } from '../../src/realtime/poll-feeds.js';
import { createRedis } from '../../src/shared/redis.js';
import { redisKeys } from '../../src/shared/redis-keys.js';
import { startRealtime, watch, type Watch } from '../helpers/realtime.js';
import { call, createPoll, eventually, startStack, tokenFor, type Stack } from '../helpers/stack.js';

let stack: Stack;
let g1: RealtimeHandle;
let g2: RealtimeHandle;
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');

beforeAll(async () => {
  // Every test vote comes from 127.0.0.1: the per-address fraud limits would otherwise hold them back.
  stack = await startStack({ env: { VOTES_PER_IP_PER_POLL_PER_HOUR: '1000000', PREFIX_VOTES_LIMIT: '1000000' } });
  // Feeds end soon after their last watcher here, so that the unsubscribe can be seen.
  [g1, g2] = await Promise.all([startRealtime(stack.config, { WS_FEED_LINGER_MS: 300 }), startRealtime(stack.config, { WS_FEED_LINGER_MS: 300 })]);
});
afterAll(async () => {
  await Promise.allSettled([g1?.close(), g2?.close()]);
  await stack?.close();
  redis.disconnect();
});

const publicPoll = (overrides: Record<string, unknown> = {}) => createPoll(stack, { settings: { captcha: 'off' }, ...overrides });

let voter = 0;
/** One anonymous vote from a fresh voter (the fingerprint makes each one distinct). */
async function vote(pollId: number, optionId: number) {
  const res = await call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body: { options: [optionId], fingerprint: `v${++voter}` } });
  expect(res.status).toBe(202);
}

async function storedCounts(pollId: number) {
  const res = await call(stack, 'GET', `/api/v1/polls/${pollId}/results`);
  const counts = Object.fromEntries(res.body.options.map((o: any) => [String(o.option_id), o.vote_count]));
  return { total: res.body.total_votes as number, counts };
}

async function subscribers(pollId: number): Promise<number> {
  const [, n] = (await redis.pubsub('SHARDNUMSUB', redisKeys(stack.config.REDIS_NAMESPACE).pollUpdates(pollId))) as [string, number];
  return Number(n);
}

describe('live results', () => {
  it('sends a snapshot at once, then the counted votes, and lets go of the channel once the last watcher has gone for WS_FEED_LINGER_MS', async () => {
    const poll = await publicPoll();
    const [a, b] = poll.options.map((o) => o.option_id);
    const t0 = Date.now();
    const w = watch(g1, { poll_id: poll.poll_id });
    const snapshot = await w.waitFor(() => true, 5000, 'the snapshot');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(snapshot).toMatchObject({ type: 'results', poll_id: poll.poll_id, total_votes: 0, final: false });
    expect(snapshot.counts).toEqual(Object.fromEntries(poll.options.map((o) => [String(o.option_id), 0])));
    expect(typeof snapshot.seq).toBe('number');
    expect(await subscribers(poll.poll_id)).toBe(1);

    // A second watcher of the same poll on the same gateway shares the one subscription.
    const w2 = watch(g1, { poll_id: poll.poll_id });
    await w2.waitFor(() => true, 5000, 'the second snapshot');
    expect(await subscribers(poll.poll_id)).toBe(1);

    await vote(poll.poll_id, a);
    await vote(poll.poll_id, b);
    const seen = await w.waitFor((m) => m.total_votes === 2, 5000, 'two votes');
    expect(seen.counts).toMatchObject({ [a]: 1, [b]: 1 });
    expect(seen.seq).toBeGreaterThan(snapshot.seq);

    w.close();
    w2.close();
    await Promise.all([w.ended, w2.ended]);
    await eventually(async () => (await subscribers(poll.poll_id)) === 0, 5000, 'the unsubscribe');
  });

  it('coalesces a burst to at most two messages a second, and both gateways end on the stored counts', async () => {
    const poll = await publicPoll();
    const ids = poll.options.map((o) => o.option_id);
    const clients = [watch(g1, { poll_id: poll.poll_id }), watch(g1, { poll_id: poll.poll_id }), watch(g2, { poll_id: poll.poll_id })];
    await Promise.all(clients.map((c) => c.waitFor(() => true, 5000, 'the snapshot')));

    // About 1,000 votes a second for 3 seconds, far more commits than the 2 messages a second allowed.
    const started = Date.now();
    let sent = 0;
    while (Date.now() - started < 3000) {
      const tick = Date.now();
      await Promise.all(Array.from({ length: 50 }, () => vote(poll.poll_id, ids[sent++ % ids.length])));
      await new Promise((r) => setTimeout(r, Math.max(0, 50 - (Date.now() - tick))));
    }
    await eventually(async () => (await storedCounts(poll.poll_id)).total === sent, 15_000, 'all votes counted');
    const stored = await storedCounts(poll.poll_id);
    await Promise.all(clients.map((c) => c.waitFor((m) => m.total_votes === sent, 5000, 'the final counts')));
    const ended = Date.now();

    for (const c of clients) {
      expect(c.last().counts).toEqual(stored.counts);
      const times = c.messages.map((m) => m.at);
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      // The server spaces them 500 ms apart; the margin is for this busy test process's own event loop.
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(350);
      expect(c.messages.length).toBeLessThanOrEqual(Math.ceil((ended - started) / 500) + 2);
      // Updated throughout the burst, not only at the end.
      expect(c.messages.length).toBeGreaterThanOrEqual(5);
    }
    for (const c of clients) c.close();
  });

  it('ignores out-of-order messages, but a final one always wins', async () => {
    const poll = await publicPoll();
    const channel = redisKeys(stack.config.REDIS_NAMESPACE).pollUpdates(poll.poll_id);
    const w = watch(g1, { poll_id: poll.poll_id });
    const snapshot = await w.waitFor(() => true, 5000, 'the snapshot');
    const message = (seq: number, total: number, final = false) =>
      JSON.stringify({ ...snapshot, seq, total_votes: total, final, status: final ? 'CLOSED' : 'ACTIVE' });

    await redis.spublish(channel, message(snapshot.seq + 10, 10));
    await w.waitFor((m) => m.seq === snapshot.seq + 10, 5000, 'the newer state');
    await redis.spublish(channel, message(snapshot.seq + 5, 5));
    await new Promise((r) => setTimeout(r, 800));
    expect(w.last()).toMatchObject({ seq: snapshot.seq + 10, total_votes: 10 });
    await redis.spublish(channel, message(snapshot.seq + 7, 7, true));
    expect(await w.waitFor((m) => m.final === true, 5000, 'the final state')).toMatchObject({ total_votes: 7, final: true });
    w.close();
  });

  it('sends final: true when the creator closes the poll', async () => {
    const creator = await tokenFor(21);
    const poll = await createPoll(stack, { settings: { captcha: 'off' } }, creator);
    const w = watch(g2, { poll_id: poll.poll_id });
    await w.waitFor(() => true, 5000, 'the snapshot');
    await vote(poll.poll_id, poll.options[0].option_id);
    const closed = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: creator });
    expect(closed.status).toBe(200);
    const last = await w.waitFor((m) => m.final === true, 5000, 'the final message');
    expect(last).toMatchObject({ status: 'CLOSED', final: true });
    expect(last.total_votes).toBe((await storedCounts(poll.poll_id)).total);
    w.close();
  });

  it('converges to the stored counts after its Redis subscriber is killed while votes are committed', async () => {
    const poll = await publicPoll();
    const ids = poll.options.map((o) => o.option_id);
    const w = watch(g1, { poll_id: poll.poll_id });
    await w.waitFor(() => true, 5000, 'the snapshot');
    const before = await reconnects(g1);

    // Kill the subscriber over and over while votes commit, so their messages are published to nobody.
    const killing = (async () => {
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        const list = (await redis.client('LIST')) as string;
        const line = list.split('\n').find((l) => l.includes(` name=${g1.subscriberName} `));
        const id = line && /^id=(\d+)/.exec(line)?.[1];
        if (id) await redis.client('KILL', 'ID', id);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 5; i++) await vote(poll.poll_id, ids[i % ids.length]);
    await killing;

    await eventually(async () => (await storedCounts(poll.poll_id)).total === 5, 10_000, 'votes counted');
    const stored = await storedCounts(poll.poll_id);
    const last = await w.waitFor((m) => m.total_votes === 5, 10_000, 'the re-read counts');
    expect(last.counts).toEqual(stored.counts);
    expect(await reconnects(g1)).toBeGreaterThan(before);
    w.close();
  });
});

describe('after a lost subscriber', () => {
  it('lets go of watchers who lost access while the change notice was published to nobody', async () => {
    const poll = await publicPoll();
    const w = watch(g1, { poll_id: poll.poll_id });
    await w.waitFor(() => true, 5000, 'the snapshot');
    const before = await reconnects(g1);
    const list = (await redis.client('LIST')) as string;
    const id = /^id=(\d+)/.exec(list.split('\n').find((l) => l.includes(` name=${g1.subscriberName} `)) ?? '')?.[1];
    expect(id).toBeDefined();
    // Killed, then the results hidden before it is back: the notice of the change is lost.
    await redis.client('KILL', 'ID', id!);
    const hidden = await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, {
      token: await tokenFor(1),
      body: { settings: { show_results_before_close: false } },
    });
    expect(hidden.status).toBe(200);
    const ended = await Promise.race([w.ended, new Promise((r) => setTimeout(r, 10_000, 'still open after 10 s'))]);
    expect(ended).toMatchObject({ code: 4403 });
    expect(await reconnects(g1)).toBeGreaterThan(before);
  });
});

async function reconnects(g: RealtimeHandle): Promise<number> {
  const text = await (await fetch(`${g.url}/metrics`)).text();
  return Number(/^realtime_pubsub_reconnects_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
}

describe('access on upgrade', () => {
  async function refusal(w: Watch) {
    const end = await w.ended;
    expect(w.messages).toEqual([]);
    return end.code ?? end.status;
  }

  it('closes with 4401 for a bad token, in the query or the Authorization header', async () => {
    const poll = await publicPoll();
    expect(await refusal(watch(g1, { poll_id: poll.poll_id, token: 'not-a-jwt' }))).toBe(4401);
    const forged = await tokenFor(5, {}, 'another-secret-another-secret-123');
    expect(await refusal(watch(g1, { poll_id: poll.poll_id, token: forged }))).toBe(4401);
    expect(await refusal(watch(g1, { poll_id: poll.poll_id }, { headers: { authorization: `Bearer ${forged}` } }))).toBe(4401);
    // A good token in the header is accepted.
    const ok = watch(g1, { poll_id: poll.poll_id }, { headers: { authorization: `Bearer ${await tokenFor(5)}` } });
    await ok.waitFor(() => true, 5000, 'the snapshot');
    ok.close();
  });

  it('a signed-in watch ends with 4401 when its token expires', async () => {
    const poll = await publicPoll();
    const shortLived = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('5')
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
      .sign(new TextEncoder().encode(stack.config.JWT_SECRET));
    const w = watch(g1, { poll_id: poll.poll_id, token: shortLived });
    await w.waitFor(() => true, 5000, 'the snapshot');
    const started = Date.now();
    expect(await w.ended).toMatchObject({ code: 4401 });
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('closes with 4404 for a PRIVATE poll without its key, 4403 for an organization outsider and hidden results', async () => {
    const privatePoll = await publicPoll({ visibility: 'PRIVATE' });
    expect(await refusal(watch(g1, { poll_id: privatePoll.poll_id }))).toBe(4404);
    expect(await refusal(watch(g1, { poll_id: privatePoll.poll_id, key: 'wrong' }))).toBe(4404);
    const withKey = watch(g1, { poll_id: privatePoll.poll_id, key: privatePoll.access_key! });
    await withKey.waitFor(() => true, 5000, 'the private snapshot');

    const orgPoll = await createPoll(stack, { visibility: 'ORGANIZATION' }, await tokenFor(30, { org: 7 }));
    expect(await refusal(watch(g1, { poll_id: orgPoll.poll_id, token: await tokenFor(31, { org: 8 }) }))).toBe(4403);
    expect(await refusal(watch(g1, { poll_id: orgPoll.poll_id }))).toBe(4403);
    const member = watch(g1, { poll_id: orgPoll.poll_id, token: await tokenFor(32, { org: 7 }) });
    await member.waitFor(() => true, 5000, 'the member snapshot');

    const creator = await tokenFor(40);
    const hidden = await createPoll(stack, { settings: { show_results_before_close: false } }, creator);
    const end = await watch(g1, { poll_id: hidden.poll_id, token: await tokenFor(41) }).ended;
    expect(end).toMatchObject({ code: 4403, reason: 'RESULTS_HIDDEN' });
    const own = watch(g1, { poll_id: hidden.poll_id, token: creator });
    await own.waitFor(() => true, 5000, 'the creator snapshot');

    // Hiding the results of a watched poll lets its watchers go.
    const shown = await createPoll(stack, {}, creator);
    const watcher = watch(g1, { poll_id: shown.poll_id });
    await watcher.waitFor(() => true, 5000, 'the snapshot');
    const patched = await call(stack, 'PATCH', `/api/v1/polls/${shown.poll_id}`, {
      token: creator,
      body: { settings: { show_results_before_close: false } },
    });
    expect(patched.status).toBe(200);
    expect((await watcher.ended).code).toBe(4403);
    for (const w of [withKey, member, own, watcher]) w.close();
  });

  it('closes with 4404 for an unknown poll or a malformed id', async () => {
    expect(await refusal(watch(g1, { poll_id: 987654321 }))).toBe(4404);
    expect(await refusal(watch(g1, { poll_id: 'abc' }))).toBe(4404);
    expect(await refusal(watch(g1, {}))).toBe(4404);
  });

  it('closes an oversized client frame with 1009', async () => {
    const poll = await publicPoll();
    const w = watch(g1, { poll_id: poll.poll_id });
    await w.waitFor(() => true, 5000, 'the snapshot');
    w.ws.send('x'.repeat(4096));
    expect((await w.ended).code).toBe(1009);
  });
});

describe('protection', () => {
  it('checks the Origin, caps connections per address, drops dead peers and says going-away on shutdown', async () => {
    const g3 = await startRealtime(stack.config, {
      WS_ALLOWED_ORIGINS: 'https://polls.example, https://other.example',
      WS_MAX_CONNECTIONS_PER_IP: 2,
      WS_PING_INTERVAL_MS: 200,
    });
    try {
      const poll = await publicPoll();
      expect(await watch(g3, { poll_id: poll.poll_id }, { headers: { origin: 'https://evil.example' } }).ended).toEqual({ status: 403 });
      const good = watch(g3, { poll_id: poll.poll_id }, { headers: { origin: 'https://polls.example' } });
      await good.waitFor(() => true, 5000, 'the snapshot');

      // A peer that never answers pings is dropped; its place is freed.
      const dead = watch(g3, { poll_id: poll.poll_id }, { autoPong: false });
      await dead.waitFor(() => true, 5000, 'the snapshot');
      expect(await watch(g3, { poll_id: poll.poll_id }).ended).toEqual({ status: 429 });
      expect((await dead.ended).code).toBe(1006);

      const again = watch(g3, { poll_id: poll.poll_id });
      await again.waitFor(() => true, 5000, 'the snapshot');
      await g3.close();
      expect((await good.ended).code).toBe(1001);
      expect((await again.ended).code).toBe(1001);
    } finally {
      await g3.close().catch(() => {});
    }
  });

  it('skips a client that stops reading, then drops it, so it cannot grow our memory', async () => {
    const poll = await publicPoll();
    const channel = redisKeys(stack.config.REDIS_NAMESPACE).pollUpdates(poll.poll_id);
    const subscriber = createRedis(stack.config.REDIS_URL);
    let dropped = 0;
    const feeds = createPollFeeds({
      db: stack.db,
      subscriber,
      keys: redisKeys(stack.config.REDIS_NAMESPACE),
      onSent: () => {},
      onSlowConsumerDropped: () => dropped++,
    });
    // A peer whose socket buffer never drains, as far as the feed can tell.
    const sent: Buffer[] = [];
    let terminated = false;
    const ws = { readyState: WebSocket.OPEN, bufferedAmount: 0, send: (b: Buffer) => sent.push(b), terminate: () => (terminated = true) };
    const stuck: Watcher = { ws: ws as unknown as WebSocket, sent: null, sentAt: 0, skips: 0 };
    try {
      await feeds.watch(poll.poll_id, stuck);
      expect(sent).toHaveLength(1);
      ws.bufferedAmount = 10 * 1024 * 1024;
      const snapshot = JSON.parse(sent[0].toString());
      for (let seq = snapshot.seq + 1; !terminated && seq < snapshot.seq + 200; seq++) {
        await redis.spublish(channel, JSON.stringify({ ...snapshot, seq }));
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(terminated).toBe(true);
      expect(dropped).toBe(1);
      expect(sent).toHaveLength(1);
    } finally {
      feeds.close();
      subscriber.disconnect();
    }
  });
});
