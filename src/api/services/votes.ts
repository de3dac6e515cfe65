import { randomFillSync } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { validateBallot, type Ballot, type BallotInput } from '../../domain/ballot.js';
import { FLAG_REASONS } from '../../domain/flag-reasons.js';
import { assertCanReadPoll } from '../../domain/poll-access.js';
import { claimLifetimeMs, claimMayHaveLapsed, flagReasonsOf, votingWindowRefusal, type WindowRefusal } from '../../domain/vote-rules.js';
import { voterIdentityOf, type VoterIdentity } from '../../domain/voter.js';
import { clientTagOf, type ViewTokens, type ViewTokenState } from '../../domain/view-token.js';
import type { QueuedVote } from '../../db/votes.js';
import {
  AppError,
  alreadyVoted,
  authRequired,
  captchaRequired,
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
import type { Principal } from '../../shared/auth.js';
import type { VoteBatcher } from '../vote-batcher.js';
import type { Captcha } from './captcha.js';
import type { CachedPoll, PollCache } from './poll-cache.js';
import type { Admission, AdmitKeys } from './admission-scripts.js';
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

/** The answer a refused admission gets. */
const ADMISSION_REFUSALS: Record<Exclude<Admission['outcome'], 'new' | 'changed'>, (a: Admission) => AppError | Promise<AppError>> = {
  closed: () => pollNotActive('This poll is closed'),
  expired: () => pollExpired(),
  pending: (a) => votePending(('retryMs' in a ? a.retryMs : 1000) / 1000),
  duplicate: () => alreadyVoted(),
  rate_limited: (a) => rateLimited(('retryMs' in a ? a.retryMs : 1000) / 1000),
  captcha_step_up: () => captchaRequired('Many votes came from your network: solve the CAPTCHA to vote'),
  captcha_flagged: () => captchaRequired('Votes from your network need a solved CAPTCHA for now'),
  view_token: () => validationError('This view token was used already: load the poll again', { field: 'view_token' }),
};

/** Where a voter's state lives: their identity, partition, and the keys of their admission. */
interface Placement {
  voter: VoterIdentity;
  partition: number;
  keys: AdmitKeys;
  /** The velocity windows (in the address's partition), [window, flag] per watched prefix. */
  windows: Array<[string, string]>;
  prefixes: string[];
  prefixTag: string;
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

  async function loadPoll(pollId: number): Promise<CachedPoll> {
    const cached = await polls.get(pollId).catch(() => {
      throw unavailable();
    });
    if (!cached) throw pollNotFound();
    return cached;
  }

  /** Who may vote now, and is the ballot valid: the contract's rules before any Redis work. */
  function checkVote({ poll, optionIds }: CachedPoll, input: CastVoteInput, now: number) {
    const s = poll.settings;
    assertCanReadPoll({ ...poll, show_results_before_close: s.show_results_before_close }, input.caller, input.accessKey);
    if (s.require_authentication && !input.caller) throw authRequired('This poll requires signing in to vote');
    const refusal = votingWindowRefusal(poll, now);
    if (refusal) throw WINDOW_ERRORS[refusal]();
    return validateBallot({ pollType: poll.poll_type, optionIds, maxChoices: s.max_choices, ratingMin: s.rating_min, ratingMax: s.rating_max }, input.body);
  }

  /** The view token's verdict: a forged one is refused; an expired, foreign or reused one counts as none. */
  function checkViewToken({ poll }: CachedPoll, input: CastVoteInput, now: number) {
    const required = poll.settings.require_view_token && !input.caller;
    const raw = input.body.view_token;
    const check = raw === undefined ? undefined : viewTokens.verify(raw, poll.poll_id, clientTagOf(input.ip, input.userAgent), now);
    if (check === null) throw validationError('view_token is not a token issued for this poll', { field: 'view_token' });
    const state: ViewTokenState = check?.state ?? 'missing';
    if (required && state !== 'valid')
      throw validationError(`This poll needs a fresh view token (yours is ${state}): load the poll again`, { field: 'view_token' });
    if (!check || state !== 'valid') return { state, required, nonce: null, ttlMs: 0, responseMs: null };
    const responseMs = Math.min(now - check.issuedAt, 2_147_483_647);
    return { state, required, nonce: check.nonce, ttlMs: Math.max(1, viewTokens.ttlMs - responseMs), responseMs };
  }

  /** The voter's partition and the keys of their admission. */
  function place({ poll, tags }: CachedPoll, input: CastVoteInput, nonce: string | null): Placement {
    const pollId = poll.poll_id;
    const voter = voterIdentityOf({
      pollId,
      userId: input.caller?.userId ?? null,
      ip: input.ip,
      userAgent: input.userAgent,
      fingerprint: input.body.fingerprint,
    });
    const partition = partitionOf(voter.routingKey, poll.partitions);
    const tag = tags[partition];
    // A signed-in voter's claim is in their user's partition; their address's windows in the address's.
    const prefixTag = input.caller ? tags[partitionOf(voter.prefixes.at(-1) ?? voter.limitKey, poll.partitions)] : tag;
    const prefixes = integrity.enabled ? voter.prefixes : [];
    const windows = prefixes.map((p): [string, string] => [keys.prefixWindow(prefixTag, pollId, p), keys.prefixFlag(prefixTag, pollId, p)]);
    return {
      voter,
      partition,
      prefixes,
      prefixTag,
      windows,
      keys: {
        claim: keys.voter(tag, pollId, voter.voterKey),
        pending: keys.pendingClaims(tag, pollId),
        closed: keys.pollClosed(tag, pollId),
        ipVotes: keys.ipVotes(tag, pollId, voter.limitKey),
        viewToken: keys.viewTokenUsed(tag, pollId, nonce ?? '-'),
        prefixes: input.caller ? [] : windows,
      },
    };
  }

  /** The one admission round trip; a refusal becomes its contract error. */
  async function admit(cached: CachedPoll, input: CastVoteInput, at: Placement, token: ReturnType<typeof checkViewToken>, solved: boolean) {
    const defences = integrity.enabled && !input.caller;
    const admitted = await admission
      .admit(at.keys, {
        voteId: uuidv7({ random: random16() }), // time-ordered: the votes primary key appends at its right edge
        allowChange: cached.poll.allow_change_vote,
        pendingTtlMs: deps.pendingTtlMs,
        windowMs: integrity.prefixWindowMs,
        prefixLimit: integrity.prefixLimit,
        captchaSolved: solved,
        captchaIfFlagged: captchaModeOf(cached) !== 'off' && !solved,
        // Per-address limits bound anonymous identities per address; a signed-in user is one voter anyway.
        ipSoft: defences ? integrity.ipSoft : 0,
        ipHard: defences ? integrity.ipHard : 0,
        ipWindowMs: 3_600_000,
        endMs: cached.poll.end_time?.getTime() ?? 0,
        viewTokenTtlMs: token.ttlMs,
        viewTokenRequired: token.required,
      })
      .catch(() => {
        throw unavailable();
      });
    if (admitted.outcome !== 'new' && admitted.outcome !== 'changed') throw await withChallenge(await ADMISSION_REFUSALS[admitted.outcome](admitted));
    return admitted;
  }

  /** A 428 carries a fresh challenge to solve. */
  async function withChallenge(err: AppError): Promise<AppError> {
    return err.code === 'CAPTCHA_REQUIRED' ? captchaRequired(err.message, await integrity.captcha.challenge()) : err;
  }

  const captchaModeOf = ({ poll }: CachedPoll) => (integrity.enabled ? poll.settings.captcha : 'off');

  return async function castVote(input: CastVoteInput): Promise<{ vote_id: string; changed: boolean; held: boolean }> {
    const now = Date.now();
    const cached = await loadPoll(input.pollId);
    const ballot = checkVote(cached, input, now);
    const token = checkViewToken(cached, input, now);
    const at = place(cached, input, token.nonce);
    const solved = input.body.captcha !== undefined && (await integrity.captcha.redeem(input.body.captcha).catch(() => false));
    if (captchaModeOf(cached) === 'always' && !input.caller && !solved) {
      throw await withChallenge(captchaRequired('Solve the CAPTCHA to vote in this poll'));
    }
    const admitted = await admit(cached, input, at, token, solved);
    const release = () => admission.release(at.keys, admitted.voteId, admitted.seq, admitted.outcome === 'new');
    const velocity =
      input.caller && at.windows.length ? await watchPrefixes(at, admitted.voteId, captchaModeOf(cached) !== 'off' && !solved, release) : admitted;
    const flagJobs = flagCrossedWindows(input.pollId, at.prefixes, velocity);
    const changed = admitted.outcome === 'changed' || (await storedBefore(cached, at, admitted, release, now));

    const reasons = flagReasonsOf({
      prefixFlagged: velocity.flaggedBefore || velocity.crossed.length > 0,
      responseMs: token.responseMs,
      minResponseMs: integrity.minResponseMs,
    });
    const tokenState: ViewTokenState = token.nonce && !admitted.viewTokenFresh ? 'reused' : token.state;
    const vote = queuedVoteOf(cached, input, at, admitted, ballot, reasons, tokenState === 'valid' ? token.responseMs : null, tokenState);
    try {
      await batcher.submit(vote, voteQueueOf(at.partition, deps.voteQueues));
    } catch (err) {
      await release();
      throw err instanceof AppError ? err : unavailable();
    }
    if (flagJobs) await flagJobs;
    for (const r of reasons) integrity.onFlagged?.(r, 1);
    admission.confirm(at.keys, claimLifetimeMs(cached.poll.end_time, now), admitted.voteId, admitted.seq);
    return { vote_id: admitted.voteId, changed, held: reasons.length > 0 };
  };

  /** A signed-in vote's velocity windows (second round trip); a flagged prefix wanting a CAPTCHA releases the claim. */
  async function watchPrefixes(at: Placement, voteId: string, captchaIfFlagged: boolean, release: () => Promise<unknown>) {
    const w = await admission
      .watch(at.windows, { voteId, windowMs: integrity.prefixWindowMs, prefixLimit: integrity.prefixLimit, captchaIfFlagged })
      .catch(async () => {
        await release();
        throw unavailable();
      });
    if (w.outcome === 'watched') return w;
    await release();
    throw await withChallenge(ADMISSION_REFUSALS.captcha_flagged({ outcome: 'captcha_flagged' }) as AppError);
  }

  /** The votes already in a crossed window are flagged by their own durable job; a failed job is logged, never the vote's answer. */
  function flagCrossedWindows(pollId: number, prefixes: string[], v: { crossed: number[]; windowVoteIds: string[] }): Promise<void> | null {
    if (v.crossed.length === 0) return null;
    const jobs = v.crossed.map((i) => integrity.flagPrefix({ poll_id: pollId, prefix: prefixes[i], vote_ids: v.windowVoteIds, reason: FLAG_REASONS.velocity }));
    return Promise.all(jobs).then(
      () => {},
      (err: unknown) => integrity.onFlagJobFailed?.(err),
    );
  }

  /**
   * Whether a "new" voter's claim had only lapsed (a poll open longer than claims last): the
   * stored votes decide, a duplicate is refused and its claim restored, a change goes on.
   */
  async function storedBefore(
    cached: CachedPoll,
    at: Placement,
    admitted: { voteId: string; seq: string },
    release: () => Promise<unknown>,
    now: number,
  ): Promise<boolean> {
    const { poll } = cached;
    if (!claimMayHaveLapsed(poll.published_at ?? poll.created_at, now)) return false;
    const known = await deps.hasStoredVote(poll.poll_id, at.voter.voterKey).catch(async () => {
      await release();
      throw unavailable();
    });
    if (known && !poll.allow_change_vote) {
      admission.confirm(at.keys, claimLifetimeMs(poll.end_time, now), admitted.voteId, admitted.seq);
      throw alreadyVoted();
    }
    return known;
  }
}
export type CastVote = ReturnType<typeof createVoteService>;

/** The vote as queued for the committer. */
function queuedVoteOf(
  { poll }: CachedPoll,
  input: CastVoteInput,
  at: Placement,
  admitted: { voteId: string; seq: string; nowMs: number },
  ballot: Ballot,
  reasons: string[],
  responseMs: number | null,
  viewToken: ViewTokenState,
): QueuedVote {
  return {
    vote_id: admitted.voteId,
    poll_id: poll.poll_id,
    shard: at.partition,
    voter_key: at.voter.voterKey,
    voter_id: input.caller?.userId ?? null,
    voter_fingerprint: input.caller ? null : at.voter.voterKey.slice(2),
    seq: Number(admitted.seq),
    allow_change: poll.allow_change_vote,
    ...ballot,
    ip: input.ip,
    user_agent: input.userAgent.slice(0, 512),
    status: reasons.length ? 'SUSPICIOUS' : 'VALID',
    reasons,
    response_ms: responseMs,
    view_token: viewToken,
    accepted_at: admitted.nowMs,
    prefixes: at.prefixes,
    prefix_tag: at.prefixTag,
    country: input.country,
  };
}
