import { randomFillSync } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { validateBallot, type BallotInput } from '../../domain/ballot.js';
import { FLAG_REASONS } from '../../domain/flag-reasons.js';
import { assertCanReadPoll } from '../../domain/poll-access.js';
import { claimLifetimeMs, claimMayHaveLapsed, flagReasonsOf, votingWindowRefusal, type WindowRefusal } from '../../domain/vote-rules.js';
import { voterIdentityOf } from '../../domain/voter.js';
import { clientTagOf, type ViewTokens, type ViewTokenState } from '../../domain/view-token.js';
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
  votePending,
} from '../../shared/errors.js';
import { partitionOf, voteQueueOf, type RedisKeys } from '../../shared/redis-keys.js';
import type { FlagPrefixJob } from '../../shared/queues.js';
import type { Principal } from '../auth.js';
import type { VoteBatcher } from '../vote-batcher.js';
import type { Captcha } from './captcha.js';
import type { CachedPoll, PollCache } from './poll-cache.js';
import type { AdmitKeys } from './admission-scripts.js';
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

const WINDOW_ERRORS: Record<WindowRefusal, () => AppError> = {
  DRAFT: () => pollNotActive('This poll is not published yet'),
  EXPIRED: () => pollExpired(),
  CLOSED: () => pollNotActive('This poll is closed'),
  NOT_STARTED: () => pollNotActive('Voting has not started yet'),
};

/** `428 CAPTCHA_REQUIRED` with a fresh challenge to solve. */
async function captchaRequired(captcha: Captcha, message: string): Promise<AppError> {
  return new AppError(428, 'CAPTCHA_REQUIRED', message, { challenge: await captcha.challenge() });
}

/** The fraud defences' settings; `enabled: false` only to measure their cost. */
export interface IntegrityDeps {
  enabled: boolean;
  /** Votes per address per poll per hour before a CAPTCHA is asked, and the hard cap. */
  ipSoft: number;
  ipHard: number;
  prefixLimit: number;
  prefixWindowMs: number;
  minResponseMs: number;
  captcha: Captcha;
  flagPrefix: (job: FlagPrefixJob) => Promise<unknown>;
  onFlagged?: (reason: string, count: number) => void;
  onFlagJobFailed?: (err: unknown) => void;
}

/** Casting a vote: the contract's rules, the integrity checks, the Redis admission, then the durable enqueue. */
export function createVoteService(deps: {
  polls: PollCache;
  admission: VoteAdmission;
  batcher: VoteBatcher;
  keys: RedisKeys;
  viewTokens: ViewTokens;
  integrity: IntegrityDeps;
  pendingTtlMs: number;
  /** How many vote queues there are (partition p goes to queue p mod this). */
  voteQueues: number;
  /** Whether the voter has a stored vote (asked only where a claim may have lapsed). */
  hasStoredVote: (pollId: number, voterKey: string) => Promise<boolean>;
}) {
  const { polls, admission, batcher, keys, viewTokens, integrity } = deps;

  /** The view token's verdict: a forged one is refused; an expired, foreign or reused one counts as none. */
  function checkViewToken(raw: string | undefined, pollId: number, input: CastVoteInput, now: number) {
    if (raw === undefined) return { state: 'missing' as ViewTokenState, nonce: null, ttlMs: 0, responseMs: null };
    const check = viewTokens.verify(raw, pollId, clientTagOf(input.ip, input.userAgent), now);
    if (!check) throw validationError('view_token is not a token issued for this poll', { field: 'view_token' });
    if (check.state !== 'valid') return { state: check.state as ViewTokenState, nonce: null, ttlMs: 0, responseMs: null };
    const responseMs = Math.min(now - check.issuedAt, 2_147_483_647);
    return { state: check.state as ViewTokenState, nonce: check.nonce, ttlMs: Math.max(1, viewTokens.ttlMs - responseMs), responseMs };
  }

  async function loadPoll(pollId: number): Promise<CachedPoll> {
    let cached;
    try {
      cached = await polls.get(pollId);
    } catch {
      throw unavailable();
    }
    if (!cached) throw pollNotFound();
    return cached;
  }

  return async function castVote(input: CastVoteInput): Promise<{ vote_id: string; changed: boolean; held: boolean }> {
    const { pollId, caller, body } = input;
    const cached = await loadPoll(pollId);
    const { poll, settings } = { poll: cached.poll, settings: cached.poll.settings };
    assertCanReadPoll({ ...poll, show_results_before_close: settings.show_results_before_close }, caller, input.accessKey);
    if (settings.require_authentication && !caller) throw authRequired('This poll requires signing in to vote');
    const now = Date.now();
    const refusal = votingWindowRefusal(poll, now);
    if (refusal) throw WINDOW_ERRORS[refusal]();
    const ballot = validateBallot(
      { pollType: poll.poll_type, optionIds: cached.optionIds, maxChoices: settings.max_choices, ratingMin: settings.rating_min, ratingMax: settings.rating_max },
      body,
    );
    const token = checkViewToken(body.view_token, pollId, input, now);
    const tokenRequired = settings.require_view_token && !caller;
    if (tokenRequired && token.state !== 'valid') {
      throw validationError(`This poll needs a fresh view token (yours is ${token.state}): load the poll again`, { field: 'view_token' });
    }

    const voter = voterIdentityOf({ pollId, userId: caller?.userId ?? null, ip: input.ip, userAgent: input.userAgent, fingerprint: body.fingerprint });
    const partition = partitionOf(voter.routingKey, poll.partitions);
    const tag = cached.tags[partition];
    // A signed-in voter's claim is in their user's partition; their address's windows in the address's.
    const prefixTag = caller ? cached.tags[partitionOf(voter.prefixes.at(-1) ?? voter.limitKey, poll.partitions)] : tag;
    const defences = integrity.enabled;
    const captchaMode = defences ? settings.captcha : 'off';
    const solved = body.captcha !== undefined && (await integrity.captcha.redeem(body.captcha).catch(() => false));
    if (captchaMode === 'always' && !caller && !solved) throw await captchaRequired(integrity.captcha, 'Solve the CAPTCHA to vote in this poll');

    const prefixes = defences ? voter.prefixes : [];
    const windows = prefixes.map((p): [string, string] => [keys.prefixWindow(prefixTag, pollId, p), keys.prefixFlag(prefixTag, pollId, p)]);
    const admitKeys: AdmitKeys = {
      claim: keys.voter(tag, pollId, voter.voterKey),
      pending: keys.pendingClaims(tag, pollId),
      closed: keys.pollClosed(tag, pollId),
      ipVotes: keys.ipVotes(tag, pollId, voter.limitKey),
      viewToken: keys.viewTokenUsed(tag, pollId, token.nonce ?? '-'),
      prefixes: caller ? [] : windows,
    };
    const captchaIfFlagged = captchaMode !== 'off' && !solved;
    let admitted;
    try {
      admitted = await admission.admit(admitKeys, {
        voteId: uuidv7({ random: random16() }), // time-ordered: the votes primary key appends at its right edge
        allowChange: poll.allow_change_vote,
        pendingTtlMs: deps.pendingTtlMs,
        windowMs: integrity.prefixWindowMs,
        prefixLimit: integrity.prefixLimit,
        captchaSolved: solved,
        captchaIfFlagged,
        // Per-address limits bound anonymous identities per address; a signed-in user is one voter anyway.
        ipSoft: defences && !caller ? integrity.ipSoft : 0,
        ipHard: defences && !caller ? integrity.ipHard : 0,
        ipWindowMs: 3_600_000,
        endMs: poll.end_time?.getTime() ?? 0,
        viewTokenTtlMs: token.ttlMs,
        viewTokenRequired: tokenRequired,
      });
    } catch {
      throw unavailable();
    }
    switch (admitted.outcome) {
      case 'closed':
        throw pollNotActive('This poll is closed');
      case 'expired':
        throw pollExpired();
      case 'pending':
        throw votePending(admitted.retryMs / 1000);
      case 'duplicate':
        throw alreadyVoted();
      case 'rate_limited':
        throw rateLimited(admitted.retryMs / 1000);
      case 'captcha_step_up':
        throw await captchaRequired(integrity.captcha, 'Many votes came from your network: solve the CAPTCHA to vote');
      case 'captcha_flagged':
        throw await captchaRequired(integrity.captcha, 'Votes from your network need a solved CAPTCHA for now');
      case 'view_token':
        throw validationError('This view token was used already: load the poll again', { field: 'view_token' });
    }
    const isNew = admitted.outcome === 'new';
    const release = () => admission.release(admitKeys, admitted.voteId, admitted.seq, isNew);

    let watched = admitted;
    if (caller && windows.length) {
      let w;
      try {
        w = await admission.watch(windows, { voteId: admitted.voteId, windowMs: integrity.prefixWindowMs, prefixLimit: integrity.prefixLimit, captchaIfFlagged });
      } catch {
        await release();
        throw unavailable();
      }
      if (w.outcome === 'captcha_flagged') {
        await release();
        throw await captchaRequired(integrity.captcha, 'Votes from your network need a solved CAPTCHA for now');
      }
      watched = { ...admitted, ...w, outcome: admitted.outcome };
    }
    // The votes already in a crossed window are flagged by their own durable job; a failed flag job is logged, never the vote's answer.
    const flagJobs = watched.crossed.length
      ? Promise.all(
          watched.crossed.map((i) =>
            integrity.flagPrefix({ poll_id: pollId, prefix: prefixes[i], vote_ids: watched.windowVoteIds, reason: FLAG_REASONS.velocity }),
          ),
        ).then(() => {}, (err: unknown) => integrity.onFlagJobFailed?.(err))
      : null;

    const keepMs = claimLifetimeMs(poll.end_time, now);
    let changed = !isNew;
    if (isNew && claimMayHaveLapsed(poll.published_at ?? poll.created_at, now)) {
      let known: boolean;
      try {
        known = await deps.hasStoredVote(pollId, voter.voterKey);
      } catch {
        await release();
        throw unavailable();
      }
      if (known && !poll.allow_change_vote) {
        admission.confirm(admitKeys, keepMs, admitted.voteId, admitted.seq);
        throw alreadyVoted();
      }
      changed = known;
    }

    const reasons = flagReasonsOf({ prefixFlagged: watched.flaggedBefore || watched.crossed.length > 0, responseMs: token.responseMs, minResponseMs: integrity.minResponseMs });
    const tokenState: ViewTokenState = token.nonce && !admitted.viewTokenFresh ? 'reused' : token.state;
    const vote: QueuedVote = {
      vote_id: admitted.voteId,
      poll_id: pollId,
      shard: partition,
      voter_key: voter.voterKey,
      voter_id: caller?.userId ?? null,
      voter_fingerprint: caller ? null : voter.voterKey.slice(2),
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
      response_ms: tokenState === 'valid' ? token.responseMs : null,
      view_token: tokenState,
      accepted_at: admitted.nowMs,
      prefixes,
      prefix_tag: prefixTag,
      country: input.country,
    };
    try {
      await batcher.submit(vote, voteQueueOf(partition, deps.voteQueues));
    } catch (err) {
      await release();
      throw err instanceof AppError ? err : unavailable();
    }
    if (flagJobs) await flagJobs;
    for (const r of reasons) integrity.onFlagged?.(r, 1);
    admission.confirm(admitKeys, keepMs, admitted.voteId, admitted.seq);
    return { vote_id: admitted.voteId, changed, held: reasons.length > 0 };
  };
}
export type CastVote = ReturnType<typeof createVoteService>;
