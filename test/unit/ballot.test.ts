import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateBallot, type BallotInput, type PollType } from '../../src/domain/ballot.js';
import { thrown } from '../helpers/errors.js';
import { OPTION_IDS, rulesOf } from '../helpers/factories.js';

const [A, B, C, D] = OPTION_IDS;
const UNKNOWN = 99;
const refusal = (pollType: PollType, input: BallotInput, rules = rulesOf(pollType)) => thrown(() => validateBallot(rules, input));

describe('validateBallot: the selection field of each poll type', () => {
  it.each([
    ['SINGLE_CHOICE', 'options', { ranking: [A] }, 'ranking'],
    ['SINGLE_CHOICE', 'options', { ratings: { [A]: 3 } }, 'ratings'],
    ['MULTIPLE_CHOICE', 'options', { options: [A], ranking: [A] }, 'ranking'],
    ['RANKED', 'ranking', { options: [A] }, 'options'],
    ['RANKED', 'ranking', { ranking: [A], ratings: { [A]: 3 } }, 'ratings'],
    ['RATING', 'ratings', { options: [A] }, 'options'],
    ['RATING', 'ratings', { ratings: { [A]: 3 }, ranking: [A] }, 'ranking'],
  ] satisfies Array<[PollType, string, BallotInput, string]>)('%s takes "%s": %j is VALIDATION_ERROR naming %s', (pollType, _field, input, wrong) => {
    expect(refusal(pollType, input)).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: wrong } });
  });

  it.each([
    ['SINGLE_CHOICE', 'options'],
    ['MULTIPLE_CHOICE', 'options'],
    ['RANKED', 'ranking'],
    ['RATING', 'ratings'],
  ] as const)('%s without "%s" is VALIDATION_ERROR naming it', (pollType, field) => {
    expect(refusal(pollType, {})).toMatchObject({ code: 'VALIDATION_ERROR', details: { field } });
  });
});

describe('validateBallot: SINGLE_CHOICE', () => {
  it('takes exactly one option of the poll and counts it', () => {
    expect(validateBallot(rulesOf('SINGLE_CHOICE'), { options: [B] })).toEqual({ selected: [B], counted: [B], ranking: null, ratings: null });
  });
  it('refuses none, two, or one twice with INVALID_SELECTION', () => {
    for (const options of [[], [A, B], [A, A]]) {
      expect(refusal('SINGLE_CHOICE', { options }), JSON.stringify(options)).toMatchObject({ code: 'INVALID_SELECTION' });
    }
  });
  it('refuses an option of no poll or another poll with INVALID_OPTION naming it, before counting the choices', () => {
    expect(refusal('SINGLE_CHOICE', { options: [UNKNOWN] })).toMatchObject({ code: 'INVALID_OPTION', details: { option_id: UNKNOWN } });
    expect(refusal('SINGLE_CHOICE', { options: [A, UNKNOWN] })).toMatchObject({ code: 'INVALID_OPTION', details: { option_id: UNKNOWN } });
    expect(refusal('SINGLE_CHOICE', { options: [UNKNOWN, UNKNOWN] })).toMatchObject({ code: 'INVALID_OPTION' });
  });
});

describe('validateBallot: MULTIPLE_CHOICE', () => {
  it('takes 1..max_choices distinct options, stored and counted in ascending order', () => {
    expect(validateBallot(rulesOf('MULTIPLE_CHOICE'), { options: [C] })).toEqual({ selected: [C], counted: [C], ranking: null, ratings: null });
    const input = [D, A];
    expect(validateBallot(rulesOf('MULTIPLE_CHOICE'), { options: input })).toEqual({ selected: [A, D], counted: [A, D], ranking: null, ratings: null });
    expect(input, 'the request body is not reordered in place').toEqual([D, A]);
  });
  it('refuses more than max_choices, none, or an option twice with INVALID_SELECTION', () => {
    expect(refusal('MULTIPLE_CHOICE', { options: [A, B, C] })).toMatchObject({ code: 'INVALID_SELECTION' });
    expect(refusal('MULTIPLE_CHOICE', { options: [] })).toMatchObject({ code: 'INVALID_SELECTION' });
    expect(refusal('MULTIPLE_CHOICE', { options: [A, A] })).toMatchObject({ code: 'INVALID_SELECTION' });
  });
  it('max_choices is the limit, whatever it is', () => {
    const all = rulesOf('MULTIPLE_CHOICE', { maxChoices: OPTION_IDS.length });
    expect(validateBallot(all, { options: [...OPTION_IDS] }).counted).toEqual([...OPTION_IDS]);
    expect(refusal('MULTIPLE_CHOICE', { options: [A, B] }, rulesOf('MULTIPLE_CHOICE', { maxChoices: 1 }))).toMatchObject({ code: 'INVALID_SELECTION' });
  });
  it('refuses an unknown option with INVALID_OPTION', () => {
    expect(refusal('MULTIPLE_CHOICE', { options: [A, UNKNOWN] })).toMatchObject({ code: 'INVALID_OPTION', details: { option_id: UNKNOWN } });
  });
});

describe('validateBallot: RANKED', () => {
  it("takes a distinct prefix of the options in the voter's order and counts the first preference", () => {
    expect(validateBallot(rulesOf('RANKED'), { ranking: [C, A] })).toEqual({ selected: [C, A], counted: [C], ranking: [C, A], ratings: null });
    expect(validateBallot(rulesOf('RANKED'), { ranking: [D, C, B, A] })).toEqual({
      selected: [D, C, B, A],
      counted: [D],
      ranking: [D, C, B, A],
      ratings: null,
    });
  });
  it('has no max_choices: a full ranking is fine even where max_choices is 1', () => {
    expect(validateBallot(rulesOf('RANKED', { maxChoices: 1 }), { ranking: [A, B, C] }).ranking).toEqual([A, B, C]);
  });
  it('refuses an empty ranking or an option ranked twice with INVALID_SELECTION, an unknown one with INVALID_OPTION', () => {
    expect(refusal('RANKED', { ranking: [] })).toMatchObject({ code: 'INVALID_SELECTION' });
    expect(refusal('RANKED', { ranking: [A, B, A] })).toMatchObject({ code: 'INVALID_SELECTION' });
    expect(refusal('RANKED', { ranking: [A, UNKNOWN] })).toMatchObject({ code: 'INVALID_OPTION', details: { option_id: UNKNOWN } });
  });
});

describe('validateBallot: RATING', () => {
  it('takes a rating per rated option within the range and counts every rated option', () => {
    expect(validateBallot(rulesOf('RATING'), { ratings: { [B]: 5, [A]: 1 } })).toEqual({
      selected: [A, B],
      counted: [A, B],
      ranking: null,
      ratings: { [A]: 1, [B]: 5 },
    });
  });
  it("the range is inclusive at both ends and follows the poll's settings", () => {
    expect(validateBallot(rulesOf('RATING'), { ratings: { [A]: 1, [B]: 5 } }).ratings).toEqual({ [A]: 1, [B]: 5 });
    const wide = rulesOf('RATING', { ratingMin: 0, ratingMax: 10 });
    expect(validateBallot(wide, { ratings: { [A]: 0, [B]: 10 } }).ratings).toEqual({ [A]: 0, [B]: 10 });
    for (const value of [0, 6, -1]) {
      expect(refusal('RATING', { ratings: { [A]: value } }), String(value)).toMatchObject({ code: 'INVALID_SELECTION' });
    }
    expect(refusal('RATING', { ratings: { [A]: 11 } }, wide)).toMatchObject({ code: 'INVALID_SELECTION' });
  });
  it('refuses no ratings with INVALID_SELECTION and an unknown option with INVALID_OPTION naming it (as a number)', () => {
    expect(refusal('RATING', { ratings: {} })).toMatchObject({ code: 'INVALID_SELECTION' });
    expect(refusal('RATING', { ratings: { [A]: 3, [UNKNOWN]: 3 } })).toMatchObject({ code: 'INVALID_OPTION', details: { option_id: UNKNOWN } });
  });
});

describe('validateBallot: any input', () => {
  const CODES = ['VALIDATION_ERROR', 'INVALID_OPTION', 'INVALID_SELECTION'];
  // Mostly options of the poll, now and then an id of no poll.
  const id = fc.oneof({ arbitrary: fc.constantFrom(...OPTION_IDS), weight: 9 }, { arbitrary: fc.integer({ min: 1, max: 200 }), weight: 1 });
  const ids = fc.array(id, { maxLength: 5 });
  const ratings = fc.dictionary(id.map(String), fc.integer({ min: -1, max: 7 }), { maxKeys: 4 });
  // One selection field (the right one for the poll or not), now and then two or none.
  const input: fc.Arbitrary<BallotInput> = fc.oneof(
    { arbitrary: ids.map((options) => ({ options })), weight: 3 },
    { arbitrary: ids.map((ranking) => ({ ranking })), weight: 3 },
    { arbitrary: ratings.map((r) => ({ ratings: r })), weight: 3 },
    { arbitrary: fc.record({ options: ids, ranking: ids, ratings }, { requiredKeys: [] }), weight: 1 },
  );
  const rules = fc.record({
    pollType: fc.constantFrom<PollType>('SINGLE_CHOICE', 'MULTIPLE_CHOICE', 'RANKED', 'RATING'),
    maxChoices: fc.integer({ min: 1, max: 4 }),
    ratingMin: fc.integer({ min: 0, max: 2 }),
    ratingMax: fc.integer({ min: 3, max: 6 }),
  });

  it("either is refused with one of the contract's codes, or counts only options of the poll, each once", () => {
    const accepted = new Set<PollType>();
    fc.assert(
      fc.property(rules, input, (r, body) => {
        const full = rulesOf(r.pollType, r);
        let ballot: ReturnType<typeof validateBallot>;
        try {
          ballot = validateBallot(full, body);
        } catch (err) {
          expect(CODES).toContain((err as { code?: string }).code);
          return;
        }
        accepted.add(r.pollType);
        expect(ballot.selected.every((o) => full.optionIds.has(o))).toBe(true);
        expect(new Set(ballot.selected).size).toBe(ballot.selected.length);
        expect(ballot.counted.every((o) => ballot.selected.includes(o))).toBe(true);
        expect(ballot.counted.length).toBeGreaterThan(0);
        if (r.pollType === 'SINGLE_CHOICE') expect(ballot.counted).toHaveLength(1);
        if (r.pollType === 'MULTIPLE_CHOICE') expect(ballot.counted.length).toBeLessThanOrEqual(r.maxChoices);
        if (r.pollType === 'RANKED') expect(ballot.counted).toEqual(ballot.ranking!.slice(0, 1));
        else expect(ballot.ranking).toBeNull();
        if (r.pollType === 'RATING') {
          for (const v of Object.values(ballot.ratings!)) expect(v >= r.ratingMin && v <= r.ratingMax).toBe(true);
        } else expect(ballot.ratings).toBeNull();
      }),
      { numRuns: 500 },
    );
    expect([...accepted].sort(), 'the inputs reached the accepting path of every type').toEqual(['MULTIPLE_CHOICE', 'RANKED', 'RATING', 'SINGLE_CHOICE']);
  });
});
