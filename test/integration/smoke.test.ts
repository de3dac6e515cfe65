import { afterAll, beforeAll, expect, it } from 'vitest';
import { anonymousVoterKey } from '../../src/domain/voter.js';
import { createRedis } from '../../src/shared/redis.js';
import { partitionTags, redisKeys } from '../../src/shared/redis-keys.js';
import { call, countersAndRecount, createPoll, eventually, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

it('accepts a vote and counts it', async () => {
  const poll = await createPoll(stack);
  const vote = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { body: { options: [poll.options[0].option_id] } });
  expect(vote.status).toBe(202);
  expect(vote.body).toMatchObject({ status: 'accepted', changed: false });
  await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`)).body.total_votes === 1);
  const results = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`);
  expect(results.body.options[0]).toMatchObject({ vote_count: 1, percentage: 100 });
  const c = await countersAndRecount(stack.db, poll.poll_id);
  expect(c.counters).toEqual(c.recount);
});

it("makes the voter's claim last once the vote is queued (a pending claim would lapse in seconds)", async () => {
  const poll = await createPoll(stack);
  const headers = { 'user-agent': 'claim-test' };
  expect((await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { body: { options: [poll.options[1].option_id] }, headers })).status).toBe(202);
  const redis = createRedis(stack.config.REDIS_URL);
  try {
    const key = redisKeys(stack.config.REDIS_NAMESPACE).voter(
      partitionTags(poll.poll_id, 1)[0],
      poll.poll_id,
      anonymousVoterKey(poll.poll_id, '127.0.0.1', 'claim-test'),
    );
    await eventually(async () => (await redis.pttl(key)) > 30 * 86_400_000, 5_000, 'claim confirmed');
  } finally {
    redis.disconnect();
  }
});
