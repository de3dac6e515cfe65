import type { Redis } from 'ioredis';

/**
 * One atomic step per vote, all keys in the poll's slot (KEYS[1] the voter's claim, then
 * a (window, flag) pair per watched address prefix):
 *  1. A prefix flagged for velocity admits only votes with a solved CAPTCHA (when the poll
 *     asks for one): otherwise {3} and nothing is claimed.
 *  2. The dedup claim: a new voter gets a short-lived pending claim (a crash before the vote
 *     is queued lets them retry once it lapses); a known voter is refused ({1}) or, where
 *     votes may change, gets a higher sequence number. seq = max(previous + 1, server µs),
 *     so it keeps moving forward even if the key is lost.
 *  3. The vote joins each prefix's sliding window (a sorted set scored by time); a window
 *     over the limit flags its prefix for the rest of the window, and the ids in the window
 *     are returned for the flagging job.
 * Returns {outcome (0 new, 1 duplicate, 2 changed, 3 captcha needed), seq, vote_id,
 * flagged_before (0/1), now_ms, crossed prefix indexes (csv), window vote ids...}.
 */
const ADMIT_VOTE = `
local t = redis.call('TIME')
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowMs = math.floor(nowUs / 1000)
local windowMs = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local flagged = 0
for i = 3, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then flagged = 1 end
end
if flagged == 1 and ARGV[6] == '1' then return {3} end

local prev = redis.call('HGET', KEYS[1], 'seq')
local outcome, seq, voteId
if not prev then
  outcome, seq, voteId = 0, string.format('%.0f', nowUs), ARGV[1]
  redis.call('HSET', KEYS[1], 'seq', seq, 'vote_id', voteId)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  voteId = redis.call('HGET', KEYS[1], 'vote_id')
  if ARGV[2] ~= '1' then return {1, prev, voteId} end
  outcome, seq = 2, string.format('%.0f', math.max(tonumber(prev) + 1, nowUs))
  redis.call('HSET', KEYS[1], 'seq', seq)
end

local crossed = {}
local members = {}
for i = 2, #KEYS, 2 do
  redis.call('ZADD', KEYS[i], nowMs, voteId)
  redis.call('PEXPIRE', KEYS[i], windowMs)
  -- Entries past the window are dropped only when the count could be over the limit: below it,
  -- stale entries cannot make a difference, and most votes skip the trim.
  local n = redis.call('ZCARD', KEYS[i])
  if n > limit then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', nowMs - windowMs)
    n = redis.call('ZCARD', KEYS[i])
  end
  if n > limit and redis.call('EXISTS', KEYS[i + 1]) == 0 then
    redis.call('SET', KEYS[i + 1], nowMs - windowMs, 'PX', windowMs)
    crossed[#crossed + 1] = (i - 2) / 2
    for _, m in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do members[#members + 1] = m end
  end
end
local out = {outcome, seq, voteId, flagged, nowMs, table.concat(crossed, ',')}
for _, m in ipairs(members) do out[#out + 1] = m end
return out
`;

/** Makes queued voters' claims permanent: KEYS the claims (one slot), ARGV[1] the TTL. */
const CONFIRM_CLAIMS = `
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[1]) end
return #KEYS
`;

/** Deletes a new voter's pending claim when its vote could not be queued (compare-and-delete). */
const RELEASE_CLAIM = `
if redis.call('HGET', KEYS[1], 'seq') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export type AdmitOutcome = 'new' | 'duplicate' | 'changed' | 'captcha';

export interface Admission {
  outcome: AdmitOutcome;
  seq: string;
  voteId: string;
  /** A watched prefix was already flagged when this vote came. */
  flaggedBefore: boolean;
  /** Redis server time of the admission, ms. */
  nowMs: number;
  /** Indexes (into the prefixes passed) of the prefixes this vote pushed over the limit. */
  crossed: number[];
  /** Vote ids in the windows that crossed, this one included. */
  windowVoteIds: string[];
}

interface AdmissionCommands {
  admitVote(numKeys: number, ...args: Array<string | number>): Promise<Array<string | number>>;
  releaseVoteClaim(key: string, seq: string): Promise<number>;
  confirmVoteClaims(numKeys: number, ...args: Array<string | number>): Promise<number>;
}

const OUTCOMES: AdmitOutcome[] = ['new', 'duplicate', 'changed', 'captcha'];

/** The Redis side of "one vote per voter" and of prefix velocity: admit, confirm, release. */
export function createVoteAdmission(redis: Redis, opts: { pendingTtlMs: number; windowMs: number; prefixLimit: number }) {
  redis.defineCommand('admitVote', { lua: ADMIT_VOTE });
  redis.defineCommand('releaseVoteClaim', { numberOfKeys: 1, lua: RELEASE_CLAIM });
  redis.defineCommand('confirmVoteClaims', { lua: CONFIRM_CLAIMS });
  const cmd = redis as unknown as AdmissionCommands;

  // A batch's votes are answered in the same tick: their claims are confirmed together, one
  // command per hash tag (a poll's keys share a slot) and TTL instead of one per vote.
  let toConfirm = new Map<string, { ttlMs: number; keys: string[] }>();
  const flushConfirms = () => {
    const groups = toConfirm;
    toConfirm = new Map();
    for (const { ttlMs, keys } of groups.values()) cmd.confirmVoteClaims(keys.length, ...keys, ttlMs).catch(() => {});
  };

  return {
    /** `prefixKeys`: [window, flag] per watched prefix, all in the voter key's slot. */
    async admit(voterKey: string, prefixKeys: Array<[string, string]>, voteId: string, allowChange: boolean, captchaNeededIfFlagged: boolean): Promise<Admission> {
      const keys = [voterKey, ...prefixKeys.flat()];
      const r = await cmd.admitVote(
        keys.length, ...keys,
        voteId, allowChange ? '1' : '0', opts.pendingTtlMs, opts.windowMs, opts.prefixLimit, captchaNeededIfFlagged ? '1' : '0',
      );
      return {
        outcome: OUTCOMES[Number(r[0])],
        seq: String(r[1] ?? ''),
        voteId: String(r[2] ?? ''),
        flaggedBefore: Number(r[3] ?? 0) === 1,
        nowMs: Number(r[4] ?? Date.now()),
        crossed: r[5] ? String(r[5]).split(',').map(Number) : [],
        windowVoteIds: r.slice(6).map(String),
      };
    },
    /**
     * Makes the claim last as long as the poll matters, once its vote is queued. Best effort:
     * should it fail, the pending claim lapses and the unique key in PostgreSQL still holds.
     */
    confirm(voterKey: string, ttlMs: number): void {
      const group = `${voterKey.slice(voterKey.indexOf('{'), voterKey.indexOf('}') + 1)}|${ttlMs}`;
      if (toConfirm.size === 0) setImmediate(flushConfirms);
      const pending = toConfirm.get(group);
      if (pending) pending.keys.push(voterKey);
      else toConfirm.set(group, { ttlMs, keys: [voterKey] });
    },
    release(voterKey: string, seq: string): Promise<unknown> {
      return cmd.releaseVoteClaim(voterKey, seq).catch(() => 0);
    },
  };
}
export type VoteAdmission = ReturnType<typeof createVoteAdmission>;
