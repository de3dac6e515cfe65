import { invalidOption, invalidSelection, validationError } from '../shared/errors.js';

export type PollType = 'SINGLE_CHOICE' | 'MULTIPLE_CHOICE' | 'RANKED' | 'RATING';

/** What a ballot is checked against: the poll's type, options and limits. */
export interface BallotRules {
  pollType: PollType;
  optionIds: ReadonlySet<number>;
  maxChoices: number;
  ratingMin: number;
  ratingMax: number;
}

/** The selection part of a vote body, already shape-checked. */
export interface BallotInput {
  options?: number[];
  ranking?: number[];
  ratings?: Record<string, number>;
}

/** A valid ballot as stored: what was chosen and which option counters it moves. */
export interface Ballot {
  selected: number[];
  /** Options whose vote_count this ballot adds to (RANKED: first preference; RATING: every rated option). */
  counted: number[];
  ranking: number[] | null;
  ratings: Record<string, number> | null;
}

const FIELD_BY_TYPE = { SINGLE_CHOICE: 'options', MULTIPLE_CHOICE: 'options', RANKED: 'ranking', RATING: 'ratings' } as const;

/** Checks a ballot against the rules of its poll type; throws the contract's error when it breaks one. */
export function validateBallot(rules: BallotRules, input: BallotInput): Ballot {
  const field = FIELD_BY_TYPE[rules.pollType];
  for (const other of ['options', 'ranking', 'ratings'] as const) {
    if (other !== field && input[other] !== undefined) {
      throw validationError(`A ${rules.pollType} poll takes "${field}", not "${other}"`, { field: other });
    }
  }
  if (input[field] === undefined) throw validationError(`"${field}" is required`, { field });

  if (rules.pollType === 'RATING') return ratingBallot(rules, input.ratings!);
  const ids = field === 'ranking' ? input.ranking! : input.options!;
  if (ids.length === 0) throw invalidSelection('Select at least one option');
  for (const id of ids) if (!rules.optionIds.has(id)) throw invalidOption(id);
  if (new Set(ids).size !== ids.length) throw invalidSelection('An option may be chosen only once');

  switch (rules.pollType) {
    case 'SINGLE_CHOICE':
      if (ids.length !== 1) throw invalidSelection('A single-choice poll takes exactly one option');
      return { selected: ids, counted: ids, ranking: null, ratings: null };
    case 'MULTIPLE_CHOICE': {
      if (ids.length > rules.maxChoices) {
        throw invalidSelection(`Choose at most ${rules.maxChoices} options`);
      }
      const sorted = [...ids].sort((a, b) => a - b);
      return { selected: sorted, counted: sorted, ranking: null, ratings: null };
    }
    case 'RANKED':
      return { selected: ids, counted: [ids[0]], ranking: ids, ratings: null };
  }
}

function ratingBallot(rules: BallotRules, ratings: Record<string, number>): Ballot {
  const entries = Object.entries(ratings);
  if (entries.length === 0) throw invalidSelection('Rate at least one option');
  const normalized: Record<string, number> = {};
  const ids: number[] = [];
  for (const [key, value] of entries) {
    const id = Number(key);
    if (!rules.optionIds.has(id)) throw invalidOption(id);
    if (value < rules.ratingMin || value > rules.ratingMax) {
      throw invalidSelection(`Ratings must be between ${rules.ratingMin} and ${rules.ratingMax}`);
    }
    normalized[String(id)] = value;
    ids.push(id);
  }
  ids.sort((a, b) => a - b);
  return { selected: ids, counted: ids, ranking: null, ratings: normalized };
}
