import { describe, expect, it } from 'vitest';
import type { ResultsState } from '../../src/db/results.js';
import { createTabulator, type TabulationEvent } from '../../src/shared/tabulations.js';

const state = (seq: number, over: Partial<ResultsState> = {}): ResultsState => ({
  poll_id: 7,
  poll_type: 'RANKED',
  status: 'ACTIVE',
  total_votes: 3,
  pending_review: 0,
  seq,
  updated_at: new Date(0),
  final: false,
  options: [],
  ranked_input: {
    optionIds: [1, 2, 3],
    seed: 'ab'.repeat(32),
    ballots: [
      { ranking: [1, 2], count: 2 },
      { ranking: [3], count: 1 },
    ],
  },
  ...over,
});

describe('the tabulator', () => {
  it('tabulates a poll once per seq and answers every later ask from memory', () => {
    const tab = createTabulator();
    const events: TabulationEvent[] = [];
    tab.observe((e) => events.push(e));
    const first = tab.ranked(state(1));
    expect(first?.winner).toBe(1);
    expect(tab.ranked(state(1))).toBe(first);
    expect(events.map((e) => [e.kind, e.seq])).toEqual([['ranked', 1]]);
    tab.ranked(state(2));
    tab.ranked(state(2));
    expect(events.map((e) => e.seq)).toEqual([1, 2]);
  });

  it("tabulates again when a draft's options change under the same seq, and never lets an old seq evict a newer one", () => {
    const tab = createTabulator();
    const events: TabulationEvent[] = [];
    tab.observe((e) => events.push(e));
    tab.ranked(state(5));
    tab.ranked(state(5, { ranked_input: { optionIds: [1, 2, 3, 4], seed: 'ab'.repeat(32), ballots: [] } }));
    expect(events).toHaveLength(2);
    tab.ranked(state(6));
    tab.ranked(state(4));
    tab.ranked(state(6));
    expect(events.map((e) => e.seq)).toEqual([5, 5, 6, 4]);
  });

  it('summarises RATING polls once per seq too, and leaves other types alone', () => {
    const tab = createTabulator();
    const events: TabulationEvent[] = [];
    tab.observe((e) => events.push(e));
    const rating = state(3, {
      poll_type: 'RATING',
      ranked_input: undefined,
      rating_input: { optionIds: [1, 2], ratingMin: 1, ratingMax: 5, histograms: { 1: { 5: 2 } } },
    });
    expect(tab.rating(rating)?.options[0].option_id).toBe(1);
    tab.rating(rating);
    expect(tab.ranked(rating)).toBeNull();
    expect(tab.rating(state(3))).toBeNull();
    expect(events.map((e) => e.kind)).toEqual(['rating']);
  });
});
