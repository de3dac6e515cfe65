import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tabulateRanked } from '../../src/domain/tally/ranked.js';
import { summarizeRatings } from '../../src/domain/tally/rating.js';
import { createRedis } from '../../src/shared/redis.js';
import { redisKeys } from '../../src/shared/redis-keys.js';
import { call, countersAndRecount, createPoll, eventually, startStack, tokenFor, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  // Every anonymous voter here shares one address: the fraud limits must not get in the way.
  stack = await startStack({ env: { VOTES_PER_IP_PER_POLL_PER_HOUR: '1000000', PREFIX_VOTES_LIMIT: '1000000', MIN_RESPONSE_MS: '0' } });
});
afterAll(async () => {
  await stack?.close();
});

const noCaptcha = { captcha: 'off' };

/** Votes as the anonymous voter `fingerprint` (same fingerprint = same voter). */
async function vote(pollId: number, fingerprint: string, body: Record<string, unknown>) {
  const res = await call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body: { ...body, fingerprint } });
  if (res.status !== 202) throw new Error(`vote failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { changed: boolean };
}

const results = async (pollId: number) => (await call(stack, 'GET', `/api/v1/polls/${pollId}/results`)).body;

async function resultsWhen(pollId: number, ready: (body: any) => boolean) {
  let body: any;
  await eventually(async () => ready((body = await results(pollId))), 15_000, `results of poll ${pollId}`);
  return body;
}

it('counts a RANKED poll by instant runoff (Tennessee, 42/26/15/17), publishes the seed hash and reveals the seed at close', async () => {
  const poll = await createPoll(stack, {
    poll_type: 'RANKED',
    options: [{ text: 'Memphis' }, { text: 'Nashville' }, { text: 'Chattanooga' }, { text: 'Knoxville' }],
    allow_change_vote: true,
    settings: noCaptcha,
  });
  const [M, N, C, K] = poll.options.map((o) => o.option_id);
  expect(poll.tiebreak_seed_hash).toMatch(/^[0-9a-f]{64}$/);
  const read = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`);
  expect(read.body.tiebreak_seed_hash).toBe(poll.tiebreak_seed_hash);

  const groups: Array<[number, number[]]> = [
    [42, [M, N, C, K]],
    [26, [N, C, K, M]],
    [15, [C, K, N, M]],
    [17, [K, C, N, M]],
  ];
  let voter = 0;
  await Promise.all(groups.flatMap(([n, ranking]) => Array.from({ length: n }, () => vote(poll.poll_id, `tn-${voter++}`, { ranking }))));

  const body = await resultsWhen(poll.poll_id, (b) => b.total_votes === 100);
  expect(Object.fromEntries(body.options.map((o: any) => [o.option_id, o.vote_count]))).toEqual({ [M]: 42, [N]: 26, [C]: 15, [K]: 17 });
  expect(body.ranked).toEqual({
    winner: K,
    rounds: [
      { round: 1, tallies: { [M]: 42, [N]: 26, [C]: 15, [K]: 17 }, exhausted: 0, eliminated: [C] },
      { round: 2, tallies: { [M]: 42, [N]: 26, [K]: 32 }, exhausted: 0, eliminated: [N] },
      { round: 3, tallies: { [M]: 42, [K]: 58 }, exhausted: 0, eliminated: [] },
    ],
    tie_breaks: [],
    borda: { [M]: 126, [N]: 194, [C]: 173, [K]: 107 },
    condorcet_winner: N,
    seed_hash: poll.tiebreak_seed_hash,
  });

  // Nine Memphis voters change their minds (a truncated ballot). Chattanooga and Knoxville
  // together (32) now trail Nashville (35), so both go at once and carry Nashville past Memphis.
  const changes = await Promise.all(Array.from({ length: 9 }, (_, i) => vote(poll.poll_id, `tn-${i}`, { ranking: [N, M] })));
  expect(changes.every((c) => c.changed)).toBe(true);
  // All nine in (with eight, Nashville already leads): the changes may land in several writes.
  const changed = await resultsWhen(poll.poll_id, (b) => b.ranked.rounds[0].tallies[M] === 33);
  expect(changed.total_votes).toBe(100);
  expect(changed.ranked.rounds).toEqual([
    { round: 1, tallies: { [M]: 33, [N]: 35, [C]: 15, [K]: 17 }, exhausted: 0, eliminated: [C, K] },
    { round: 2, tallies: { [M]: 33, [N]: 67 }, exhausted: 0, eliminated: [] },
  ]);
  const groupsNow = await stack.db.selectFrom('ranked_ballot_counts').select(['ranking', 'ballot_count']).where('poll_id', '=', poll.poll_id).execute();
  expect(groupsNow.filter((g) => g.ballot_count > 0).sort((a, b) => b.ballot_count - a.ballot_count)).toEqual([
    { ranking: [M, N, C, K], ballot_count: 33 },
    { ranking: [N, C, K, M], ballot_count: 26 },
    { ranking: [K, C, N, M], ballot_count: 17 },
    { ranking: [C, K, N, M], ballot_count: 15 },
    { ranking: [N, M], ballot_count: 9 },
  ]);
  expect(changed.ranked.seed).toBeUndefined();

  const closed = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: await tokenFor(1) });
  expect(closed.status).toBe(200);
  const final = await resultsWhen(poll.poll_id, (b) => b.status === 'CLOSED');
  expect(final.ranked.seed).toMatch(/^[0-9a-f]{64}$/);
  expect(createHash('sha256').update(final.ranked.seed).digest('hex')).toBe(poll.tiebreak_seed_hash);
});

it('summarises a RATING poll (count, mean, median, stddev, histogram, Bayesian order) and follows changed votes', async () => {
  const poll = await createPoll(stack, {
    poll_type: 'RATING',
    options: [{ text: 'A' }, { text: 'B' }, { text: 'C' }],
    allow_change_vote: true,
    settings: { ...noCaptcha, rating_min: 1, rating_max: 5 },
  });
  const [A, B, C] = poll.options.map((o) => o.option_id);
  expect(poll.tiebreak_seed_hash).toBeUndefined();
  await Promise.all([
    vote(poll.poll_id, 'r1', { ratings: { [A]: 5, [B]: 3 } }),
    vote(poll.poll_id, 'r2', { ratings: { [A]: 4, [B]: 3, [C]: 1 } }),
    vote(poll.poll_id, 'r3', { ratings: { [A]: 5 } }),
    vote(poll.poll_id, 'r4', { ratings: { [B]: 2, [C]: 2 } }),
  ]);
  const body = await resultsWhen(poll.poll_id, (b) => b.total_votes === 4);
  expect(Object.fromEntries(body.options.map((o: any) => [o.option_id, o.vote_count]))).toEqual({ [A]: 3, [B]: 3, [C]: 2 });
  // Poll mean 25/8 = 3.125 with a prior weight of 5: A (5*3.125 + 14) / 8, B (... + 8) / 8, C (... + 3) / 7.
  expect(body.rating).toEqual({
    bayesian_prior_weight: 5,
    options: [
      { option_id: A, count: 3, mean: 4.6667, median: 5, stddev: 0.4714, histogram: { 1: 0, 2: 0, 3: 0, 4: 1, 5: 2 }, bayesian_average: 3.7031 },
      { option_id: B, count: 3, mean: 2.6667, median: 3, stddev: 0.4714, histogram: { 1: 0, 2: 1, 3: 2, 4: 0, 5: 0 }, bayesian_average: 2.9531 },
      { option_id: C, count: 2, mean: 1.5, median: 1.5, stddev: 0.5, histogram: { 1: 1, 2: 1, 3: 0, 4: 0, 5: 0 }, bayesian_average: 2.6607 },
    ],
  });

  expect((await vote(poll.poll_id, 'r3', { ratings: { [A]: 1, [C]: 5 } })).changed).toBe(true);
  const changed = await resultsWhen(poll.poll_id, (b) => b.rating.options.find((o: any) => o.option_id === C).count === 3);
  expect(changed.total_votes).toBe(4);
  const byId = Object.fromEntries(changed.rating.options.map((o: any) => [o.option_id, o]));
  expect(byId[A]).toMatchObject({ count: 3, mean: 3.3333, median: 4, histogram: { 1: 1, 2: 0, 3: 0, 4: 1, 5: 1 } });
  expect(byId[C]).toMatchObject({ count: 3, mean: 2.6667, median: 2, histogram: { 1: 1, 2: 1, 3: 0, 4: 0, 5: 1 } });
});

it('publishes the current winner and rating order in the live messages', async () => {
  const ranked = await createPoll(stack, { poll_type: 'RANKED', settings: noCaptcha });
  const rating = await createPoll(stack, { poll_type: 'RATING', settings: noCaptcha });
  const keys = redisKeys(stack.config.REDIS_NAMESPACE);
  const sub = createRedis(stack.config.REDIS_URL);
  const messages: any[] = [];
  const [x, y, z] = ranked.options.map((o) => o.option_id);
  try {
    sub.on('smessage', (_channel: string, text: string) => messages.push(JSON.parse(text)));
    await sub.ssubscribe(keys.pollUpdates(ranked.poll_id));
    await sub.ssubscribe(keys.pollUpdates(rating.poll_id));
    await vote(ranked.poll_id, 'live-1', { ranking: [y, x] });
    await vote(rating.poll_id, 'live-1', { ratings: { [rating.options[1].option_id]: 4 } });
    await eventually(async () => messages.some((m) => m.poll_id === ranked.poll_id) && messages.some((m) => m.poll_id === rating.poll_id));
  } finally {
    sub.disconnect();
  }
  expect(messages.find((m) => m.poll_id === ranked.poll_id).ranked).toEqual({
    winner: y,
    condorcet_winner: y,
    rounds: 1,
    final_round_tallies: { [x]: 0, [y]: 1, [z]: 0 },
  });
  const live = messages.find((m) => m.poll_id === rating.poll_id).rating.ranking;
  expect(live[0]).toEqual({ option_id: rating.options[1].option_id, bayesian_average: 4, mean: 4, count: 1 });
  expect(live).toHaveLength(3);
});

/** Counted ballot groups and rating buckets recounted from the raw VALID votes, next to the stored aggregates. */
/** Stored aggregates and a recount from the raw votes, read in one snapshot (a batch may commit meanwhile). */
async function aggregatesAndRecount(rankedPoll: number, ratingPoll: number) {
  return stack.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (db) => {
      const { rows: rankedStored } = await sql<{ ranking: string; n: number }>`
      SELECT array_to_string(ranking, ',') AS ranking, ballot_count::int AS n FROM ranked_ballot_counts
      WHERE poll_id = ${rankedPoll} AND ballot_count > 0`.execute(db);
      const { rows: rankedRaw } = await sql<{ ranking: string; n: number }>`
      SELECT (SELECT string_agg(e, ',' ORDER BY i) FROM jsonb_array_elements_text(rank_order) WITH ORDINALITY AS x(e, i)) AS ranking,
             count(*)::int AS n
      FROM votes WHERE poll_id = ${rankedPoll} AND status = 'VALID' GROUP BY rank_order`.execute(db);
      const { rows: ratingStored } = await sql<{ option_id: number; rating: number; n: number }>`
      SELECT option_id, rating, rating_count::int AS n FROM rating_counts
      WHERE poll_id = ${ratingPoll} AND rating_count > 0 ORDER BY 1, 2`.execute(db);
      const { rows: ratingRaw } = await sql<{ option_id: number; rating: number; n: number }>`
      SELECT r.key::bigint AS option_id, r.value::int AS rating, count(*)::int AS n
      FROM votes v, jsonb_each_text(v.ratings) AS r
      WHERE v.poll_id = ${ratingPoll} AND v.status = 'VALID' GROUP BY 1, 2 ORDER BY 1, 2`.execute(db);
      const byRanking = (a: { ranking: string }, b: { ranking: string }) => (a.ranking < b.ranking ? -1 : 1);
      return { rankedStored: rankedStored.sort(byRanking), rankedRaw: rankedRaw.sort(byRanking), ratingStored, ratingRaw };
    });
}

it('keeps the ranked and rating aggregates equal to a recount from the raw votes, through any votes and changes', async () => {
  const optionCount = { ranked: 4, rating: 3 };
  const action = fc.record({
    voter: fc.integer({ min: 0, max: 5 }),
    ranking: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 1 }),
    ratings: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 5 })), {
      minLength: 1,
      selector: ([option]) => option,
    }),
    kind: fc.constantFrom('ranked' as const, 'rating' as const),
  });

  await fc.assert(
    fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 25 }), async (actions) => {
      const ranked = await createPoll(stack, {
        poll_type: 'RANKED',
        options: Array.from({ length: optionCount.ranked }, (_, i) => ({ text: `o${i}` })),
        allow_change_vote: true,
        settings: noCaptcha,
      });
      const rating = await createPoll(stack, {
        poll_type: 'RATING',
        options: Array.from({ length: optionCount.rating }, (_, i) => ({ text: `o${i}` })),
        allow_change_vote: true,
        settings: noCaptcha,
      });
      const rankedIds = ranked.options.map((o) => o.option_id);
      const ratingIds = rating.options.map((o) => o.option_id);
      const latest = { ranked: new Map<number, number[]>(), rating: new Map<number, Record<string, number>>() };

      // Waves of concurrent votes, at most one per voter and poll, so "latest" is well defined.
      let wave: Array<() => Promise<unknown>> = [];
      let inWave = new Set<string>();
      for (const a of actions) {
        const who = `${a.kind}:${a.voter}`;
        if (inWave.has(who)) {
          await Promise.all(wave.map((send) => send()));
          wave = [];
          inWave = new Set();
        }
        inWave.add(who);
        if (a.kind === 'ranked') {
          const ranking = a.ranking.map((i) => rankedIds[i]);
          latest.ranked.set(a.voter, ranking);
          wave.push(() => vote(ranked.poll_id, `p${a.voter}`, { ranking }));
        } else {
          const ratings = Object.fromEntries(a.ratings.map(([i, value]) => [ratingIds[i], value]));
          latest.rating.set(a.voter, ratings);
          wave.push(() => vote(rating.poll_id, `p${a.voter}`, { ratings }));
        }
      }
      await Promise.all(wave.map((send) => send()));

      // What the raw votes must come to once every accepted vote is written.
      const expectedGroups = new Map<string, number>();
      for (const r of latest.ranked.values()) expectedGroups.set(r.join(','), (expectedGroups.get(r.join(',')) ?? 0) + 1);
      const expectedRanked = [...expectedGroups].map(([ranking, n]) => ({ ranking, n })).sort((a, b) => (a.ranking < b.ranking ? -1 : 1));
      const buckets = new Map<string, { option_id: number; rating: number; n: number }>();
      for (const r of latest.rating.values()) {
        for (const [option, value] of Object.entries(r)) {
          const b = buckets.get(`${option}:${value}`) ?? { option_id: Number(option), rating: value, n: 0 };
          buckets.set(`${option}:${value}`, { ...b, n: b.n + 1 });
        }
      }
      const expectedRatings = [...buckets.values()].sort((a, b) => a.option_id - b.option_id || a.rating - b.rating);
      let agg!: Awaited<ReturnType<typeof aggregatesAndRecount>>;
      await eventually(async () => {
        agg = await aggregatesAndRecount(ranked.poll_id, rating.poll_id);
        return JSON.stringify(agg.rankedRaw) === JSON.stringify(expectedRanked) && JSON.stringify(agg.ratingRaw) === JSON.stringify(expectedRatings);
      });
      expect(agg.rankedStored).toEqual(agg.rankedRaw);
      expect(agg.ratingStored).toEqual(agg.ratingRaw);
      const counters = await countersAndRecount(stack.db, ranked.poll_id);
      expect(counters.counters).toEqual(counters.recount);

      const { tiebreak_seed: seed } = await stack.db
        .selectFrom('polls')
        .select('tiebreak_seed')
        .where('poll_id', '=', ranked.poll_id)
        .executeTakeFirstOrThrow();
      const ballots = agg.rankedRaw.map((g) => ({ ranking: g.ranking.split(',').map(Number), count: g.n }));
      const { seed_hash: _, ...irv } = (await resultsWhen(ranked.poll_id, (b) => b.total_votes === latest.ranked.size)).ranked;
      expect(irv).toEqual(tabulateRanked({ optionIds: rankedIds, ballots, seed }));

      const histograms: Record<number, Record<number, number>> = {};
      for (const r of agg.ratingRaw) (histograms[r.option_id] ??= {})[r.rating] = r.n;
      const ratingBody = await resultsWhen(rating.poll_id, (b) => b.total_votes === latest.rating.size);
      expect(ratingBody.rating.options).toEqual(summarizeRatings({ optionIds: ratingIds, ratingMin: 1, ratingMax: 5, histograms }).options);
    }),
    { numRuns: 15 },
  );
});
