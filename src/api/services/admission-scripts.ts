/**
 * The Lua scripts of vote admission with one typed encoder and decoder each: the scripts take
 * and return positional arrays, and only this file knows the positions. Every script declares a
 * fixed number of keys, all in one partition's hash tag (Redis Cluster, auto-pipelining).
 */

/** Watched address prefixes per vote: IPv4 has one (/24), IPv6 two (/64, /48). */
export const MAX_PREFIXES = 2;

/**
 * One atomic step per vote in the voter's partition:
 *  1. the poll's close (a flag set by the close) and end time, on Redis's clock;
 *  2. the voter's claim: a claim still pending (its request may have died) answers "pending";
 *     a confirmed one answers "duplicate", or where votes may change, takes a higher seq;
 *  3. the address's votes this hour: past the hard cap "rate limited", past the soft threshold
 *     a solved CAPTCHA is needed ("step up"); neither uses a point;
 *  4. a watched prefix flagged for velocity needs a solved CAPTCHA where the poll asks one;
 *  5. the view token's nonce is spent (one vote per token);
 *  6. the claim is written (a new one pending, in the partition's pending set until confirmed),
 *     the address gets a point, and the vote joins each prefix's sliding window; a window over
 *     its limit flags the prefix and returns the window's vote ids for the flagging job.
 * seq = max(previous + 1, server µs), so it keeps moving forward even if the claim is lost.
 */
export const ADMIT_VOTE = `
local t = redis.call('TIME')
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowMs = math.floor(nowUs / 1000)
local voteId, allowChange, pendingMs = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local windowMs, prefixLimit, solved = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local captchaIfFlagged, ipSoft, ipHard, ipWindowMs = ARGV[7] == '1', tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local endMs, tokenMs, tokenRequired, prefixCount = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13] == '1', tonumber(ARGV[14])

if redis.call('EXISTS', KEYS[3]) == 1 then return {5} end
if endMs > 0 and nowMs >= endMs then return {6} end

local claim = redis.call('HMGET', KEYS[1], 'seq', 'vote_id', 'st')
if claim[1] then
  if claim[3] == 'p' then return {4, redis.call('PTTL', KEYS[1])} end
  if not allowChange then return {1, claim[1], claim[2]} end
end

local points = 0
if ipHard > 0 then
  points = tonumber(redis.call('GET', KEYS[4]) or '0')
  if points >= ipHard then return {7, redis.call('PTTL', KEYS[4])} end
  if points >= ipSoft and not solved then return {8} end
end

local flagged = 0
for i = 1, prefixCount do
  if redis.call('EXISTS', KEYS[5 + 2 * i]) == 1 then flagged = 1 end
end
if flagged == 1 and captchaIfFlagged and not solved then return {3} end

local tokenFresh = 0
if tokenMs > 0 and redis.call('SET', KEYS[5], '1', 'NX', 'PX', tokenMs) then tokenFresh = 1 end
if tokenRequired and tokenFresh == 0 then return {9} end

local outcome, seq
if not claim[1] then
  outcome, seq = 0, string.format('%.0f', nowUs)
  redis.call('HSET', KEYS[1], 'seq', seq, 'vote_id', voteId, 'st', 'p')
  redis.call('PEXPIRE', KEYS[1], pendingMs)
else
  outcome, seq, voteId = 2, string.format('%.0f', math.max(tonumber(claim[1]) + 1, nowUs)), claim[2]
  redis.call('HSET', KEYS[1], 'seq', seq)
end
-- Stale entries (their API died) lapse here, so the set holds only votes being queued now.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowMs)
redis.call('ZADD', KEYS[2], nowMs + pendingMs, voteId .. ':' .. seq)
redis.call('PEXPIRE', KEYS[2], pendingMs * 2)
if ipHard > 0 then
  if redis.call('INCR', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], ipWindowMs) end
end

local crossed, members = {}, {}
for i = 1, prefixCount do
  local win, flag = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  redis.call('ZADD', win, nowMs, voteId)
  redis.call('PEXPIRE', win, windowMs)
  -- Entries past the window are dropped only when the count could be over the limit: below it,
  -- stale entries cannot make a difference, and most votes skip the trim.
  local n = redis.call('ZCARD', win)
  if n > prefixLimit then
    redis.call('ZREMRANGEBYSCORE', win, '-inf', nowMs - windowMs)
    n = redis.call('ZCARD', win)
  end
  if n > prefixLimit and redis.call('EXISTS', flag) == 0 then
    redis.call('SET', flag, nowMs - windowMs, 'PX', windowMs)
    crossed[#crossed + 1] = i - 1
    for _, m in ipairs(redis.call('ZRANGE', win, 0, -1)) do members[#members + 1] = m end
  end
end
local out = {outcome, seq, voteId, flagged, nowMs, tokenFresh, table.concat(crossed, ',')}
for _, m in ipairs(members) do out[#out + 1] = m end
return out
`;

/** The velocity windows alone, for a signed-in voter whose claim lives in their user's partition. */
export const WATCH_PREFIXES = `
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local voteId, windowMs, prefixLimit, prefixCount = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local captchaIfFlagged = ARGV[5] == '1'
local flagged = 0
for i = 1, prefixCount do
  if redis.call('EXISTS', KEYS[2 * i]) == 1 then flagged = 1 end
end
if flagged == 1 and captchaIfFlagged then return {3} end
local crossed, members = {}, {}
for i = 1, prefixCount do
  local win, flag = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZADD', win, nowMs, voteId)
  redis.call('PEXPIRE', win, windowMs)
  local n = redis.call('ZCARD', win)
  if n > prefixLimit then
    redis.call('ZREMRANGEBYSCORE', win, '-inf', nowMs - windowMs)
    n = redis.call('ZCARD', win)
  end
  if n > prefixLimit and redis.call('EXISTS', flag) == 0 then
    redis.call('SET', flag, nowMs - windowMs, 'PX', windowMs)
    crossed[#crossed + 1] = i - 1
    for _, m in ipairs(redis.call('ZRANGE', win, 0, -1)) do members[#members + 1] = m end
  end
end
local out = {0, flagged, table.concat(crossed, ',')}
for _, m in ipairs(members) do out[#out + 1] = m end
return out
`;

/**
 * Makes queued voters' claims last (KEYS the partition's pending set, then the claims; ARGV the
 * ttl, then each claim's `voteId:seq` pending entry): only a claim still at that seq, so a claim
 * that lapsed and was taken again is left alone.
 */
export const CONFIRM_CLAIMS = `
for i = 2, #KEYS do
  local entry = ARGV[i]
  redis.call('ZREM', KEYS[1], entry)
  if redis.call('HGET', KEYS[i], 'seq') == string.match(entry, ':(%d+)$') then
    redis.call('HSET', KEYS[i], 'st', 'c')
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return #KEYS - 1
`;

/**
 * Undoes an admission whose vote could not be queued (KEYS claim, pending set, address points;
 * ARGV vote id, seq, new 0/1): a new voter's pending claim is deleted (compare-and-delete), the
 * address gets its point back.
 */
export const RELEASE_CLAIM = `
redis.call('ZREM', KEYS[2], ARGV[1] .. ':' .. ARGV[2])
if redis.call('GET', KEYS[3]) and tonumber(redis.call('GET', KEYS[3])) > 0 then redis.call('DECR', KEYS[3]) end
if ARGV[3] == '1' and redis.call('HGET', KEYS[1], 'seq') == ARGV[2] then redis.call('DEL', KEYS[1]) end
return 1
`;

/** The keys of one admission, all in the voter's partition. */
export interface AdmitKeys {
  claim: string;
  pending: string;
  closed: string;
  ipVotes: string;
  viewToken: string;
  /** [window, flag] per watched prefix (at most MAX_PREFIXES). */
  prefixes: Array<[string, string]>;
}

export interface AdmitArgs {
  voteId: string;
  allowChange: boolean;
  pendingTtlMs: number;
  windowMs: number;
  prefixLimit: number;
  captchaSolved: boolean;
  captchaIfFlagged: boolean;
  /** Per-address votes per hour: a solved CAPTCHA past `ipSoft`, refused past `ipHard`; 0 = no limit. */
  ipSoft: number;
  ipHard: number;
  ipWindowMs: number;
  /** The poll's end (ms), 0 = none. */
  endMs: number;
  /** How long a spent view token is remembered (its remaining life), 0 = no token to spend. */
  viewTokenTtlMs: number;
  viewTokenRequired: boolean;
}

/** ADMIT_VOTE's keys and arguments in script order. */
export function encodeAdmit(k: AdmitKeys, a: AdmitArgs): Array<string | number> {
  if (k.prefixes.length > MAX_PREFIXES) throw new Error(`at most ${MAX_PREFIXES} watched prefixes`);
  // Unused prefix slots repeat the claim key (same slot, never read): the key count stays fixed.
  const pairs = [...k.prefixes.flat(), ...Array(2 * (MAX_PREFIXES - k.prefixes.length)).fill(k.claim)];
  return [
    k.claim,
    k.pending,
    k.closed,
    k.ipVotes,
    k.viewToken,
    ...pairs,
    a.voteId,
    a.allowChange ? '1' : '0',
    a.pendingTtlMs,
    a.windowMs,
    a.prefixLimit,
    a.captchaSolved ? '1' : '0',
    a.captchaIfFlagged ? '1' : '0',
    a.ipSoft,
    a.ipHard,
    a.ipWindowMs,
    a.endMs,
    a.viewTokenTtlMs,
    a.viewTokenRequired ? '1' : '0',
    k.prefixes.length,
  ];
}
export const ADMIT_KEY_COUNT = 5 + 2 * MAX_PREFIXES;

/** What the admission decided. */
export type Admission =
  | {
      outcome: 'new' | 'changed';
      seq: string;
      voteId: string;
      /** A watched prefix was already flagged when this vote came. */
      flaggedBefore: boolean;
      /** Redis server time of the admission, ms. */
      nowMs: number;
      viewTokenFresh: boolean;
      /** Indexes (into the prefixes passed) of the prefixes this vote pushed over the limit. */
      crossed: number[];
      /** Vote ids in the windows that crossed, this one included. */
      windowVoteIds: string[];
    }
  | { outcome: 'duplicate'; seq: string; voteId: string }
  | { outcome: 'pending' | 'rate_limited'; retryMs: number }
  | { outcome: 'captcha_flagged' | 'captcha_step_up' | 'closed' | 'expired' | 'view_token' };

const num = (v: unknown) => Number(v ?? 0);

/** Decodes ADMIT_VOTE's reply. */
export function decodeAdmit(r: unknown[]): Admission {
  switch (num(r[0])) {
    case 0:
    case 2:
      return {
        outcome: num(r[0]) === 0 ? 'new' : 'changed',
        seq: String(r[1]),
        voteId: String(r[2]),
        flaggedBefore: num(r[3]) === 1,
        nowMs: num(r[4]),
        viewTokenFresh: num(r[5]) === 1,
        crossed: r[6] ? String(r[6]).split(',').map(Number) : [],
        windowVoteIds: r.slice(7).map(String),
      };
    case 1:
      return { outcome: 'duplicate', seq: String(r[1]), voteId: String(r[2]) };
    case 3:
      return { outcome: 'captcha_flagged' };
    case 4:
      return { outcome: 'pending', retryMs: Math.max(0, num(r[1])) };
    case 5:
      return { outcome: 'closed' };
    case 6:
      return { outcome: 'expired' };
    case 7:
      return { outcome: 'rate_limited', retryMs: Math.max(0, num(r[1])) };
    case 8:
      return { outcome: 'captcha_step_up' };
    case 9:
      return { outcome: 'view_token' };
    default:
      throw new Error(`unexpected admission reply ${JSON.stringify(r)}`);
  }
}

/** WATCH_PREFIXES's keys and arguments in script order. */
export function encodeWatch(prefixes: Array<[string, string]>, a: { voteId: string; windowMs: number; prefixLimit: number; captchaIfFlagged: boolean }) {
  if (prefixes.length === 0 || prefixes.length > MAX_PREFIXES) throw new Error(`1 to ${MAX_PREFIXES} watched prefixes`);
  const pairs = [...prefixes.flat(), ...Array(2 * (MAX_PREFIXES - prefixes.length)).fill(prefixes[0][0])];
  return [...pairs, a.voteId, a.windowMs, a.prefixLimit, prefixes.length, a.captchaIfFlagged ? '1' : '0'];
}
export const WATCH_KEY_COUNT = 2 * MAX_PREFIXES;

/** What the windows of a signed-in vote said. */
export type PrefixWatch = { outcome: 'captcha_flagged' } | { outcome: 'watched'; flaggedBefore: boolean; crossed: number[]; windowVoteIds: string[] };

/** Decodes WATCH_PREFIXES's reply. */
export function decodeWatch(r: unknown[]): PrefixWatch {
  if (num(r[0]) === 3) return { outcome: 'captcha_flagged' };
  return {
    outcome: 'watched',
    flaggedBefore: num(r[1]) === 1,
    crossed: r[2] ? String(r[2]).split(',').map(Number) : [],
    windowVoteIds: r.slice(3).map(String),
  };
}
