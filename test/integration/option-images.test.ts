import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createPoll, startStack, type Stack, tokenFor } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: false, env: { OPTION_IMAGE_HOSTS: 'images.example.com' } });
});
afterAll(async () => {
  await stack?.close();
});

const pollBody = (imageUrl: string) => ({
  question: 'Which logo?',
  poll_type: 'SINGLE_CHOICE',
  status: 'ACTIVE',
  options: [{ text: 'a' }, { text: 'b', image_url: imageUrl }],
});

describe('option images with OPTION_IMAGE_HOSTS set', () => {
  it('refuse an image from another host, on create and on edit, and store nothing', async () => {
    const auth = { authorization: `Bearer ${await tokenFor(1)}` };
    const before = (
      await stack.db
        .selectFrom('polls')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n;
    const refused = await call(stack, 'POST', '/api/v1/polls', { body: pollBody('https://tracker.example.org/pixel.png'), headers: auth });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'options.1.image_url' });
    expect(
      (
        await stack.db
          .selectFrom('polls')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    ).toBe(before);

    const allowed = await call(stack, 'POST', '/api/v1/polls', { body: { ...pollBody('https://images.example.com/b.png'), status: 'DRAFT' }, headers: auth });
    expect(allowed.status).toBe(201);
    const edit = await call(stack, 'PATCH', `/api/v1/polls/${allowed.body.poll_id}`, {
      body: { options: [{ text: 'a' }, { text: 'b', image_url: 'https://tracker.example.org/pixel.png' }] },
      headers: auth,
    });
    expect(edit.status).toBe(400);
    expect(edit.body.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'options.1.image_url' });
    const stored = await call(stack, 'GET', `/api/v1/polls/${allowed.body.poll_id}`, { headers: auth });
    expect(stored.body.options[1].image_url).toBe('https://images.example.com/b.png');
  });

  it('let the pages load images from the allowed hosts only', async () => {
    const poll = await createPoll(stack);
    for (const path of [`/polls/${poll.poll_id}`, `/embed/polls/${poll.poll_id}`]) {
      const csp = (await call<string>(stack, 'GET', path)).headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("img-src 'self' data: https://images.example.com;");
    }
  });
});
