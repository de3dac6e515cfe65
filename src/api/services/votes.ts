import { createHash, randomUUID } from 'node:crypto';
import { assertCanReadPoll } from '../../domain/poll-access.js';
import { validateBallot, type BallotInput } from '../../domain/ballot.js';
import type { ViewTokens } from '../../domain/view-token.js';
import type { QueuedVote } from '../../db/votes.js';
import { alreadyVoted, authRequired, AppError, pollExpired, pollNotActive, pollNotFound, unavailable, validationError } from '../../shared/errors.js';
import type { RedisKeys } from '../../shared/redis-keys.js';
import type { VoteBatcher } from '../../workers/vote-ingest.js';
import type { Principal } from '../auth.js';
import type { PollCache } from './poll-cache.js';
import type { VoteClaims } from './vote-claims.js';

export interface VoteBody extends BallotInput {
  view_token?: string;
  fingerprint?: string;
  captcha?: string;
}

export interface CastVoteInput {
  pollId: number;
  caller: Principal | null;
  body: VoteBody;
  ip: string;
  userAgent: string;
  accessKey: string | undefined;
}

const DAY_MS = 86_400_000;

/** The anonymous voter's identity: a hash of poll, address, browser and client fingerprint. */
export function anonymousVoterKey(pollId: number, ip: string, userAgent: string, fingerprint = ''): string {
  return 'f:' + createHash('sha256').update(`${pollId}\n${ip}\n${userAgent}\n${fingerprint}`).digest('base64url').slice(0, 32);
}

/** Casting a vote: every rule of the contract, the dedup claim, then the durable enqueue. */
export function createVoteService(deps: {
  polls: PollCache;
  claims: VoteClaims;
  batcher: VoteBatcher;
  keys: RedisKeys;
  viewTokens: ViewTokens;
}) {
  const { polls, claims, batcher, keys, viewTokens } = deps;

  return async function castVote(input: CastVoteInput): Promise<{ vote_id: string; changed: boolean }> {
    const { pollId, caller, body } = input;
    let cached;
    try {
      cached = await polls.get(pollId);
    } catch {
      throw unavailable();
    }
    if (!cached) throw pollNotFound();
    const { poll, optionIds } = cached;
    const settings = poll.settings;
    assertCanReadPoll({ ...poll, show_results_before_close: settings.show_results_before_close }, caller, input.accessKey);
    if (settings.require_authentication && !caller) throw authRequired('This poll requires signing in to vote');

    const now = Date.now();
    if (poll.status === 'DRAFT') throw pollNotActive('This poll is not published yet');
    // Past end_time is POLL_EXPIRED even once the automatic close has run.
    if (poll.end_time && now >= poll.end_time.getTime()) throw pollExpired();
    if (poll.status === 'CLOSED') throw pollNotActive('This poll is closed');
    if (poll.start_time && now < poll.start_time.getTime()) throw pollNotActive('Voting has not started yet');

    const ballot = validateBallot(
      { pollType: poll.poll_type, optionIds, maxChoices: settings.max_choices, ratingMin: settings.rating_min, ratingMax: settings.rating_max },
      body,
    );

    let responseMs: number | null = null;
    if (body.view_token !== undefined) {
      const issuedAt = viewTokens.verify(body.view_token, pollId, now);
      if (issuedAt === null) throw validationError('view_token is not a token issued for this poll', { field: 'view_token' });
      responseMs = Math.min(now - issuedAt, 2_147_483_647);
    }

    const voterKey = caller ? `u:${caller.userId}` : anonymousVoterKey(pollId, input.ip, input.userAgent, body.fingerprint);
    const claimKey = keys.voter(pollId, voterKey);
    let claim;
    try {
      claim = await claims.claim(claimKey, randomUUID(), poll.allow_change_vote);
    } catch {
      throw unavailable();
    }
    if (claim.outcome === 'duplicate') throw alreadyVoted();

    const vote: QueuedVote = {
      vote_id: claim.voteId,
      poll_id: pollId,
      voter_key: voterKey,
      voter_id: caller?.userId ?? null,
      voter_fingerprint: caller ? null : voterKey.slice(2),
      seq: Number(claim.seq),
      allow_change: poll.allow_change_vote,
      selected: ballot.selected,
      counted: ballot.counted,
      ranking: ballot.ranking,
      ratings: ballot.ratings,
      ip: input.ip,
      user_agent: input.userAgent.slice(0, 512),
      status: 'VALID',
      reasons: [],
      response_ms: responseMs,
      accepted_at: now,
    };
    try {
      await batcher.submit(vote);
    } catch (err) {
      if (claim.outcome === 'new') await claims.release(claimKey, claim.seq);
      throw err instanceof AppError ? err : unavailable();
    }
    const keepMs = Math.max((poll.end_time ? poll.end_time.getTime() - now : 0) + 7 * DAY_MS, 90 * DAY_MS);
    claims.confirm(claimKey, keepMs);
    return { vote_id: claim.voteId, changed: claim.outcome === 'changed' };
  };
}
export type CastVote = ReturnType<typeof createVoteService>;
