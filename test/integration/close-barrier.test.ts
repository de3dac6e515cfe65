import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RealtimeHandle } from '../../src/realtime/gateway.js';
import { startRealtime, watch } from '../helpers/realtime.js';
import { call, countersAndRecount, createPoll, eventually, startStack, tokenFor, type Stack } from '../helpers/stack.js';

let stack: Stack;
let gateway: RealtimeHandle;
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'loopback', FRAUD_DEFENCES: 'off', VOTE_PARTITIONS: '4' } });
  gateway = await startRealtime(stack.config);
});
afterAll(async () => {
  await gateway?.close();
  await stack?.close();
});

it('a close under load is a barrier: no 202 after its answer, and the final message counts every 202 before it', async () => {
  const poll = await createPoll(stack, { poll_type: 'MULTIPLE_CHOICE' });
  const ids = poll.options.map((o) => o.option_id);
  const watcher = watch(gateway, { poll_id: poll.poll_id });
  await watcher.waitFor((m) => m.type === 'results', 10_000, 'a snapshot');

  const answers: Array<{ status: number; at: number }> = [];
  let closedAt = Infinity;
  let next = 0;
  const voter = async () => {
    while (Date.now() < closedAt + 300) {
      const i = next++;
      const res = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
        body: { options: ids.slice(0, 1 + (i % 3)) },
        headers: { 'x-forwarded-for': `10.3.${(i >> 8) & 255}.${i & 255}` },
      });
      answers.push({ status: res.status, at: Date.now() });
    }
  };
  const load = Promise.all(Array.from({ length: 24 }, voter));
  await eventually(async () => answers.filter((a) => a.status === 202).length >= 300, 60_000, 'votes flowing');
  const closed = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: await tokenFor(1) });
  closedAt = Date.now();
  expect(closed.status).toBe(200);
  await load;

  const accepted = answers.filter((a) => a.status === 202);
  expect(accepted.filter((a) => a.at > closedAt)).toEqual([]);
  // Refused once closed, and only so: every other answer is the closed poll's.
  expect(new Set(answers.filter((a) => a.status !== 202).map((a) => a.status))).toEqual(new Set([409]));
  const final = await watcher.waitFor((m) => m.final === true, 20_000, 'the final message');
  expect(final.total_votes).toBe(accepted.length);
  const c = await countersAndRecount(stack.db, poll.poll_id);
  expect(c.total).toBe(accepted.length);
  expect(c.counters).toEqual(c.recount);
  expect(final.counts).toEqual(Object.fromEntries(Object.entries(c.counters).map(([k, v]) => [k, v])));
  // Nothing moves after the final message.
  await new Promise((r) => setTimeout(r, 700));
  expect(watcher.last()).toMatchObject({ final: true, total_votes: accepted.length });
  watcher.close();
}, 120_000);
