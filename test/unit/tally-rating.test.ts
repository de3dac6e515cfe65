import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BAYESIAN_PRIOR_WEIGHT, summarizeRatings } from '../../src/domain/tally/rating.js';

describe('summarizeRatings', () => {
  it('computes hand-checked statistics and orders by Bayesian average', () => {
    const { options } = summarizeRatings({
      optionIds: [10, 11, 12, 13],
      ratingMin: 1,
      ratingMax: 5,
      histograms: {
        10: { 1: 1, 3: 2, 5: 1 },
        11: { 4: 9, 5: 1 },
        12: { 2: 1, 5: 1 },
      },
    });
    // Poll-wide prior m = (12 + 41 + 7) / (4 + 10 + 2) = 3.75; C = 5.
    expect(BAYESIAN_PRIOR_WEIGHT).toBe(5);
    expect(options).toEqual([
      {
        option_id: 11,
        count: 10,
        mean: 4.1,
        median: 4,
        stddev: 0.3,
        histogram: { '1': 0, '2': 0, '3': 0, '4': 9, '5': 1 },
        bayesian_average: 3.9833, // (18.75 + 41) / 15
      },
      {
        // No ratings: nothing to average, and the prior alone places it.
        option_id: 13,
        count: 0,
        mean: null,
        median: null,
        stddev: null,
        histogram: { '1': 0, '2': 0, '3': 0, '4': 0, '5': 0 },
        bayesian_average: 3.75,
      },
      {
        // Even count with different middle values: median is their mean.
        option_id: 12,
        count: 2,
        mean: 3.5,
        median: 3.5,
        stddev: 1.5,
        histogram: { '1': 0, '2': 1, '3': 0, '4': 0, '5': 1 },
        bayesian_average: 3.6786, // (18.75 + 7) / 7
      },
      {
        // Variance (4 + 0 + 0 + 4) / 4 = 2.
        option_id: 10,
        count: 4,
        mean: 3,
        median: 3,
        // biome-ignore lint/suspicious/noApproximativeNumericConstant: the rounded figure the API returns
        stddev: 1.4142,
        histogram: { '1': 1, '2': 0, '3': 2, '4': 0, '5': 1 },
        bayesian_average: 3.4167, // (18.75 + 12) / 9
      },
    ]);
  });

  it('keeps a lone top rating from beating many high ratings', () => {
    const { options } = summarizeRatings({
      optionIds: [1, 2, 3],
      ratingMin: 1,
      ratingMax: 5,
      histograms: { 1: { 5: 1 }, 2: { 5: 80, 4: 20 }, 3: { 1: 50, 2: 50 } },
    });
    const lone = options.find((o) => o.option_id === 1)!;
    const many = options.find((o) => o.option_id === 2)!;
    expect(lone.mean).toBeGreaterThan(many.mean!);
    expect(options.map((o) => o.option_id)).toEqual([2, 1, 3]);
  });

  it('breaks equal Bayesian averages by count, then by lower option id', () => {
    const { options } = summarizeRatings({
      optionIds: [9, 8, 7],
      ratingMin: 1,
      ratingMax: 3,
      histograms: { 9: { 2: 4 }, 8: { 2: 1 }, 7: { 2: 1 } },
    });
    expect(options.map((o) => o.option_id)).toEqual([9, 7, 8]);
  });

  it('uses the scale midpoint as the prior when nobody rated anything', () => {
    const { options } = summarizeRatings({ optionIds: [2, 1], ratingMin: 0, ratingMax: 5, histograms: {} });
    expect(options.map((o) => [o.option_id, o.bayesian_average])).toEqual([
      [1, 2.5],
      [2, 2.5],
    ]);
  });

  it('ignores values outside the scale and stays exact at a million ratings', () => {
    const { options } = summarizeRatings({
      optionIds: [1],
      ratingMin: 1,
      ratingMax: 5,
      histograms: { 1: { 0: 7, 6: 3, 5: 1_000_000 } },
    });
    expect(options[0]).toMatchObject({ count: 1_000_000, mean: 5, median: 5, stddev: 0, bayesian_average: 5 });
    expect(options[0].histogram).toEqual({ '1': 0, '2': 0, '3': 0, '4': 0, '5': 1_000_000 });
  });

  it('always reports the full histogram, consistent with count, mean and order', () => {
    const arb = fc.record({ min: fc.integer({ min: -2, max: 3 }), span: fc.integer({ min: 0, max: 9 }) }).chain(({ min, span }) =>
      fc.record({
        min: fc.constant(min),
        max: fc.constant(min + span),
        histograms: fc.dictionary(
          fc.integer({ min: 1, max: 6 }).map(String),
          fc.dictionary(fc.integer({ min: min - 1, max: min + span + 1 }).map(String), fc.nat(50)),
        ),
      }),
    );
    fc.assert(
      fc.property(arb, ({ min, max, histograms }) => {
        const { options } = summarizeRatings({
          optionIds: [1, 2, 3, 4, 5, 6],
          ratingMin: min,
          ratingMax: max,
          histograms: histograms as unknown as Record<number, Record<number, number>>,
        });
        expect(options).toHaveLength(6);
        const keys = Array.from({ length: max - min + 1 }, (_, i) => String(min + i));
        for (const o of options) {
          expect(Object.keys(o.histogram).sort()).toEqual([...keys].sort());
          expect(Object.values(o.histogram).reduce((s, c) => s + c, 0)).toBe(o.count);
          if (o.count === 0) {
            expect(o.mean).toBeNull();
          } else {
            expect(o.mean!).toBeGreaterThanOrEqual(min);
            expect(o.mean!).toBeLessThanOrEqual(max);
            expect(o.median!).toBeGreaterThanOrEqual(min);
            expect(o.median!).toBeLessThanOrEqual(max);
          }
        }
        for (let i = 1; i < options.length; i++) {
          expect(options[i - 1].bayesian_average).toBeGreaterThanOrEqual(options[i].bayesian_average);
        }
      }),
    );
  });
});
