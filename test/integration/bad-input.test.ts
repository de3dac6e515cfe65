import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrometheus } from '../helpers/prom.js';
import { call, createPoll, eventually, startStack, tokenFor, type Stack } from '../helpers/stack.js';

/** Bad input never gets 500 or 503: it is the caller's mistake, answered 400 (or 428). */
let stack: Stack;
let creator: string;
let admin: string;
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'loopback' } });
  creator = await tokenFor(1);
  admin = await tokenFor(99, { role: 'admin' });
});
afterAll(async () => {
  await stack?.close();
});

function expectValidation(res: { status: number; body: any }, field?: string) {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status: 400, code: 'VALIDATION_ERROR' });
  if (field) expect(res.body.error.field).toBe(field);
}

const base = { question: 'Q?', poll_type: 'SINGLE_CHOICE', options: [{ text: 'a' }, { text: 'b' }] };

describe('a NUL character (PostgreSQL text refuses it)', () => {
  it('in a question or an option is 400 VALIDATION_ERROR, on create and on edit', async () => {
    const create = (body: object) => call(stack, 'POST', '/api/v1/polls', { token: creator, body: { ...base, ...body } });
    expectValidation(await create({ question: 'Q\u0000?' }), 'question');
    expectValidation(await create({ options: [{ text: 'a\u0000' }, { text: 'b' }] }), 'options.0.text');
    expectValidation(await create({ options: [{ text: 'a', image_url: 'https://example.org/a\u0000.png' }, { text: 'b' }] }), 'options.0.image_url');
    const draft = await createPoll(stack, { status: 'DRAFT' }, creator);
    const patch = (body: object) => call(stack, 'PATCH', `/api/v1/polls/${draft.poll_id}`, { token: creator, body });
    expectValidation(await patch({ question: '\u0000' }), 'question');
    expectValidation(await patch({ options: [{ text: 'x' }, { text: 'y\u0000z' }] }), 'options.1.text');
  });

  it('in a review note is 400 VALIDATION_ERROR, and the vote stays as it was', async () => {
    const poll = await createPoll(stack, {}, creator);
    const res = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
      body: { options: [poll.options[0].option_id] },
      headers: { 'x-forwarded-for': '198.51.100.1' },
    });
    expect(res.status).toBe(202);
    const voteId = res.body.vote_id as string;
    await eventually(
      async () => (await stack.db.selectFrom('votes').select('vote_id').where('vote_id', '=', voteId).executeTakeFirst()) !== undefined,
      15_000,
      'vote stored',
    );
    const review = await call(stack, 'POST', `/api/v1/admin/votes/${voteId}/review`, { token: admin, body: { decision: 'REJECTED', note: 'bot\u0000' } });
    expectValidation(review, 'note');
    const stored = await stack.db.selectFrom('votes').select('status').where('vote_id', '=', voteId).executeTakeFirstOrThrow();
    expect(stored.status).toBe('VALID');
  });
});

describe('a tampered moderation cursor', () => {
  const cursor = (c: unknown) => Buffer.from(typeof c === 'string' ? c : JSON.stringify(c)).toString('base64url');
  const list = (raw: string) => call(stack, 'GET', `/api/v1/admin/flagged-votes?cursor=${encodeURIComponent(raw)}`, { token: admin });
  const uuid = '0193c0de-0000-7000-8000-000000000001';

  it('is 400 VALIDATION_ERROR naming the cursor, whatever was changed', async () => {
    for (const raw of [
      cursor({ created_at: '2026-02-31 10:00:00.123456+00', vote_id: uuid }),
      cursor({ created_at: '1', vote_id: uuid }),
      cursor({ created_at: '2026-12-02 25:00:00+00', vote_id: uuid }),
      cursor({ created_at: '0000-01-01 00:00:00+00', vote_id: uuid }),
      cursor({ created_at: '2026-12-02 10:00:00+00', vote_id: '-'.repeat(36) }),
      cursor({ created_at: '2026-12-02 10:00:00+00', vote_id: 'g'.repeat(8) + uuid.slice(8) }),
      cursor({ created_at: '2026-12-02 10:00:00\u0000+00', vote_id: uuid }),
      cursor({ created_at: ['2026-12-02 10:00:00+00'], vote_id: uuid }),
      cursor('null'),
      cursor('[]'),
      'not base64 at all!',
    ]) {
      expectValidation(await list(raw), 'cursor');
    }
  });

  it('while a cursor the API handed out still pages', async () => {
    const ok = await list(cursor({ created_at: '2026-12-02 10:00:00.123456+00', vote_id: uuid }));
    expect(ok.status).toBe(200);
    expect(ok.body.items).toEqual([]);
  });
});

describe('a CAPTCHA payload the library cannot check', () => {
  const bad = [
    { algorithm: 'SHA-999', challenge: 'ab', number: 1, salt: 'x', signature: 'ab' },
    { algorithm: 7, challenge: 'ab', number: 1, salt: 'x', signature: 'ab' },
    { algorithm: 'SHA-256', challenge: 5, number: 'one', salt: 'x', signature: 'ab' },
  ].map((p) => Buffer.from(JSON.stringify(p)).toString('base64'));
  let n = 0;
  const vote = (pollId: number, optionId: number, captcha: string) =>
    call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body: { options: [optionId], captcha }, headers: { 'x-forwarded-for': `198.51.100.${++n + 10}` } });

  it('counts as not solved: a vote that needs none passes, one that needs one gets 428', async () => {
    const off = await createPoll(stack, { settings: { captcha: 'off' } }, creator);
    const always = await createPoll(stack, { settings: { captcha: 'always' } }, creator);
    for (const captcha of bad) {
      expect((await vote(off.poll_id, off.options[0].option_id, captcha)).status).toBe(202);
      const res = await vote(always.poll_id, always.options[0].option_id, captcha);
      expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status: 428, code: 'CAPTCHA_REQUIRED' });
      expect(res.body.error.challenge).toBeDefined();
    }
  });
});

describe('a vote upload the client abandons', () => {
  it('is not a backend failure: no 503 counted, and the vote path keeps working', async () => {
    const poll = await createPoll(stack, {}, creator);
    const metrics = async () => parsePrometheus(await (await fetch(`${stack.url}/metrics`)).text());
    const before = await metrics();
    const { port } = new URL(stack.url);
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(Number(port), '127.0.0.1', () => {
          socket.write(
            `POST /api/v1/polls/${poll.poll_id}/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"options": [`,
          );
          setTimeout(() => socket.destroy(), 50);
        });
        socket.on('close', () => resolve());
        socket.on('error', reject);
      });
    }
    const moved = (m: Awaited<ReturnType<typeof metrics>>, code: string) =>
      m.value('votes_rejected_total', { code }) - before.value('votes_rejected_total', { code });
    await eventually(async () => moved(await metrics(), 'VALIDATION_ERROR') === 3, 10_000, 'three abandoned uploads counted');
    const after = await metrics();
    expect(moved(after, 'UNAVAILABLE')).toBe(0);
    expect(moved(after, 'INTERNAL')).toBe(0);
    const res = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
      body: { options: [poll.options[0].option_id] },
      headers: { 'x-forwarded-for': '198.51.100.200' },
    });
    expect(res.status).toBe(202);
  });
});
