import { compileBallots, type CompiledBallots, type RankedBallots } from './instant-runoff.js';

/** Borda points per option id: a secondary figure shown next to the runoff, never the decider. */
export function bordaPoints(input: RankedBallots): Record<string, number> {
  return bordaFromCompiled(compileBallots(input));
}

/** The option that beats every other option head-to-head, or null (e.g. a cycle or no ballots). */
export function condorcetWinner(input: RankedBallots): number | null {
  return condorcetFromCompiled(compileBallots(input));
}

/** Borda points over ballots compiled once. */
export function bordaFromCompiled(b: CompiledBallots): Record<string, number> {
  const n = b.optionIds.length;
  const points = new Float64Array(n);
  // With n options in the poll, place i (0-based) earns n - 1 - i points. Truncated ballots give
  // 0 to every unranked option, so ranking fewer options never hands points to ones left out.
  const { choices, start, counts } = b;
  for (let g = 0; g < counts.length; g++) {
    const top = start[g] + n - 1;
    for (let p = start[g]; p < start[g + 1]; p++) points[choices[p]] += (top - p) * counts[g];
  }
  const out: Record<string, number> = {};
  b.optionIds.forEach((id, o) => (out[String(id)] = points[o]));
  return out;
}

/** Condorcet winner over ballots compiled once. */
export function condorcetFromCompiled(b: CompiledBallots): number | null {
  const n = b.optionIds.length;
  // A ranked option beats every unranked one; two unranked ones are not compared. So ballots
  // preferring a to c = ballots ranking a - ballots ranking both with c above a. That needs only
  // the pairs within each ranking, not each ranked option against all n options.
  const rankedBy = new Float64Array(n); // rankedBy[a]: ballots ranking a at all
  const above = new Float64Array(n * n); // above[c * n + a]: ballots ranking c above a
  const { choices, start, counts } = b;
  for (let g = 0; g < counts.length; g++) {
    const count = counts[g];
    const end = start[g + 1];
    for (let p = start[g]; p < end; p++) {
      const row = choices[p] * n;
      rankedBy[choices[p]] += count;
      for (let q = p + 1; q < end; q++) above[row + choices[q]] += count;
    }
  }
  const prefer = (a: number, c: number) => rankedBy[a] - above[c * n + a];
  for (let a = 0; a < n; a++) {
    let beatsAll = true;
    for (let c = 0; c < n && beatsAll; c++) {
      if (c !== a && !(prefer(a, c) > prefer(c, a))) beatsAll = false;
    }
    // A lone option "beats everyone" vacuously; it still needs at least one ballot ranking it.
    if (beatsAll && (n > 1 || b.choices.length > 0)) return b.optionIds[a];
  }
  return null;
}
