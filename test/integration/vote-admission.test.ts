import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousVoterKey } from '../../src/domain/voter.js';
import { createRedis, type RedisClient } from '../../src/shared/redis.js';
import { partitionOf, partitionTags, redisKeys } from '../../src/shared/redis-keys.js';
import { call, countersAndRecount, createPoll, eventually, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let redis: RedisClient;
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'loopback', MIN_RESPONSE_MS: '0', VOTE_PENDING_TTL_MS: '1500', VIEW_TOKEN_TTL_SECONDS: '2' } });
  redis = createRedis(stack.config.REDIS_URL);
});
afterAll(async () => {
  redis?.disconnect();
  await stack?.close();
});

const UA = 'admission-test';
const vote = (pollId: number, body: Record<string, unknown>, ip: string, ua = UA) =>
  call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body, headers: { 'x-forwarded-for': ip, 'user-agent': ua } });
const viewToken = async (pollId: number, ip: string, ua = UA) =>
  (await call(stack, 'GET', `/api/v1/polls/${pollId}`, { headers: { 'x-forwarded-for': ip, 'user-agent': ua } })).body.view_token as string;
const storedView = async (pollId: number) =>
  await stack.db.selectFrom('votes').select(['view_token', 'response_ms', 'status']).where('poll_id', '=', pollId).orderBy('accepted_at').execute();

describe('a voter whose request died mid-way', () => {
  it('gets 409 VOTE_PENDING with Retry-After while the claim is unconfirmed, then votes once it lapses', async () => {
    const poll = await createPoll(stack);
    const ip = '192.0.2.40';
    // What an API that died between the admission and the queue leaves: a pending claim, nothing stored.
    const keys = redisKeys(stack.config.REDIS_NAMESPACE);
    const tag = partitionTags(poll.poll_id, 1)[partitionOf('192.0.2.0/24', 1)];
    const claim = keys.voter(tag, poll.poll_id, anonymousVoterKey(poll.poll_id, ip, UA));
    await redis.hset(claim, 'seq', '1', 'vote_id', '00000000-0000-7000-8000-000000000000', 'st', 'p');
    await redis.pexpire(claim, 1500);

    const pending = await vote(poll.poll_id, { options: [poll.options[0].option_id] }, ip);
    expect({ status: pending.status, code: pending.body.error.code }).toEqual({ status: 409, code: 'VOTE_PENDING' });
    expect(Number(pending.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(pending.headers.get('retry-after'))).toBeLessThanOrEqual(2);
    await eventually(async () => (await vote(poll.poll_id, { options: [poll.options[0].option_id] }, ip)).status === 202, 5000, 'the claim lapsed');
    await eventually(async () => (await countersAndRecount(stack.db, poll.poll_id)).total === 1, 10_000, 'counted once');
    // Confirmed now: a second vote is a duplicate, not pending.
    expect((await vote(poll.poll_id, { options: [poll.options[1].option_id] }, ip)).body.error.code).toBe('ALREADY_VOTED');
  });
});

describe('view tokens', () => {
  it('admit one vote each, count only for the client that fetched them, and expire; the vote records how its token fared', async () => {
    const poll = await createPoll(stack, { allow_change_vote: true });
    const [a, b] = poll.options.map((o) => o.option_id);
    const token = await viewToken(poll.poll_id, '192.0.2.50');
    expect((await vote(poll.poll_id, { options: [a], view_token: token }, '192.0.2.50')).status).toBe(202);
    await eventually(async () => (await storedView(poll.poll_id)).length === 1, 10_000, 'stored');
    // The same token again (a change by the same client): accepted, but it no longer dates a view.
    expect((await vote(poll.poll_id, { options: [b], view_token: token }, '192.0.2.50')).status).toBe(202);
    // Handed to another client: counts as none.
    expect((await vote(poll.poll_id, { options: [a], view_token: await viewToken(poll.poll_id, '192.0.2.51') }, '192.0.2.52')).status).toBe(202);
    const stale = await viewToken(poll.poll_id, '192.0.2.53');
    await new Promise((r) => setTimeout(r, 2100));
    expect((await vote(poll.poll_id, { options: [a], view_token: stale }, '192.0.2.53')).status).toBe(202);
    expect((await vote(poll.poll_id, { options: [a] }, '192.0.2.54')).status).toBe(202);
    await eventually(
      async () => (await storedView(poll.poll_id)).length === 4 && (await storedView(poll.poll_id))[0].view_token === 'reused',
      10_000,
      'all stored',
    );
    const rows = await storedView(poll.poll_id);
    expect(rows.map((r) => r.view_token)).toEqual(['reused', 'foreign', 'expired', 'missing']);
    // The change keeps the time measured by the first vote; the others had no valid token to date them.
    expect(rows[0].response_ms).not.toBeNull();
    expect(rows.slice(1).map((r) => r.response_ms)).toEqual([null, null, null]);
  });

  it('a poll that requires one refuses anonymous votes without a fresh token of their own', async () => {
    const poll = await createPoll(stack, { settings: { require_view_token: true } });
    const body = { options: [poll.options[0].option_id] };
    expect((await vote(poll.poll_id, body, '192.0.2.60')).body.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'view_token' });
    expect((await vote(poll.poll_id, { ...body, view_token: await viewToken(poll.poll_id, '192.0.2.61') }, '192.0.2.60')).status).toBe(400);
    const own = await viewToken(poll.poll_id, '192.0.2.60');
    expect((await vote(poll.poll_id, { ...body, view_token: own }, '192.0.2.60')).status).toBe(202);
    // Spent: another browser on the same address cannot reuse it.
    expect((await vote(poll.poll_id, { ...body, view_token: own }, '192.0.2.60', 'other-browser')).status).toBe(400);
    await eventually(async () => (await countersAndRecount(stack.db, poll.poll_id)).total === 1, 10_000, 'one counted');
  });
});
