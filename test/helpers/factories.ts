/**
 * Small builders of test data for the pure domain rules: a sensible default for every field,
 * and only what a test is about spelt out at the call. Nothing here touches a server, so the
 * unit project can use it.
 */
import type { BallotRules, PollType } from '../../src/domain/ballot.js';
import type { CountedBallot } from '../../src/domain/counting.js';
import type { Caller, PollAccessFacts } from '../../src/domain/poll-access.js';
import type { VotingWindowFacts } from '../../src/domain/vote-rules.js';
import type { AdmitArgs, AdmitKeys } from '../../src/api/services/admission-scripts.js';
import { randomUUID } from 'node:crypto';
import type { QueuedVote } from '../../src/db/votes.js';

/** The option ids every factory poll has, in display order. */
export const OPTION_IDS = [11, 12, 13, 14] as const;

/** A poll as the access and voting-window rules see it: ACTIVE, PUBLIC, creator 1, results shown, no window. */
export function pollFacts(overrides: Partial<PollAccessFacts & VotingWindowFacts> = {}): PollAccessFacts & VotingWindowFacts {
  return {
    status: 'ACTIVE',
    visibility: 'PUBLIC',
    creator_id: 1,
    org_id: null,
    access_key: null,
    show_results_before_close: true,
    start_time: null,
    end_time: null,
    ...overrides,
  };
}

/** A signed-in caller: user 2 (not the factory poll's creator), no organization, not an admin. */
export function callerOf(overrides: Partial<Caller> = {}): Caller {
  return { userId: 2, orgId: null, isAdmin: false, ...overrides };
}

/** The ballot rules of a poll of `pollType` with OPTION_IDS, at most 2 choices, ratings 1..5. */
export function rulesOf(pollType: PollType, overrides: Partial<BallotRules> = {}): BallotRules {
  return { pollType, optionIds: new Set(OPTION_IDS), maxChoices: 2, ratingMin: 1, ratingMax: 5, ...overrides };
}

/**
 * A stored ballot as counting sees it: VALID, poll 1, shard 0. `counted` follows from the
 * selection the way validateBallot derives it (RANKED: the first preference; RATING: every
 * rated option) unless given.
 */
export function ballotOf(overrides: Partial<CountedBallot> = {}): CountedBallot {
  const ranking = overrides.ranking ?? null;
  const ratings = overrides.ratings ?? null;
  const counted =
    overrides.counted ??
    (ranking
      ? ranking.slice(0, 1)
      : ratings
        ? Object.keys(ratings)
            .map(Number)
            .sort((a, b) => a - b)
        : [OPTION_IDS[0]]);
  return { pollId: 1, shard: 0, status: 'VALID', ...overrides, counted, ranking, ratings };
}

/** The keys of one admission with `prefixCount` watched prefixes (IPv4: 1, IPv6: 2). */
export function admitKeys(prefixCount = 1): AdmitKeys {
  const prefixes = Array.from({ length: prefixCount }, (_, i) => [`{p3}:win:${i}`, `{p3}:flag:${i}`] as [string, string]);
  return { claim: '{p3}:claim', pending: '{p3}:pending', closed: '{p3}:closed', ipVotes: '{p3}:ip', viewToken: '{p3}:token', prefixes };
}

/** Admission arguments with every flag off and distinct numbers, so a swapped position shows. */
export function admitArgs(overrides: Partial<AdmitArgs> = {}): AdmitArgs {
  return {
    voteId: '0193c0de-0000-7000-8000-000000000001',
    allowChange: false,
    pendingTtlMs: 30_000,
    windowMs: 60_000,
    prefixLimit: 50,
    captchaSolved: false,
    captchaIfFlagged: false,
    ipSoft: 20,
    ipHard: 100,
    ipWindowMs: 3_600_000,
    endMs: 0,
    viewTokenTtlMs: 0,
    viewTokenRequired: false,
    ...overrides,
  };
}

/** A vote as the API queues it: a fresh anonymous single-option VALID vote of `pollId`, with `overrides`. */
export function queuedVote(pollId: number, overrides: Partial<QueuedVote> = {}): QueuedVote {
  return {
    vote_id: randomUUID(),
    poll_id: pollId,
    voter_key: `f:${randomUUID()}`,
    voter_id: null,
    voter_fingerprint: null,
    seq: 1,
    allow_change: false,
    selected: [],
    counted: [],
    ranking: null,
    ratings: null,
    ip: '10.0.0.1',
    user_agent: 'x',
    status: 'VALID',
    reasons: [],
    response_ms: null,
    accepted_at: Date.now(),
    shard: 0,
    view_token: 'missing',
    ...overrides,
  };
}
