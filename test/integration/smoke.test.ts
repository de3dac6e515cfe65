import { afterAll, beforeAll, expect, it } from 'vitest';
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
