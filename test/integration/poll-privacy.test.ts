import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RealtimeHandle } from '../../src/realtime/gateway.js';
import { startRealtime, watch } from '../helpers/realtime.js';
import { call, createPoll, startStack, tokenFor, type Stack } from '../helpers/stack.js';

/** Drafts and private polls: for everyone who may not see them, exactly what an unused id answers. */
let stack: Stack;
let gateway: RealtimeHandle;
let creator: string;
let admin: string;
let stranger: string;
let member: string;
beforeAll(async () => {
  stack = await startStack({ env: { VOTES_PER_IP_PER_POLL_PER_HOUR: '1000000', PREFIX_VOTES_LIMIT: '1000000' } });
  gateway = await startRealtime(stack.config);
  creator = await tokenFor(11, { org: 4 });
  admin = await tokenFor(12, { role: 'admin' });
  stranger = await tokenFor(13);
  member = await tokenFor(14, { org: 4 });
});
afterAll(async () => {
  await gateway?.close();
  await stack?.close();
});

const UNUSED_ID = 987_654_321;

/** What every reader of a poll id can learn: results, the poll, a vote, analytics, the export, the live feed. */
async function probe(pollId: number, optionId: number, token?: string, key?: string) {
  const q = key ? `?key=${encodeURIComponent(key)}` : '';
  const get = async (path: string) => {
    const res = await call(stack, 'GET', `/api/v1/polls/${pollId}${path}${q}`, { token });
    return `${res.status} ${res.body?.error?.code ?? ''}`.trim();
  };
  const voted = await call(stack, 'POST', `/api/v1/polls/${pollId}/votes${q}`, {
    token,
    body: { options: [optionId] },
    headers: { 'user-agent': `probe-${Math.random()}` },
  });
  const w = watch(gateway, { poll_id: pollId, ...(token ? { token } : {}), ...(key ? { key } : {}) });
  const ended = await Promise.race([w.ended, w.waitFor(() => true, 5000).then(() => ({ code: 'snapshot' }))]);
  w.close();
  return {
    poll: await get(''),
    results: await get('/results'),
    analytics: await get('/analytics'),
    csv: await get('/votes.csv'),
    vote: `${voted.status} ${voted.body?.error?.code ?? ''}`.trim(),
    watch: (ended as { code?: unknown }).code,
  };
}

describe('a DRAFT poll', () => {
  it('does not exist for anyone but its creator and admins: 404 POLL_NOT_FOUND and close 4404, as an unused id', async () => {
    const draft = await createPoll(stack, { status: 'DRAFT' }, creator);
    const option = draft.options[0].option_id;
    const absent = await probe(UNUSED_ID, option, stranger);
    expect(absent).toEqual({
      poll: '404 POLL_NOT_FOUND',
      results: '404 POLL_NOT_FOUND',
      analytics: '404 POLL_NOT_FOUND',
      csv: '404 POLL_NOT_FOUND',
      vote: '404 POLL_NOT_FOUND',
      watch: 4404,
    });
    expect(await probe(draft.poll_id, option, stranger)).toEqual(absent);
    expect(await probe(draft.poll_id, option, member)).toEqual(absent);
    const anonymous = await probe(draft.poll_id, option);
    expect(anonymous).toEqual({ ...absent, analytics: '401 AUTH_REQUIRED', csv: '401 AUTH_REQUIRED' });
    expect(await probe(UNUSED_ID, option)).toEqual(anonymous);
    // Nor can they act on it.
    for (const path of ['/publish', '/close']) {
      expect((await call(stack, 'POST', `/api/v1/polls/${draft.poll_id}${path}`, { token: stranger })).status).toBe(404);
    }
    expect((await call(stack, 'PATCH', `/api/v1/polls/${draft.poll_id}`, { token: stranger, body: { question: 'mine now' } })).status).toBe(404);
  });

  it('is there for its creator (a vote on it is POLL_NOT_ACTIVE) and for admins', async () => {
    const draft = await createPoll(stack, { status: 'DRAFT' }, creator);
    const option = draft.options[0].option_id;
    expect(await probe(draft.poll_id, option, creator)).toEqual({
      poll: '200',
      results: '200',
      analytics: '200',
      csv: '200',
      vote: '409 POLL_NOT_ACTIVE',
      watch: 'snapshot',
    });
    expect(await probe(draft.poll_id, option, admin)).toEqual({
      poll: '200',
      results: '200',
      analytics: '200',
      csv: '200',
      vote: '409 POLL_NOT_ACTIVE',
      watch: 'snapshot',
    });
    // Once published it is anyone's.
    expect((await call(stack, 'POST', `/api/v1/polls/${draft.poll_id}/publish`, { token: creator })).status).toBe(200);
    expect(await probe(draft.poll_id, option, stranger)).toEqual({
      poll: '200',
      results: '200',
      analytics: '403 FORBIDDEN',
      csv: '403 FORBIDDEN',
      vote: '202',
      watch: 'snapshot',
    });
  });

  it('is never listed for others', async () => {
    const draft = await createPoll(stack, { status: 'DRAFT' }, creator);
    for (const q of ['', '?status=DRAFT']) {
      const res = await call(stack, 'GET', `/api/v1/polls${q}`, { token: stranger });
      expect(res.body.items.map((p: { poll_id: number }) => p.poll_id)).not.toContain(draft.poll_id);
    }
    const mine = await call(stack, 'GET', '/api/v1/polls?creator=me', { token: creator });
    expect(mine.body.items.map((p: { poll_id: number }) => p.poll_id)).toContain(draft.poll_id);
  });
});

describe('a PRIVATE poll without its key', () => {
  it('answers everything as an unused id does, over HTTP and on the gateway (4404, not 4403)', async () => {
    const poll = await createPoll(stack, { visibility: 'PRIVATE', settings: { captcha: 'off' } }, creator);
    const option = poll.options[0].option_id;
    const absent = await probe(UNUSED_ID, option, stranger);
    expect(await probe(poll.poll_id, option, stranger)).toEqual(absent);
    expect(await probe(poll.poll_id, option, stranger, 'wrong-key')).toEqual(absent);
    expect(await probe(poll.poll_id, option)).toEqual(await probe(UNUSED_ID, option));
    // With the key it is readable, votable and watchable; analytics stay the creator's.
    expect(await probe(poll.poll_id, option, stranger, poll.access_key)).toEqual({
      poll: '200',
      results: '200',
      analytics: '403 FORBIDDEN',
      csv: '403 FORBIDDEN',
      vote: '202',
      watch: 'snapshot',
    });
  });
});
