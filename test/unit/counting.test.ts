import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { counterDeltas, type BallotChange, type CountedBallot, type CounterDeltas } from '../../src/domain/counting.js';
import { ballotOf, OPTION_IDS } from '../helpers/factories.js';

const [A, B, C] = OPTION_IDS;
type Status = CountedBallot['status'];

/** Every counter as `name → value`, zeros left out, so two sets of counters compare with toEqual. */
type Counters = Map<string, number>;
const bump = (c: Counters, key: string, by: number) => {
  const v = (c.get(key) ?? 0) + by;
  if (v === 0) c.delete(key);
  else c.set(key, v);
};

/** The counters moved by `d`, as the SQL of applyBallotChanges moves them. */
function apply(c: Counters, d: CounterDeltas) {
  for (const t of d.tallies) {
    bump(c, `total ${t.pollId}/${t.shard}`, t.total);
    bump(c, `pending ${t.pollId}/${t.shard}`, t.pending);
  }
  for (const o of d.options) bump(c, `option ${o.pollId}/${o.shard} ${o.optionId}`, o.delta);
  for (const r of d.rankings) bump(c, `ranking ${r.pollId}/${r.shard} ${r.ranking.join('>')}`, r.delta);
  for (const r of d.ratings) bump(c, `rating ${r.pollId}/${r.shard} ${r.optionId}=${r.rating}`, r.delta);
}

/** The counters recounted from the ballots as they stand: what the recount queries of the tests compute. */
function recount(ballots: Iterable<CountedBallot>): Counters {
  const c: Counters = new Map();
  for (const b of ballots) {
    const at = `${b.pollId}/${b.shard}`;
    if (b.status === 'SUSPICIOUS') bump(c, `pending ${at}`, 1);
    if (b.status !== 'VALID') continue;
    bump(c, `total ${at}`, 1);
    for (const o of b.counted) bump(c, `option ${at} ${o}`, 1);
    if (b.ranking) bump(c, `ranking ${at} ${b.ranking.join('>')}`, 1);
    for (const [o, r] of Object.entries(b.ratings ?? {})) bump(c, `rating ${at} ${o}=${r}`, 1);
  }
  return c;
}

const fresh = (after: CountedBallot): BallotChange => ({ before: null, after });

describe('counterDeltas: hand-checked changes', () => {
  it("a new VALID ballot adds one to its shard's total and to each option it counts", () => {
    expect(counterDeltas([fresh(ballotOf({ counted: [A, C], shard: 3 }))])).toEqual({
      tallies: [{ pollId: 1, shard: 3, total: 1, pending: 0 }],
      options: [
        { pollId: 1, shard: 3, optionId: A, delta: 1 },
        { pollId: 1, shard: 3, optionId: C, delta: 1 },
      ],
      rankings: [],
      ratings: [],
    });
  });

  it('a new SUSPICIOUS ballot only waits in pending review; a REJECTED one counts nowhere, but its shard still moves', () => {
    expect(counterDeltas([fresh(ballotOf({ status: 'SUSPICIOUS' }))])).toEqual({
      tallies: [{ pollId: 1, shard: 0, total: 0, pending: 1 }],
      options: [],
      rankings: [],
      ratings: [],
    });
    expect(counterDeltas([fresh(ballotOf({ status: 'REJECTED' }))])).toEqual({
      tallies: [{ pollId: 1, shard: 0, total: 0, pending: 0 }],
      options: [],
      rankings: [],
      ratings: [],
    });
  });

  it('a review moves a held ballot: SUSPICIOUS → VALID joins the counts, SUSPICIOUS → REJECTED leaves pending review', () => {
    const held = ballotOf({ status: 'SUSPICIOUS', counted: [B] });
    expect(counterDeltas([{ before: held, after: { ...held, status: 'VALID' } }])).toEqual({
      tallies: [{ pollId: 1, shard: 0, total: 1, pending: -1 }],
      options: [{ pollId: 1, shard: 0, optionId: B, delta: 1 }],
      rankings: [],
      ratings: [],
    });
    expect(counterDeltas([{ before: held, after: { ...held, status: 'REJECTED' } }])).toEqual({
      tallies: [{ pollId: 1, shard: 0, total: 0, pending: -1 }],
      options: [],
      rankings: [],
      ratings: [],
    });
  });

  it('flagging a counted ballot takes it out of the counts and into pending review', () => {
    const counted = ballotOf({ counted: [B] });
    expect(counterDeltas([{ before: counted, after: { ...counted, status: 'SUSPICIOUS' } }])).toEqual({
      tallies: [{ pollId: 1, shard: 0, total: -1, pending: 1 }],
      options: [{ pollId: 1, shard: 0, optionId: B, delta: -1 }],
      rankings: [],
      ratings: [],
    });
  });

  it('a changed vote moves its options, leaves the total alone and leaves out options that did not move', () => {
    const d = counterDeltas([{ before: ballotOf({ counted: [A, B] }), after: ballotOf({ counted: [B, C] }) }]);
    expect(d.tallies).toEqual([{ pollId: 1, shard: 0, total: 0, pending: 0 }]);
    expect(d.options).toEqual([
      { pollId: 1, shard: 0, optionId: A, delta: -1 },
      { pollId: 1, shard: 0, optionId: C, delta: 1 },
    ]);
  });

  it("a replayed change (the same ballot before and after) moves nothing but the shard's version", () => {
    const b = ballotOf({ ranking: [A, B], status: 'VALID' });
    expect(counterDeltas([{ before: b, after: b }])).toEqual({
      tallies: [{ pollId: 1, shard: 0, total: 0, pending: 0 }],
      options: [],
      rankings: [],
      ratings: [],
    });
  });

  it('a RANKED ballot counts its first preference and its whole ranking as one ballot group', () => {
    const d = counterDeltas([{ before: ballotOf({ ranking: [A, B, C] }), after: ballotOf({ ranking: [B, A] }) }]);
    expect(d.options).toEqual([
      { pollId: 1, shard: 0, optionId: A, delta: -1 },
      { pollId: 1, shard: 0, optionId: B, delta: 1 },
    ]);
    expect(d.rankings).toEqual([
      { pollId: 1, shard: 0, ranking: [A, B, C], delta: -1 },
      { pollId: 1, shard: 0, ranking: [B, A], delta: 1 },
    ]);
  });

  it('a RATING ballot moves each (option, rating) histogram bucket, and only those that changed', () => {
    const d = counterDeltas([{ before: ballotOf({ ratings: { [A]: 4, [B]: 2 } }), after: ballotOf({ ratings: { [A]: 4, [B]: 5, [C]: 1 } }) }]);
    expect(d.options).toEqual([{ pollId: 1, shard: 0, optionId: C, delta: 1 }]);
    expect(d.ratings).toEqual([
      { pollId: 1, shard: 0, optionId: B, rating: 2, delta: -1 },
      { pollId: 1, shard: 0, optionId: B, rating: 5, delta: 1 },
      { pollId: 1, shard: 0, optionId: C, rating: 1, delta: 1 },
    ]);
  });

  it('keeps polls and shards apart, one tally per touched (poll, shard)', () => {
    const d = counterDeltas([
      fresh(ballotOf({ pollId: 1, shard: 0 })),
      fresh(ballotOf({ pollId: 1, shard: 1 })),
      fresh(ballotOf({ pollId: 2, shard: 0 })),
      fresh(ballotOf({ pollId: 1, shard: 0, status: 'SUSPICIOUS' })),
    ]);
    expect(d.tallies).toEqual([
      { pollId: 1, shard: 0, total: 1, pending: 1 },
      { pollId: 1, shard: 1, total: 1, pending: 0 },
      { pollId: 2, shard: 0, total: 1, pending: 0 },
    ]);
    expect(d.options.map((o) => [o.pollId, o.shard, o.optionId, o.delta])).toEqual([
      [1, 0, A, 1],
      [1, 1, A, 1],
      [2, 0, A, 1],
    ]);
  });

  it('makes nothing of no changes', () => {
    expect(counterDeltas([])).toEqual({ tallies: [], options: [], rankings: [], ratings: [] });
  });
});

describe('counterDeltas: any sequence of ballot changes', () => {
  const POLLS = [1, 2];
  const SHARDS = [0, 1];
  const VOTERS = 6;
  const status = fc.constantFrom<Status>('VALID', 'VALID', 'SUSPICIOUS', 'REJECTED');
  /** A ballot of one of the poll types, as validateBallot would derive its counted options. */
  const selection = fc.oneof(
    fc.constantFrom(...OPTION_IDS).map((o) => ({ counted: [o], ranking: null, ratings: null })),
    fc
      .uniqueArray(fc.constantFrom(...OPTION_IDS), { minLength: 1, maxLength: 3 })
      .map((os) => ({ counted: [...os].sort((a, b) => a - b), ranking: null, ratings: null })),
    fc.uniqueArray(fc.constantFrom(...OPTION_IDS), { minLength: 1, maxLength: 4 }).map((ranking) => ({ counted: ranking.slice(0, 1), ranking, ratings: null })),
    fc
      .uniqueArray(fc.constantFrom(...OPTION_IDS), { minLength: 1, maxLength: 4 })
      .chain((os) => fc.tuple(...os.map((o) => fc.integer({ min: 1, max: 3 }).map((r) => [o, r] as const))))
      .map((pairs) => ({
        counted: pairs.map(([o]) => o).sort((a, b) => a - b),
        ranking: null,
        ratings: Object.fromEntries(pairs.map(([o, r]) => [String(o), r])),
      })),
  );
  /** One step: voter `voter` of poll `poll` votes anew, changes their ballot, or is reviewed (status only). */
  const step = fc.record({
    poll: fc.constantFrom(...POLLS),
    voter: fc.integer({ min: 0, max: VOTERS - 1 }),
    kind: fc.constantFrom('ballot', 'status'),
    status,
    selection,
  });
  type Step = { poll: number; voter: number; kind: 'ballot' | 'status'; status: Status; selection: Pick<CountedBallot, 'counted' | 'ranking' | 'ratings'> };
  /** Where the batches of the committer end: a list of cut points into the sequence. */
  const run = fc.tuple(fc.array(step, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 10 }));

  /** Turns the steps into ballot changes (before = the voter's ballot as it stood), and the ballots at the end. */
  function play(steps: Step[]) {
    const current = new Map<string, CountedBallot>();
    const changes: BallotChange[] = [];
    for (const s of steps) {
      const key = `${s.poll}:${s.voter}`;
      const before = current.get(key) ?? null;
      // A voter stays in their partition: the shard follows from who they are.
      const shard = SHARDS[s.voter % SHARDS.length];
      const after: CountedBallot =
        s.kind === 'status' && before ? { ...before, status: s.status } : { pollId: s.poll, shard, status: s.status, ...s.selection };
      changes.push({ before, after });
      current.set(key, after);
    }
    return { changes, final: current.values() };
  }

  it('applied one by one, or in batches of any size, the deltas equal a recount of the final ballots, never going below zero', () => {
    fc.assert(
      fc.property(run, ([steps, cuts]) => {
        const { changes, final } = play(steps);
        const expected = recount(final);

        const oneByOne: Counters = new Map();
        for (const c of changes) apply(oneByOne, counterDeltas([c]));
        expect(oneByOne).toEqual(expected);

        const ends = [...new Set(cuts.map((n) => n % (changes.length + 1))), changes.length].sort((a, b) => a - b);
        const batched: Counters = new Map();
        let from = 0;
        for (const end of ends) {
          apply(batched, counterDeltas(changes.slice(from, end)));
          from = end;
          for (const [k, v] of batched) expect(v, `${k} after a batch`).toBeGreaterThan(0);
        }
        expect(batched).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('leaves out zero deltas, and names each counter at most once', () => {
    fc.assert(
      fc.property(run, ([steps]) => {
        const d = counterDeltas(play(steps).changes);
        for (const list of [d.options, d.rankings, d.ratings]) for (const x of list) expect(x.delta).not.toBe(0);
        const names = [
          ...d.tallies.map((t) => `t ${t.pollId}/${t.shard}`),
          ...d.options.map((o) => `o ${o.pollId}/${o.shard} ${o.optionId}`),
          ...d.rankings.map((r) => `k ${r.pollId}/${r.shard} ${r.ranking}`),
          ...d.ratings.map((r) => `r ${r.pollId}/${r.shard} ${r.optionId}=${r.rating}`),
        ];
        expect(new Set(names).size).toBe(names.length);
        // Every shard a change touched gets a tally entry, so its version moves.
        const touched = new Set(play(steps).changes.flatMap((c) => [c.before, c.after].filter((b) => b).map((b) => `t ${b!.pollId}/${b!.shard}`)));
        expect(new Set(d.tallies.map((t) => `t ${t.pollId}/${t.shard}`))).toEqual(touched);
      }),
      { numRuns: 200 },
    );
  });
});
