import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tallyInstantRunoff, type RankedBallotGroup } from '../../src/domain/tally/instant-runoff.js';
import { bordaPoints, condorcetWinner } from '../../src/domain/tally/pairwise.js';
import { tabulateRanked } from '../../src/domain/tally/ranked.js';

const b = (count: number, ...ranking: number[]): RankedBallotGroup => ({ ranking, count });

describe('tabulateRanked: hand-checked elections', () => {
  it('Tennessee capital: plurality leader Memphis loses, Knoxville wins IRV, Nashville is Condorcet', () => {
    // Wikipedia "Instant-runoff voting" example. 1 Memphis, 2 Nashville, 3 Chattanooga, 4 Knoxville.
    const result = tabulateRanked({
      optionIds: [1, 2, 3, 4],
      ballots: [b(42, 1, 2, 3, 4), b(26, 2, 3, 4, 1), b(15, 3, 4, 2, 1), b(17, 4, 3, 2, 1)],
      seed: 'tn',
    });
    expect(result).toEqual({
      winner: 4,
      rounds: [
        { round: 1, tallies: { '1': 42, '2': 26, '3': 15, '4': 17 }, exhausted: 0, eliminated: [3] },
        { round: 2, tallies: { '1': 42, '2': 26, '4': 32 }, exhausted: 0, eliminated: [2] },
        { round: 3, tallies: { '1': 42, '4': 58 }, exhausted: 0, eliminated: [] },
      ],
      tie_breaks: [],
      // 3 points for first place down to 0 for fourth; Nashville is also the Borda winner.
      borda: { '1': 126, '2': 194, '3': 173, '4': 107 },
      condorcet_winner: 2,
    });
  });

  it('a rock-paper-scissors cycle has no Condorcet winner', () => {
    // 1 beats 2 (6-3), 2 beats 3 (7-2), 3 beats 1 (5-4).
    const result = tabulateRanked({
      optionIds: [1, 2, 3],
      ballots: [b(4, 1, 2, 3), b(3, 2, 3, 1), b(2, 3, 1, 2)],
      seed: 'rps',
    });
    expect(result.condorcet_winner).toBeNull();
    expect(result.winner).toBe(1);
    expect(result.rounds.map((r) => r.eliminated)).toEqual([[3], []]);
    expect(result.borda).toEqual({ '1': 10, '2': 10, '3': 7 });
  });

  it('Condorcet: a ranked option beats an unranked one; two unranked ones are not compared', () => {
    const ballots = [b(3, 1), b(2, 2, 1)];
    expect(condorcetWinner({ optionIds: [1, 2, 3], ballots })).toBe(1);
    expect(condorcetWinner({ optionIds: [1, 2, 3], ballots: [b(3, 1), b(3, 2)] })).toBeNull();
    expect(bordaPoints({ optionIds: [1, 2, 3], ballots })).toEqual({ '1': 3 * 2 + 2 * 1, '2': 2 * 2, '3': 0 });
  });

  it('a tie for last place is broken by the previous round', () => {
    const result = tallyInstantRunoff({
      optionIds: [1, 2, 3, 4],
      ballots: [b(10, 1), b(7, 2), b(5, 3, 2), b(2, 4, 3, 2)],
      seed: 's',
    });
    expect(result.rounds).toEqual([
      { round: 1, tallies: { '1': 10, '2': 7, '3': 5, '4': 2 }, exhausted: 0, eliminated: [4] },
      { round: 2, tallies: { '1': 10, '2': 7, '3': 7 }, exhausted: 0, eliminated: [3] },
      { round: 3, tallies: { '1': 10, '2': 14 }, exhausted: 0, eliminated: [] },
    ]);
    expect(result.tie_breaks).toEqual([{ round: 2, tied: [2, 3], eliminated: 3, rule: 'PREVIOUS_ROUND' }]);
    expect(result.winner).toBe(2);
  });

  it('looks back past an earlier tie, and exhausted ballots leave the majority denominator', () => {
    const result = tallyInstantRunoff({
      optionIds: [1, 2, 3, 4, 5],
      ballots: [b(8, 1), b(5, 2), b(4, 3, 2), b(1, 4, 3, 2), b(3, 5)],
      seed: 's',
    });
    expect(result.rounds).toEqual([
      { round: 1, tallies: { '1': 8, '2': 5, '3': 4, '4': 1, '5': 3 }, exhausted: 0, eliminated: [4] },
      { round: 2, tallies: { '1': 8, '2': 5, '3': 5, '5': 3 }, exhausted: 0, eliminated: [5] },
      // 2 and 3 tie here and in round 2; round 1 (5 vs 4) decides.
      { round: 3, tallies: { '1': 8, '2': 5, '3': 5 }, exhausted: 3, eliminated: [3] },
      // 10 of 18 continuing ballots is a majority although it is not one of all 21.
      { round: 4, tallies: { '1': 8, '2': 10 }, exhausted: 3, eliminated: [] },
    ]);
    expect(result.tie_breaks).toEqual([{ round: 3, tied: [2, 3], eliminated: 3, rule: 'PREVIOUS_ROUND' }]);
    expect(result.winner).toBe(2);
  });

  it('batch-eliminates options that together trail the next one, without a tie-break', () => {
    // 3 and 4 are tied at 1, but together (2) they trail option 2 (4): both go at once.
    const result = tallyInstantRunoff({
      optionIds: [1, 2, 3, 4],
      ballots: [b(5, 1), b(4, 2), b(1, 3), b(1, 4, 2)],
      seed: 's',
    });
    expect(result.rounds).toEqual([
      { round: 1, tallies: { '1': 5, '2': 4, '3': 1, '4': 1 }, exhausted: 0, eliminated: [3, 4] },
      { round: 2, tallies: { '1': 5, '2': 5 }, exhausted: 1, eliminated: [2] },
      { round: 3, tallies: { '1': 5 }, exhausted: 6, eliminated: [] },
    ]);
    expect(result.tie_breaks).toEqual([{ round: 2, tied: [1, 2], eliminated: 2, rule: 'PREVIOUS_ROUND' }]);
    expect(result.winner).toBe(1);
  });

  it("a tie with no earlier round is broken by the poll's seed, reproducibly", () => {
    const input = { optionIds: [1, 2], ballots: [b(5, 1), b(5, 2)], seed: 'poll-42' };
    const first = tabulateRanked(input);
    expect(tabulateRanked(input)).toEqual(first);

    // The documented rule, recomputed independently: sha256("seed:round:ids"), 6 bytes, mod n.
    const pick = createHash('sha256').update('poll-42:1:1,2').digest().readUIntBE(0, 6) % 2;
    const loser = [1, 2][pick];
    expect(first.tie_breaks).toEqual([{ round: 1, tied: [1, 2], eliminated: loser, rule: 'SEEDED_RANDOM' }]);
    expect(first.winner).toBe(loser === 1 ? 2 : 1);
    expect(first.rounds[1]).toEqual({ round: 2, tallies: { [String(first.winner)]: 5 }, exhausted: 5, eliminated: [] });

    // The seed really matters: across seeds both options get eliminated sometimes.
    const winners = new Set(Array.from({ length: 20 }, (_, i) => tabulateRanked({ ...input, seed: `p${i}` }).winner));
    expect(winners).toEqual(new Set([1, 2]));
  });

  it('an all-way tie keeps eliminating by tie-break until a majority exists', () => {
    const result = tallyInstantRunoff({ optionIds: [1, 2, 3], ballots: [b(2, 1), b(2, 2), b(2, 3)], seed: 'x' });
    expect(result.rounds).toHaveLength(3);
    expect(result.tie_breaks.map((t) => [t.round, t.rule])).toEqual([
      [1, 'SEEDED_RANDOM'],
      [2, 'SEEDED_RANDOM'],
    ]);
    expect(result.tie_breaks[0].tied).toEqual([1, 2, 3]);
    expect(result.winner).not.toBeNull();
  });

  it('no ballots: one round of zeros and no winner', () => {
    expect(tabulateRanked({ optionIds: [3, 1, 2], ballots: [], seed: 's' })).toEqual({
      winner: null,
      rounds: [{ round: 1, tallies: { '1': 0, '2': 0, '3': 0 }, exhausted: 0, eliminated: [] }],
      tie_breaks: [],
      borda: { '1': 0, '2': 0, '3': 0 },
      condorcet_winner: null,
    });
  });
});

// ---- properties ----

const electionArb = fc.uniqueArray(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 6 }).chain((optionIds) =>
  fc.record({
    optionIds: fc.constant(optionIds),
    ballots: fc.array(fc.record({ ranking: fc.shuffledSubarray(optionIds), count: fc.integer({ min: 1, max: 30 }) }), { maxLength: 25 }),
    seed: fc.string({ maxLength: 8 }),
  }),
);

const total = (ballots: RankedBallotGroup[]) => ballots.reduce((s, g) => s + g.count, 0);
const sum = (tallies: Record<string, number>) => Object.values(tallies).reduce((s, v) => s + v, 0);

/** Textbook IRV: recount from scratch, drop exactly one last-place option per round. */
function referenceIrv(optionIds: number[], ballots: RankedBallotGroup[]): { winner: number | null; tied: boolean } {
  const live = new Set(optionIds);
  for (;;) {
    const tally = new Map([...live].map((o) => [o, 0]));
    let continuing = 0;
    for (const g of ballots) {
      const top = g.ranking.find((o) => live.has(o));
      if (top === undefined) continue;
      tally.set(top, tally.get(top)! + g.count);
      continuing += g.count;
    }
    if (continuing === 0) return { winner: null, tied: false };
    for (const [o, v] of tally) if (v * 2 > continuing) return { winner: o, tied: false };
    const min = Math.min(...tally.values());
    const last = [...tally].filter(([, v]) => v === min);
    if (last.length > 1) return { winner: null, tied: true };
    live.delete(last[0][0]);
  }
}

describe('tabulateRanked: properties', () => {
  it('continuing + exhausted = total ballots in every round; eliminated options never return', () => {
    fc.assert(
      fc.property(electionArb, (input) => {
        const result = tallyInstantRunoff(input);
        const gone = new Set<string>();
        for (const round of result.rounds) {
          expect(sum(round.tallies) + round.exhausted).toBe(total(input.ballots));
          for (const id of Object.keys(round.tallies)) expect(gone.has(id)).toBe(false);
          for (const id of round.eliminated) gone.add(String(id));
        }
        expect(result.rounds.at(-1)!.eliminated).toEqual([]);
        expect(result.rounds.slice(0, -1).every((r) => r.eliminated.length > 0)).toBe(true);
      }),
    );
  });

  it('the winner holds more than half of the continuing ballots in the final round', () => {
    fc.assert(
      fc.property(electionArb, (input) => {
        const result = tallyInstantRunoff(input);
        const last = result.rounds.at(-1)!;
        if (result.winner === null) {
          expect(sum(last.tallies)).toBe(0);
        } else {
          expect(last.tallies[String(result.winner)] * 2).toBeGreaterThan(sum(last.tallies));
        }
      }),
    );
  });

  it('is deterministic and ignores ballot order and how identical ballots are split or merged', () => {
    fc.assert(
      fc.property(electionArb, fc.array(fc.nat()), (input, noise) => {
        const expected = tabulateRanked(input);
        expect(tabulateRanked(input)).toEqual(expected);

        const merged = new Map<string, RankedBallotGroup>();
        for (const g of input.ballots) {
          const key = g.ranking.join(',');
          merged.set(key, { ranking: g.ranking, count: (merged.get(key)?.count ?? 0) + g.count });
        }
        expect(tabulateRanked({ ...input, ballots: [...merged.values()] })).toEqual(expected);

        let i = 0;
        const next = () => noise[i++ % Math.max(noise.length, 1)] ?? 0;
        const split = input.ballots.flatMap((g) => {
          const first = 1 + (next() % g.count);
          return first < g.count
            ? [
                { ...g, count: first },
                { ...g, count: g.count - first },
              ]
            : [g];
        });
        const shuffled = split
          .map((g) => ({ g, k: next() }))
          .sort((x, y) => x.k - y.k)
          .map((x) => x.g);
        expect(tabulateRanked({ ...input, ballots: shuffled })).toEqual(expected);
      }),
    );
  });

  it('batch elimination picks the same winner as one-at-a-time IRV whenever that has no ties', () => {
    fc.assert(
      fc.property(electionArb, (input) => {
        const reference = referenceIrv(input.optionIds, input.ballots);
        fc.pre(!reference.tied);
        expect(tallyInstantRunoff(input).winner).toBe(reference.winner);
      }),
      { numRuns: 300 },
    );
  });

  it('the Condorcet winner matches a brute-force pairwise count', () => {
    const prefers = (r: number[], a: number, c: number) => r.includes(a) && (!r.includes(c) || r.indexOf(a) < r.indexOf(c));
    fc.assert(
      fc.property(electionArb, (input) => {
        const beats = (a: number, c: number) => {
          let ac = 0;
          let ca = 0;
          for (const g of input.ballots) {
            if (prefers(g.ranking, a, c)) ac += g.count;
            if (prefers(g.ranking, c, a)) ca += g.count;
          }
          return ac > ca;
        };
        const expected =
          input.optionIds.length === 1
            ? input.ballots.some((g) => g.ranking.length > 0)
              ? input.optionIds[0]
              : null
            : (input.optionIds.find((a) => input.optionIds.every((c) => c === a || beats(a, c))) ?? null);
        expect(condorcetWinner(input)).toBe(expected);
      }),
    );
  });
});
