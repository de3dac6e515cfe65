import { createHash } from 'node:crypto';

/** One distinct ranking (most preferred first) and how many counted ballots carry exactly it. */
export interface RankedBallotGroup {
  ranking: readonly number[];
  count: number;
}

/** Ballots of one RANKED poll, already aggregated so that cost follows distinct rankings, not voters. */
export interface RankedBallots {
  optionIds: readonly number[];
  ballots: readonly RankedBallotGroup[];
}

export interface RankedInput extends RankedBallots {
  /** Per-poll seed for the last-resort tie-break, so a recount always gives the same answer. */
  seed: string;
}

export interface RankedRound {
  round: number;
  /** Option id (as a string) -> ballots counting for it; every option still in the race. */
  tallies: Record<string, number>;
  /** Cumulative: ballots with no continuing choice left. continuing + exhausted = total. */
  exhausted: number;
  /** Option ids eliminated at the end of this round, ascending; [] in the final round. */
  eliminated: number[];
}

export type TieBreakRule = 'PREVIOUS_ROUND' | 'SEEDED_RANDOM';

export interface TieBreak {
  round: number;
  /** Every option tied for fewest votes in `round`, ascending. */
  tied: number[];
  eliminated: number;
  rule: TieBreakRule;
}

export interface InstantRunoffResult {
  winner: number | null;
  rounds: RankedRound[];
  tie_breaks: TieBreak[];
}

/** Rankings as option indexes: group g ranks choices[start[g] .. start[g + 1]). */
export interface CompiledBallots {
  /** Index -> option id, ascending, so every output lists options in one stable order. */
  optionIds: number[];
  choices: Int32Array;
  start: Int32Array;
  counts: Float64Array;
  total: number;
}

/** Turns rankings into option indexes once, dropping unknown or repeated ids and empty groups. */
export function compileBallots(input: RankedBallots): CompiledBallots {
  const optionIds = [...new Set(input.optionIds)].sort((a, b) => a - b);
  const indexOf = new Map<number, number>();
  optionIds.forEach((id, i) => indexOf.set(id, i));

  // Indexed loops and a flat layout: this pass touches every ranking entry, so it sets the pace.
  const groups = input.ballots;
  let kept = 0;
  let size = 0;
  for (let i = 0; i < groups.length; i++) {
    if (groups[i].count > 0) {
      kept++;
      size += groups[i].ranking.length;
    }
  }
  const choices = new Int32Array(size);
  const start = new Int32Array(kept + 1);
  const counts = new Float64Array(kept);
  // Stamp per option with the group it was last seen in: a repeated id keeps its first (higher) rank.
  const seenIn = new Int32Array(optionIds.length).fill(-1);
  let g = 0;
  let at = 0;
  let total = 0;
  for (let i = 0; i < groups.length; i++) {
    const { ranking, count } = groups[i];
    if (!(count > 0)) continue;
    start[g] = at;
    for (let j = 0; j < ranking.length; j++) {
      const o = indexOf.get(ranking[j]);
      if (o === undefined || seenIn[o] === g) continue;
      seenIn[o] = g;
      choices[at++] = o;
    }
    counts[g++] = count;
    total += count;
  }
  start[kept] = at;
  return { optionIds, choices, start, counts, total };
}

/** Instant-runoff tabulation of aggregated ranked ballots, round by round, with tie-break log. */
export function tallyInstantRunoff(input: RankedInput): InstantRunoffResult {
  return runInstantRunoff(compileBallots(input), input.seed);
}

/** Instant-runoff over ballots compiled once, so callers computing several figures compile only once. */
export function runInstantRunoff(b: CompiledBallots, seed: string): InstantRunoffResult {
  const n = b.optionIds.length;
  const groups = b.counts.length;
  // Each group sits in the bucket of its current top continuing choice; eliminating an option
  // only moves that option's groups, so the whole count costs one pass over all rankings.
  const pointer = b.start.slice(0, groups);
  const buckets: number[][] = Array.from({ length: n }, () => []);
  const tally = new Float64Array(n);
  const inRace = new Uint8Array(n).fill(1);
  let exhausted = 0;

  const place = (g: number): void => {
    const end = b.start[g + 1];
    for (let p = pointer[g]; p < end; p++) {
      const o = b.choices[p];
      if (inRace[o]) {
        pointer[g] = p;
        buckets[o].push(g);
        tally[o] += b.counts[g];
        return;
      }
    }
    pointer[g] = end;
    exhausted += b.counts[g];
  };
  for (let g = 0; g < groups; g++) place(g);

  const rounds: RankedRound[] = [];
  const history: Float64Array[] = [];
  const tieBreaks: TieBreak[] = [];
  for (let round = 1; ; round++) {
    const continuing = b.total - exhausted;
    const tallies: Record<string, number> = {};
    const live: number[] = [];
    let leader = -1;
    for (let o = 0; o < n; o++) {
      if (!inRace[o]) continue;
      live.push(o);
      tallies[String(b.optionIds[o])] = tally[o];
      if (tally[o] * 2 > continuing) leader = o;
    }
    history.push(tally.slice());
    // continuing === 0 only when no ballot ranks any option at all: nobody can win.
    if (leader >= 0 || continuing === 0) {
      rounds.push({ round, tallies, exhausted, eliminated: [] });
      return { winner: leader >= 0 ? b.optionIds[leader] : null, rounds, tie_breaks: tieBreaks };
    }

    const out = chooseEliminated(live, tally, history, round, seed, b.optionIds, tieBreaks);
    rounds.push({ round, tallies, exhausted, eliminated: out.map((o) => b.optionIds[o]).sort((x, y) => x - y) });
    for (const o of out) inRace[o] = 0;
    const moving = out.map((o) => buckets[o]);
    for (const o of out) buckets[o] = [];
    for (const list of moving) for (const g of list) place(g);
  }
}

function chooseEliminated(
  live: number[],
  tally: Float64Array,
  history: Float64Array[],
  round: number,
  seed: string,
  ids: number[],
  tieBreaks: TieBreak[],
): number[] {
  const byTally = [...live].sort((x, y) => tally[x] - tally[y] || x - y);
  // Batch elimination: if the k lowest together hold fewer votes than the next option, none of
  // them can ever overtake it, so one-at-a-time elimination would drop all k anyway. Take the
  // largest such k. (Should one-at-a-time reach a majority midway, that option only gains and the
  // denominator only shrinks, so it still wins after the batch.) The strict "<" also means a tie
  // never straddles the cut.
  let k = 0;
  let sum = 0;
  for (let i = 0; i < byTally.length - 1; i++) {
    sum += tally[byTally[i]];
    if (sum < tally[byTally[i + 1]]) k = i + 1;
  }
  if (k > 0) return byTally.slice(0, k);

  const low = tally[byTally[0]];
  const tied = byTally.filter((o) => tally[o] === low).sort((x, y) => x - y);
  // Backwards tie-break: the most recent earlier round where the tied options differ decides;
  // keep only those with the fewest there and go further back while several remain.
  let candidates = tied;
  for (let r = history.length - 2; r >= 0 && candidates.length > 1; r--) {
    const min = Math.min(...candidates.map((o) => history[r][o]));
    candidates = candidates.filter((o) => history[r][o] === min);
  }
  let loser: number;
  let rule: TieBreakRule;
  if (candidates.length === 1) {
    loser = candidates[0];
    rule = 'PREVIOUS_ROUND';
  } else {
    // Reproducible by anyone who knows the seed: sha256(`${seed}:${round}:${ids of the options
    // still tied after looking back, ascending, comma-joined}`), first 6 bytes mod their number.
    const key = `${seed}:${round}:${candidates.map((o) => ids[o]).join(',')}`;
    const pick = createHash('sha256').update(key).digest().readUIntBE(0, 6) % candidates.length;
    loser = candidates[pick];
    rule = 'SEEDED_RANDOM';
  }
  tieBreaks.push({ round, tied: tied.map((o) => ids[o]), eliminated: ids[loser], rule });
  return [loser];
}
