import { hash, randomFillSync } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type { RateLimiterRedis } from 'rate-limiter-flexible';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { FLAG_REASONS } from '../../domain/flag-reasons.js';
import { addressGroupsOf } from '../../domain/ip-prefix.js';
import { assertCanReadPoll } from '../../domain/poll-access.js';
import { validateBallot, type BallotInput } from '../../domain/ballot.js';
import type { ViewTokens } from '../../domain/view-token.js';
import type { QueuedVote } from '../../db/votes.js';
import {
  AppError,
  alreadyVoted,
  authRequired,
  pollExpired,
  pollNotActive,
  pollNotFound,
  rateLimited,
  unavailable,
  validationError,
} from '../../shared/errors.js';
import type { RedisKeys } from '../../shared/redis-keys.js';
import type { VoteBatcher } from '../../workers/vote-ingest.js';
import type { FlagPrefixJob } from '../../workers/vote-flagging.js';
import type { Principal } from '../auth.js';
import type { Captcha } from './captcha.js';
import type { PollCache } from './poll-cache.js';
import type { VoteAdmission } from './vote-admission.js';

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
  /** From the operator's CDN country header; undefined where none is configured. */
  country?: string | null;
  accessKey: string | undefined;
}

const DAY_MS = 86_400_000;
// A confirmed claim lasts at least this long (longer for a poll that ends later).
const CLAIM_MIN_MS = 90 * DAY_MS;

// crypto.getRandomValues for every vote id costs more than the rest of the id: draw from a pool.
const randomPool = Buffer.allocUnsafe(16 * 512);
let randomAt = randomPool.length;
function random16(): Uint8Array {
  if (randomAt === randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  return randomPool.subarray(randomAt, (randomAt += 16));
}

/** The anonymous voter's identity: a hash of poll, address, browser and client fingerprint. */
export function anonymousVoterKey(pollId: number, ip: string, userAgent: string, fingerprint = ''): string {
  return 'f:' + hash('sha256', `${pollId}\n${ip}\n${userAgent}\n${fingerprint}`, 'base64url').slice(0, 32);
}

/** `428 CAPTCHA_REQUIRED` with a fresh challenge to solve. */
async function captchaRequired(captcha: Captcha, message: string): Promise<AppError> {
  return new AppError(428, 'CAPTCHA_REQUIRED', message, { challenge: await captcha.challenge() });
}

export interface IntegrityDeps {
  /** The per-IP limit; null when fraud defences are off. */
  ipLimiter: RateLimiterRedis | null;
  captcha: Captcha;
  minResponseMs: number;
  flagPrefix: (job: FlagPrefixJob) => Promise<unknown>;
  onFlagged?: (reason: string, count: number) => void;
  onFlagJobFailed?: (err: unknown) => void;
}

/** Casting a vote: every rule of the contract, the integrity checks, the dedup claim, then the durable enqueue. */
export function createVoteService(deps: {
  polls: PollCache;
  admission: VoteAdmission;
  batcher: VoteBatcher;
  keys: RedisKeys;
  viewTokens: ViewTokens;
  integrity: IntegrityDeps;
  /** Whether the voter has a stored vote (asked only where a claim may have lapsed). */
  hasStoredVote: (pollId: number, voterKey: string) => Promise<boolean>;
}) {
  const { polls, admission, batcher, keys, viewTokens, integrity } = deps;
  const defences = integrity.ipLimiter !== null;

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

    const groups = addressGroupsOf(input.ip);
    const captchaMode = defences ? settings.captcha : 'off';
    const voterKey = caller ? `u:${caller.userId}` : anonymousVoterKey(pollId, input.ip, input.userAgent, body.fingerprint);
    const claimKey = keys.voter(pollId, voterKey);
    const prefixes = defences ? groups.prefixes : [];

    // The per-IP limit first: a refused request must leave no trace in the velocity windows,
    // or one address held to its limit could still flag its neighbours' votes.
    if (integrity.ipLimiter) {
      try {
        await integrity.ipLimiter.consume(`{${pollId}}:${groups.limitKey}`);
      } catch (err) {
        throw err instanceof RateLimiterRes ? rateLimited(err.msBeforeNext / 1000) : unavailable();
      }
    }
    // A submitted CAPTCHA is redeemed before the admission, which needs to know whether it was solved.
    let solved = false;
    if (body.captcha !== undefined) {
      try {
        solved = await integrity.captcha.redeem(body.captcha);
      } catch {
        throw unavailable();
      }
    }
    if (captchaMode === 'always' && !caller && !solved) {
      throw await captchaRequired(integrity.captcha, 'Solve the CAPTCHA to vote in this poll');
    }

    let admitted;
    try {
      admitted = await admission.admit(
        claimKey,
        prefixes.map((p) => [keys.prefixWindow(pollId, p), keys.prefixFlag(pollId, p)]),
        // Time-ordered ids keep the votes primary key appending at its right edge.
        uuidv7({ random: random16() }),
        poll.allow_change_vote,
        captchaMode !== 'off' && !solved,
      );
    } catch {
      throw unavailable();
    }
    // The votes already in a crossed window are flagged by their own durable job. Whatever
    // becomes of this vote, a failed flag job is logged, never turned into the vote's answer.
    const flagJobs = admitted.crossed.length
      ? Promise.all(
          admitted.crossed.map((i) =>
            integrity.flagPrefix({ poll_id: pollId, prefix: prefixes[i], vote_ids: admitted.windowVoteIds, reason: FLAG_REASONS.velocity }),
          ),
        ).then(() => {}, (err: unknown) => integrity.onFlagJobFailed?.(err))
      : null;
    if (admitted.outcome === 'captcha') {
      throw await captchaRequired(integrity.captcha, 'Votes from your network need a solved CAPTCHA for now');
    }
    if (admitted.outcome === 'duplicate') throw alreadyVoted();
    // Whole minutes, so a batch's claims share one TTL and are confirmed together.
    const keepMs = Math.ceil(Math.max((poll.end_time ? poll.end_time.getTime() - now : 0) + 7 * DAY_MS, CLAIM_MIN_MS) / 60_000) * 60_000;
    let outcome = admitted.outcome;
    // On a poll open longer than a claim lasts, a "new" voter's claim may just have lapsed: the
    // stored votes decide. Hot polls are young, so this read never meets a viral burst.
    if (outcome === 'new' && now - (poll.published_at ?? poll.created_at).getTime() > CLAIM_MIN_MS - DAY_MS) {
      let known: boolean;
      try {
        known = await deps.hasStoredVote(pollId, voterKey);
      } catch {
        await admission.release(claimKey, admitted.seq);
        throw unavailable();
      }
      if (known && !poll.allow_change_vote) {
        admission.confirm(claimKey, keepMs);
        throw alreadyVoted();
      }
      if (known) outcome = 'changed';
    }

    const reasons: string[] = [];
    if (admitted.flaggedBefore || admitted.crossed.length) reasons.push(FLAG_REASONS.velocity);
    if (responseMs !== null && responseMs < integrity.minResponseMs) reasons.push(FLAG_REASONS.tooFast);

    const vote: QueuedVote = {
      vote_id: admitted.voteId,
      poll_id: pollId,
      voter_key: voterKey,
      voter_id: caller?.userId ?? null,
      voter_fingerprint: caller ? null : voterKey.slice(2),
      seq: Number(admitted.seq),
      allow_change: poll.allow_change_vote,
      selected: ballot.selected,
      counted: ballot.counted,
      ranking: ballot.ranking,
      ratings: ballot.ratings,
      ip: input.ip,
      user_agent: input.userAgent.slice(0, 512),
      status: reasons.length ? 'SUSPICIOUS' : 'VALID',
      reasons,
      response_ms: responseMs,
      accepted_at: admitted.nowMs,
      prefixes,
      country: input.country,
    };
    try {
      await batcher.submit(vote);
    } catch (err) {
      if (admitted.outcome === 'new') await admission.release(claimKey, admitted.seq);
      throw err instanceof AppError ? err : unavailable();
    }
    if (flagJobs) await flagJobs;
    for (const r of reasons) integrity.onFlagged?.(r, 1);
    admission.confirm(claimKey, keepMs);
    return { vote_id: admitted.voteId, changed: outcome === 'changed' };
  };
}
export type CastVote = ReturnType<typeof createVoteService>;
