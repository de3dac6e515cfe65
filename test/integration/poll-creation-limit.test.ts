import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startStack, type Stack, tokenFor } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: false, env: { POLLS_PER_USER_PER_HOUR: '3' } });
});
afterAll(async () => {
  await stack?.close();
});

const body = { question: 'Lunch?', poll_type: 'SINGLE_CHOICE', status: 'DRAFT', options: [{ text: 'pizza' }, { text: 'soup' }] };
const pollCount = async () =>
  Number(
    (
      await stack.db
        .selectFrom('polls')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

describe('POLLS_PER_USER_PER_HOUR', () => {
  it('answers 429 with Retry-After past the limit, creates nothing more, and counts each user apart', async () => {
    const alice = { authorization: `Bearer ${await tokenFor(31)}` };
    for (let i = 0; i < 3; i++) expect((await call(stack, 'POST', '/api/v1/polls', { body, headers: alice })).status).toBe(201);
    const before = await pollCount();
    const refused = await call(stack, 'POST', '/api/v1/polls', { body, headers: alice });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3000);
    expect(await pollCount()).toBe(before);

    const bob = { authorization: `Bearer ${await tokenFor(32)}` };
    expect((await call(stack, 'POST', '/api/v1/polls', { body, headers: bob })).status).toBe(201);
  });

  it('spends nothing on a refused body', async () => {
    const carol = { authorization: `Bearer ${await tokenFor(33)}` };
    for (let i = 0; i < 5; i++)
      expect((await call(stack, 'POST', '/api/v1/polls', { body: { ...body, options: [{ text: 'only one' }] }, headers: carol })).status).toBe(400);
    for (let i = 0; i < 3; i++) expect((await call(stack, 'POST', '/api/v1/polls', { body, headers: carol })).status).toBe(201);
  });
});
