import { sql } from 'kysely';
import { UnrecoverableError, type Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/shared/redis.js';
import { partitionTags, redisKeys } from '../../src/shared/redis-keys.js';
import type { QueuedVote } from '../../src/db/votes.js';
import type { VoteBatchJob } from '../../src/shared/queues.js';
import { createVoteCommitter } from '../../src/workers/vote-ingest.js';
import { call, countersAndRecount, createPoll, eventually, startStack, tokenFor, voteQueuesIdle, type Stack } from '../helpers/stack.js';
import { queuedVote } from '../helpers/factories.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'loopback', FRAUD_DEFENCES: 'off' } });
});
afterAll(async () => {
  await stack?.close();
});

const vote = (pollId: number, body: unknown, ip: string, ua = 'test-agent') =>
  call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body, headers: { 'x-forwarded-for': ip, 'user-agent': ua } });

const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

async function totalOf(pollId: number) {
  return (await call(stack, 'GET', `/api/v1/polls/${pollId}/results`)).body.total_votes as number;
}

describe('exactly once', () => {
  it('200 concurrent identical votes from one voter count once', async () => {
    const poll = await createPoll(stack);
    const body = { options: [poll.options[1].option_id] };
    const results = await Promise.all(Array.from({ length: 200 }, () => vote(poll.poll_id, body, '10.9.9.9')));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(199);
    await eventually(async () => (await totalOf(poll.poll_id)) === 1);
    // Every job done: a vote counted twice would show now, not some time later.
    await eventually(() => voteQueuesIdle(stack), 15_000, 'vote queues idle');
    const c = await countersAndRecount(stack.db, poll.poll_id);
    expect(c.counters).toEqual(c.recount);
    expect(c.total).toBe(1);
  });

  it('thousands of votes across several polls: every counter equals a COUNT over votes', async () => {
    const polls = await Promise.all([
      createPoll(stack),
      createPoll(stack, { poll_type: 'MULTIPLE_CHOICE', settings: { max_choices: 3 } }),
      createPoll(stack, { poll_type: 'RANKED' }),
      createPoll(stack, { poll_type: 'RATING' }),
    ]);
    const bodyFor = (p: (typeof polls)[number], i: number) => {
      const ids = p.options.map((o) => o.option_id);
      switch (p.poll_type) {
        case 'SINGLE_CHOICE':
          return { options: [ids[i % 3]] };
        case 'MULTIPLE_CHOICE':
          return { options: ids.slice(0, 1 + (i % 3)) };
        case 'RANKED':
          return { ranking: [ids[i % 3], ids[(i + 1) % 3]] };
        default:
          return { ratings: { [ids[i % 3]]: 1 + (i % 5) } };
      }
    };
    const accepted = new Map<number, number>();
    const N = 2400;
    for (let start = 0; start < N; start += 200) {
      const batch = await Promise.all(
        Array.from({ length: 200 }, (_, k) => {
          const i = start + k;
          const p = polls[i % polls.length];
          return vote(p.poll_id, bodyFor(p, i), ipOf(i)).then((r) => ({ p, r }));
        }),
      );
      for (const { p, r } of batch) {
        expect(r.status).toBe(202);
        accepted.set(p.poll_id, (accepted.get(p.poll_id) ?? 0) + 1);
      }
    }
    for (const p of polls) {
      await eventually(async () => (await totalOf(p.poll_id)) === accepted.get(p.poll_id), 20_000, `poll ${p.poll_id} totals`);
      const c = await countersAndRecount(stack.db, p.poll_id);
      expect(c.counters).toEqual(c.recount);
      expect(c.total).toBe(c.validVotes);
    }
  });
});

describe('changeable votes', () => {
  it('rapid changes by one voter: the last one counts, once', async () => {
    const poll = await createPoll(stack, { allow_change_vote: true });
    const ids = poll.options.map((o) => o.option_id);
    const first = await vote(poll.poll_id, { options: [ids[0]] }, '10.1.1.1');
    expect(first.body.changed).toBe(false);
    let last = first;
    for (let i = 1; i <= 20; i++) {
      last = await vote(poll.poll_id, { options: [ids[i % 3]] }, '10.1.1.1');
      expect(last.status).toBe(202);
      expect(last.body).toMatchObject({ changed: true, vote_id: first.body.vote_id });
    }
    await eventually(async () => {
      const c = await countersAndRecount(stack.db, poll.poll_id);
      return c.counters[ids[20 % 3]] === 1;
    });
    // Every job done: a vote counted twice would show now, not some time later.
    await eventually(() => voteQueuesIdle(stack), 15_000, 'vote queues idle');
    const c = await countersAndRecount(stack.db, poll.poll_id);
    expect(c.counters).toEqual({ [ids[0]]: 0, [ids[1]]: 0, [ids[2]]: 1 });
    expect(c.counters).toEqual(c.recount);
    expect(c.total).toBe(1);
  });

  it('a change processed before the original, in another batch, still wins; replays change nothing', async () => {
    const poll = await createPoll(stack, { allow_change_vote: true, poll_type: 'RANKED' });
    const ids = poll.options.map((o) => o.option_id);
    const publisher = createRedis(stack.config.REDIS_URL);
    const process = createVoteCommitter({ db: stack.db, publisher, keys: redisKeys(stack.config.REDIS_NAMESPACE), maxVotesPerCommit: 5000 });
    const base = queuedVote(poll.poll_id, {
      voter_key: 'u:99',
      voter_id: 99,
      allow_change: true,
      selected: [ids[0], ids[1]],
      counted: [ids[0]],
      ranking: [ids[0], ids[1]],
    });
    const change: QueuedVote = { ...base, seq: 2, selected: [ids[2]], counted: [ids[2]], ranking: [ids[2]] };
    const job = (votes: QueuedVote[]) => ({ data: { votes } }) as Job<VoteBatchJob>;
    expect(await process(job([change]))).toEqual({ changed: 1 });
    expect(await process(job([base]))).toEqual({ changed: 0 });
    expect(await process(job([change]))).toEqual({ changed: 0 });
    expect(await process(job([base, change, base]))).toEqual({ changed: 0 });
    publisher.disconnect();
    const c = await countersAndRecount(stack.db, poll.poll_id);
    expect(c.counters).toEqual({ [ids[0]]: 0, [ids[1]]: 0, [ids[2]]: 1 });
    const ranked = await stack.db.selectFrom('ranked_ballot_counts').selectAll().where('poll_id', '=', poll.poll_id).execute();
    expect(ranked.map((r) => [r.ranking, r.ballot_count])).toEqual([[[ids[2]], 1]]);
  });

  it('on a poll open longer than a claim lasts, a lapsed claim still finds the stored vote', async () => {
    const keys = redisKeys(stack.config.REDIS_NAMESPACE);
    const redis = createRedis(stack.config.REDIS_URL);
    for (const allowChange of [false, true]) {
      const poll = await createPoll(stack, { allow_change_vote: allowChange });
      const [a, b] = poll.options.map((o) => o.option_id);
      await sql`UPDATE polls SET published_at = now() - interval '100 days', created_at = now() - interval '100 days' WHERE poll_id = ${poll.poll_id}`.execute(
        stack.db,
      );
      const token = await tokenFor(7001);
      const cast = (option: number) => call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { body: { options: [option] }, token });
      expect((await cast(a)).status).toBe(202);
      await eventually(async () => (await totalOf(poll.poll_id)) === 1, 10_000, 'first vote counted');
      // What a claim's expiry (or a Redis that lost it) leaves behind.
      expect(await redis.del(keys.voter(partitionTags(poll.poll_id, 1)[0], poll.poll_id, 'u:7001'))).toBe(1);
      const again = await cast(b);
      if (allowChange) {
        expect({ status: again.status, changed: again.body.changed }).toEqual({ status: 202, changed: true });
        await eventually(async () => (await countersAndRecount(stack.db, poll.poll_id)).counters[b] === 1, 10_000, 'the change counted');
      } else {
        expect({ status: again.status, code: again.body.error?.code }).toEqual({ status: 409, code: 'ALREADY_VOTED' });
        // The claim is back: the next attempt is refused by Redis alone.
        expect(await redis.exists(keys.voter(partitionTags(poll.poll_id, 1)[0], poll.poll_id, 'u:7001'))).toBe(1);
      }
      const c = await countersAndRecount(stack.db, poll.poll_id);
      expect(c.total).toBe(1);
      expect(c.counters).toEqual(c.recount);
    }
    redis.disconnect();
  });

  it('a vote PostgreSQL refuses does not hold back its batch: the others count, it fails for good alone', async () => {
    const poll = await createPoll(stack);
    const option = poll.options[0].option_id;
    const publisher = createRedis(stack.config.REDIS_URL);
    const process = createVoteCommitter({ db: stack.db, publisher, keys: redisKeys(stack.config.REDIS_NAMESPACE), maxVotesPerCommit: 5000 });
    const votes = Array.from({ length: 9 }, (_, i) =>
      queuedVote(poll.poll_id, {
        voter_key: `f:bisect${i}`,
        voter_fingerprint: `bisect${i}`,
        selected: [option],
        counted: [option],
        ip: i === 6 ? 'not-an-address' : `10.9.0.${i}`,
      }),
    );
    const job = { data: { votes } } as Job<VoteBatchJob>;
    const failure = await process(job).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(UnrecoverableError);
    expect((failure as Error).message).toContain(votes[6].vote_id);
    // A retry by hand changes nothing more and still names the same vote.
    await expect(process(job)).rejects.toThrow(votes[6].vote_id);
    publisher.disconnect();
    const c = await countersAndRecount(stack.db, poll.poll_id);
    expect(c.counters[option]).toBe(8);
    expect(c.recount[option]).toBe(8);
  });
});
