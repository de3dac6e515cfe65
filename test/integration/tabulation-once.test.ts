import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RealtimeHandle } from '../../src/realtime/gateway.js';
import { createRedis } from '../../src/shared/redis.js';
import { redisKeys } from '../../src/shared/redis-keys.js';
import { tabulator, type TabulationEvent } from '../../src/shared/tabulations.js';
import { startRealtime, watch } from '../helpers/realtime.js';
import { call, createPoll, eventually, startStack, type Stack } from '../helpers/stack.js';

/**
 * A big RANKED poll is tabulated once per counts version (seq), whoever asks: results readers,
 * live messages, new watchers, a client that opens and closes sockets in a loop. API, workers
 * and gateway run in this one process here, so they share one tabulator and every tabulation
 * is seen by the counter.
 */
let stack: Stack;
let gateway: RealtimeHandle;
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
beforeAll(async () => {
  stack = await startStack({ env: { FRAUD_DEFENCES: 'off' } });
  gateway = await startRealtime(stack.config);
});
afterAll(async () => {
  await gateway?.close();
  await stack?.close();
  redis.disconnect();
});

const OPTIONS = 20;

describe('ranked results', () => {
  it('are tabulated once per seq, however many read or watch them', async () => {
    const poll = await createPoll(stack, {
      poll_type: 'RANKED',
      options: Array.from({ length: OPTIONS }, (_, i) => ({ text: `o${i}` })),
      settings: { captcha: 'off' },
    });
    const ids = poll.options.map((o) => o.option_id);
    const events: TabulationEvent[] = [];
    const stop = tabulator.observe((e) => e.pollId === poll.poll_id && events.push(e));
    const results = () => call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`);
    try {
      // Distinct rankings from distinct voters, in several batches.
      let n = 0;
      const voteOnce = async () => {
        const k = n++;
        const ranking = [...ids.slice(k % OPTIONS), ...ids.slice(0, k % OPTIONS)].slice(0, 1 + (k % 7));
        const res = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { body: { ranking, fingerprint: `r${k}` } });
        expect(res.status).toBe(202);
      };
      for (let i = 0; i < 40; i++) await voteOnce();
      await eventually(async () => (await results()).body.total_votes === 40, 15_000, '40 counted');

      // Readers, watchers, and a socket opened and closed in a loop.
      const watchers = Array.from({ length: 5 }, () => watch(gateway, { poll_id: poll.poll_id }));
      await Promise.all(watchers.map((w) => w.waitFor(() => true, 5000, 'a snapshot')));
      const before = events.length;
      for (let i = 0; i < 8; i++) {
        expect((await results()).body.ranked.rounds.length).toBeGreaterThan(0);
        await new Promise((r) => setTimeout(r, 250));
      }
      for (let i = 0; i < 20; i++) {
        const w = watch(gateway, { poll_id: poll.poll_id });
        const snapshot = await w.waitFor(() => true, 5000, 'a snapshot');
        expect(snapshot.ranked.rounds).toBeGreaterThan(0);
        w.close();
        await w.ended;
      }
      for (const w of watchers) w.close();
      await Promise.all(watchers.map((w) => w.ended));
      // Nothing changed meanwhile: nobody tabulated again.
      expect(events.length).toBe(before);

      // A new vote: one new seq, one tabulation, shared by the live message and every reader.
      await voteOnce();
      const w = watch(gateway, { poll_id: poll.poll_id });
      await w.waitFor((m) => m.total_votes === 41, 10_000, 'the new vote live');
      for (let i = 0; i < 5; i++) expect((await results()).body.total_votes).toBe(41);
      w.close();
      expect(events.length).toBeGreaterThan(before);

      const perSeq = new Map<number, number>();
      for (const e of events) perSeq.set(e.seq, (perSeq.get(e.seq) ?? 0) + 1);
      expect(
        [...perSeq.values()].every((count) => count === 1),
        `tabulations per seq: ${JSON.stringify([...perSeq])}`,
      ).toBe(true);
    } finally {
      stop();
    }
  });

  it('keep the gateway subscribed for a while after the last watcher, so a reconnect loop reloads nothing', async () => {
    const poll = await createPoll(stack, { poll_type: 'RANKED', settings: { captcha: 'off' } });
    const channel = redisKeys(stack.config.REDIS_NAMESPACE).pollUpdates(poll.poll_id);
    const numsub = async () => Number(((await redis.pubsub('SHARDNUMSUB', channel)) as [string, number])[1]);
    for (let i = 0; i < 3; i++) {
      const w = watch(gateway, { poll_id: poll.poll_id });
      await w.waitFor(() => true, 5000, 'a snapshot');
      w.close();
      await w.ended;
      // Still subscribed: the feed (and its latest state) waits for the next watcher.
      expect(await numsub()).toBe(1);
    }
  });
});
