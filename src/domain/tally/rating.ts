/**
 * How many poll-average ratings each option's Bayesian average starts with. A few ratings barely
 * move it, so a single 5-star cannot outrank an option with hundreds of 4.8s.
 */
export const BAYESIAN_PRIOR_WEIGHT = 5;

/** Decimals kept in mean, stddev and bayesian_average; ordering uses the unrounded values. */
export const RATING_DECIMALS = 4;

/** Counted ratings of one RATING poll: per option id, rating value -> how many gave it. */
export interface RatingInput {
  optionIds: readonly number[];
  ratingMin: number;
  ratingMax: number;
  /** Missing options or values count as 0; values outside [ratingMin, ratingMax] are ignored. */
  histograms: Readonly<Record<number, Readonly<Record<number, number>>>>;
}

export interface RatingOptionSummary {
  option_id: number;
  count: number;
  /** null when the option has no ratings: there is nothing to average. */
  mean: number | null;
  /** For an even count, the mean of the two middle ratings. */
  median: number | null;
  /** Population standard deviation. */
  stddev: number | null;
  /** Every value of [rating_min, rating_max] as a string key, zeros included. */
  histogram: Record<string, number>;
  /**
   * (C * m + sum) / (C + count), C = BAYESIAN_PRIOR_WEIGHT, m = mean of all ratings in the poll
   * (the scale midpoint when the poll has none). An unrated option therefore sits at m.
   */
  bayesian_average: number;
}

export interface RatingSummary {
  /** Best first: bayesian_average descending, then more ratings, then lower option id. */
  options: RatingOptionSummary[];
}

/** Per-option rating distribution and the Bayesian-average ordering for a RATING poll's results. */
export function summarizeRatings(input: RatingInput): RatingSummary {
  const { ratingMin: min, ratingMax: max } = input;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min > max) {
    throw new RangeError(`invalid rating scale [${min}, ${max}]`);
  }
  const optionIds = [...new Set(input.optionIds)];
  const stats = optionIds.map((id) => {
    const source = input.histograms[id] ?? {};
    const counts: number[] = [];
    let count = 0;
    let sum = 0;
    for (let v = min; v <= max; v++) {
      const c = source[v];
      const n = typeof c === 'number' && c > 0 ? c : 0;
      counts.push(n);
      count += n;
      sum += n * v;
    }
    return { id, counts, count, sum };
  });

  const pollCount = stats.reduce((acc, s) => acc + s.count, 0);
  const pollSum = stats.reduce((acc, s) => acc + s.sum, 0);
  const prior = pollCount > 0 ? pollSum / pollCount : (min + max) / 2;

  const ranked = stats.map((s) => {
    const bayes = (BAYESIAN_PRIOR_WEIGHT * prior + s.sum) / (BAYESIAN_PRIOR_WEIGHT + s.count);
    const histogram: Record<string, number> = {};
    s.counts.forEach((c, i) => (histogram[String(min + i)] = c));
    let mean: number | null = null;
    let median: number | null = null;
    let stddev: number | null = null;
    if (s.count > 0) {
      const m = s.sum / s.count;
      // Two passes (mean first) avoid the cancellation of E[x^2] - E[x]^2 at millions of ratings.
      let squares = 0;
      s.counts.forEach((c, i) => (squares += c * (min + i - m) ** 2));
      mean = round(m);
      stddev = round(Math.sqrt(squares / s.count));
      median =
        s.count % 2 === 1 ? nthValue(s.counts, min, (s.count + 1) / 2) : (nthValue(s.counts, min, s.count / 2) + nthValue(s.counts, min, s.count / 2 + 1)) / 2;
    }
    return {
      bayes,
      summary: { option_id: s.id, count: s.count, mean, median, stddev, histogram, bayesian_average: round(bayes) },
    };
  });

  ranked.sort((a, b) => b.bayes - a.bayes || b.summary.count - a.summary.count || a.summary.option_id - b.summary.option_id);
  return { options: ranked.map((r) => r.summary) };
}

/** The k-th smallest rating (1-based) read off a histogram. */
function nthValue(counts: number[], min: number, k: number): number {
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= k) return min + i;
  }
  return min + counts.length - 1;
}

function round(x: number): number {
  const f = 10 ** RATING_DECIMALS;
  return Math.round(x * f) / f;
}
