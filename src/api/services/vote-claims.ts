import type { Redis } from 'ioredis';

/**
 * Atomic dedup claim of one voter in one poll (KEYS[1] = the voter's key).
 * New voter: the key is created with a short TTL (a pending marker: a crash before the vote
 * is queued lets the voter try again once it lapses). Known voter: refused, or, where votes
 * may change, given a higher sequence number so the latest vote wins downstream.
 * The seq is max(previous + 1, server time in µs): it keeps moving forward even if the key
 * is ever lost. Returns {outcome (0 new, 1 duplicate, 2 changed), seq, vote_id}.
 */
const CLAIM_VOTE = `
local prev = redis.call('HGET', KEYS[1], 'seq')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if not prev then
  local seq = string.format('%.0f', now)
  redis.call('HSET', KEYS[1], 'seq', seq, 'vote_id', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {0, seq, ARGV[1]}
end
local voteId = redis.call('HGET', KEYS[1], 'vote_id')
if ARGV[2] ~= '1' then return {1, prev, voteId} end
local seq = string.format('%.0f', math.max(tonumber(prev) + 1, now))
redis.call('HSET', KEYS[1], 'seq', seq)
return {2, seq, voteId}
`;

/** Deletes a new voter's pending claim when its vote could not be queued (compare-and-delete). */
const RELEASE_CLAIM = `
if redis.call('HGET', KEYS[1], 'seq') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export type ClaimOutcome = 'new' | 'duplicate' | 'changed';

interface ClaimCommands {
  claimVote(key: string, voteId: string, allowChange: string, pendingTtlMs: number): Promise<[number, string, string]>;
  releaseVoteClaim(key: string, seq: string): Promise<number>;
}

/** The Redis side of "one vote per voter": claim, confirm once queued, release on failure. */
export function createVoteClaims(redis: Redis, { pendingTtlMs }: { pendingTtlMs: number }) {
  redis.defineCommand('claimVote', { numberOfKeys: 1, lua: CLAIM_VOTE });
  redis.defineCommand('releaseVoteClaim', { numberOfKeys: 1, lua: RELEASE_CLAIM });
  const cmd = redis as unknown as ClaimCommands;
  const outcomes: ClaimOutcome[] = ['new', 'duplicate', 'changed'];

  return {
    async claim(key: string, voteId: string, allowChange: boolean) {
      const [outcome, seq, existingVoteId] = await cmd.claimVote(key, voteId, allowChange ? '1' : '0', pendingTtlMs);
      return { outcome: outcomes[outcome], seq, voteId: existingVoteId };
    },
    /** Makes the claim last as long as the poll matters, once its vote is queued. */
    confirm(key: string, ttlMs: number): void {
      redis.pexpire(key, ttlMs).catch(() => {});
    },
    release(key: string, seq: string): Promise<unknown> {
      return cmd.releaseVoteClaim(key, seq).catch(() => 0);
    },
  };
}
export type VoteClaims = ReturnType<typeof createVoteClaims>;
