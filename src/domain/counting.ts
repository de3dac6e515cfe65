/** The part of a stored ballot the counters depend on, and the counter shard it is counted in. */
export interface CountedBallot {
  pollId: number;
  shard: number;
  status: 'VALID' | 'SUSPICIOUS' | 'REJECTED';
  counted: number[];
  ranking: number[] | null;
  ratings: Record<string, number> | null;
}

/** One ballot that moved: `before` null for a new ballot. */
export interface BallotChange {
  before: CountedBallot | null;
  after: CountedBallot;
}

/** What the counters of each (poll, shard) must move by. */
export interface CounterDeltas {
  /** Every (poll, shard) touched, with its ballot total and pending-review deltas (its version moves even at zero). */
  tallies: Array<{ pollId: number; shard: number; total: number; pending: number }>;
  options: Array<{ pollId: number; shard: number; optionId: number; delta: number }>;
  rankings: Array<{ pollId: number; shard: number; ranking: number[]; delta: number }>;
  ratings: Array<{ pollId: number; shard: number; optionId: number; rating: number; delta: number }>;
}

/**
 * The exact difference a set of ballot changes makes to the counters: each `before` taken out,
 * each `after` put in. Only VALID ballots count; SUSPICIOUS ones wait in pending review.
 * Zero deltas are left out (except tallies: a touched shard always gets a new version).
 */
export function counterDeltas(changes: Iterable<BallotChange>): CounterDeltas {
  const tallies = new Map<string, CounterDeltas['tallies'][number]>();
  const options = new Map<string, CounterDeltas['options'][number]>();
  const rankings = new Map<string, CounterDeltas['rankings'][number]>();
  const ratings = new Map<string, CounterDeltas['ratings'][number]>();

  const account = (b: CountedBallot, sign: 1 | -1) => {
    const at = `${b.pollId}:${b.shard}`;
    let t = tallies.get(at);
    if (!t) tallies.set(at, (t = { pollId: b.pollId, shard: b.shard, total: 0, pending: 0 }));
    if (b.status === 'SUSPICIOUS') t.pending += sign;
    if (b.status !== 'VALID') return;
    t.total += sign;
    for (const optionId of b.counted) {
      const k = `${at}:${optionId}`;
      const o = options.get(k) ?? options.set(k, { pollId: b.pollId, shard: b.shard, optionId, delta: 0 }).get(k)!;
      o.delta += sign;
    }
    if (b.ranking) {
      const k = `${at}:${b.ranking.join(',')}`;
      const r = rankings.get(k) ?? rankings.set(k, { pollId: b.pollId, shard: b.shard, ranking: b.ranking, delta: 0 }).get(k)!;
      r.delta += sign;
    }
    if (b.ratings) {
      for (const [option, rating] of Object.entries(b.ratings)) {
        const k = `${at}:${option}:${rating}`;
        const r = ratings.get(k) ?? ratings.set(k, { pollId: b.pollId, shard: b.shard, optionId: Number(option), rating, delta: 0 }).get(k)!;
        r.delta += sign;
      }
    }
  };
  for (const c of changes) {
    if (c.before) account(c.before, -1);
    account(c.after, 1);
  }
  const moved = <T extends { delta: number }>(m: Map<string, T>) => [...m.values()].filter((d) => d.delta !== 0);
  return { tallies: [...tallies.values()], options: moved(options), rankings: moved(rankings), ratings: moved(ratings) };
}
