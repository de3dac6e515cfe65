import { performance } from 'node:perf_hooks';
import type { RankedBallotGroup } from '../src/domain/tally/instant-runoff.js';
import { summarizeRatings } from '../src/domain/tally/rating.js';
import { tabulateRanked } from '../src/domain/tally/ranked.js';

const VOTERS = 1_000_000;
const OPTIONS = 10;
const RUNS = 20;
const BUDGET_MS = 50;

// Fixed-seed PRNG (mulberry32) so every run benchmarks the same election.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function weighted(random: () => number, weights: number[]): number {
  let r = random() * weights.reduce((s, w) => s + w, 0);
  for (let i = 0; i < weights.length; i++) if ((r -= weights[i]) < 0) return i;
  return weights.length - 1;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function time(fn: () => unknown): number {
  for (let i = 0; i < 5; i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

const random = rng(20261128);
const optionIds = Array.from({ length: OPTIONS }, (_, i) => 101 + i);
// Zipf-like popularity (Plackett-Luce draws), and most voters rank only a few options; the
// rare long rankings are nearly all distinct, which is what drives the distinct-ballot count.
const popularity = optionIds.map((_, i) => 1 / (i + 1) ** 1.3);
const lengthWeights = [40, 25, 14, 8, 5, 3, 2, 1, 1, 1];

const counts = new Map<string, number>();
for (let v = 0; v < VOTERS; v++) {
  const length = 1 + weighted(random, lengthWeights);
  const left = [...popularity];
  const ranking: number[] = [];
  for (let k = 0; k < length; k++) {
    const pick = weighted(random, left);
    left[pick] = 0;
    ranking.push(optionIds[pick]);
  }
  const key = ranking.join(',');
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
const ballots: RankedBallotGroup[] = [...counts].map(([key, count]) => ({ ranking: key.split(',').map(Number), count }));

const input = { optionIds, ballots, seed: 'bench' };
const rankedMs = time(() => tabulateRanked(input));
const result = tabulateRanked(input);
console.log(
  `tabulateRanked: ${VOTERS} ballots (${ballots.length} distinct) over ${OPTIONS} options: ` +
    `${rankedMs.toFixed(1)} ms (median of ${RUNS}); winner ${result.winner} after ${result.rounds.length} rounds`,
);
if (rankedMs > BUDGET_MS) {
  console.error(`tabulateRanked is over its ${BUDGET_MS} ms budget`);
  process.exitCode = 1;
}

const histograms: Record<number, Record<number, number>> = {};
for (const id of optionIds) histograms[id] = {};
for (let r = 0; r < VOTERS; r++) {
  const id = optionIds[weighted(random, popularity)];
  const value = 1 + weighted(random, [1, 1, 2, 4, 3]);
  histograms[id][value] = (histograms[id][value] ?? 0) + 1;
}
const ratingInput = { optionIds, ratingMin: 1, ratingMax: 5, histograms };
const ratingMs = time(() => summarizeRatings(ratingInput));
console.log(`summarizeRatings: ${VOTERS} ratings over ${OPTIONS} options (1-5): ${ratingMs.toFixed(3)} ms (median of ${RUNS})`);
