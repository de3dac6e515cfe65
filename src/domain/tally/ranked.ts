import { compileBallots, runInstantRunoff, type InstantRunoffResult, type RankedInput } from './instant-runoff.js';
import { bordaFromCompiled, condorcetFromCompiled } from './pairwise.js';

/** The `ranked` block of a RANKED poll's results. */
export interface RankedResult extends InstantRunoffResult {
  borda: Record<string, number>;
  condorcet_winner: number | null;
}

/** Full ranked results: the instant-runoff outcome plus Borda and Condorcet figures beside it. */
export function tabulateRanked(input: RankedInput): RankedResult {
  const compiled = compileBallots(input);
  const irv = runInstantRunoff(compiled, input.seed);
  return {
    winner: irv.winner,
    rounds: irv.rounds,
    tie_breaks: irv.tie_breaks,
    borda: bordaFromCompiled(compiled),
    condorcet_winner: condorcetFromCompiled(compiled),
  };
}
