/**
 * Every Redis key and channel name in one place. Per-poll names carry the poll id in a
 * hash tag ({7}) so that all of a poll's keys live in one Redis Cluster slot and one Lua
 * script may touch them together.
 */
export function redisKeys(namespace: string) {
  const ns = namespace ? `${namespace}:` : '';
  return {
    /** BullMQ prefix: one hash tag so every queue key shares a slot. */
    queuePrefix: `{${ns}polls}`,
    /** Dedup claim of one voter in one poll (hash: seq, vote_id). */
    voter: (pollId: number, voterKey: string) => `${ns}vote:{${pollId}}:voter:${voterKey}`,
    /** Pub/sub channel carrying a poll's new counts after each committed batch. */
    pollUpdates: (pollId: number) => `${ns}poll:{${pollId}}:update`,
    /** Pattern matching every poll's update channel. */
    pollUpdatesPattern: `${ns}poll:{*}:update`,
    /** rate-limiter-flexible key prefix of the per-IP limit; its keys are `{poll}:address`. */
    ipLimitPrefix: `${ns}iplimit`,
    /** Sliding window (sorted set of vote ids by time) of one address prefix in one poll. */
    prefixWindow: (pollId: number, prefix: string) => `${ns}ipwin:{${pollId}}:${prefix}`,
    /** Set while a prefix is flagged for velocity; holds the start of the offending window (ms). */
    prefixFlag: (pollId: number, prefix: string) => `${ns}ipflag:{${pollId}}:${prefix}`,
    /** A redeemed CAPTCHA solution, kept until its challenge expires. */
    captchaUsed: (signature: string) => `${ns}captcha:used:${signature}`,
    /** Broadcast channel telling API processes to drop a cached poll. */
    pollInvalidations: `${ns}polls:invalidate`,
    /** HyperLogLog of the distinct viewers of an open poll (analytics completion rate). */
    views: (pollId: number) => `${ns}views:{${pollId}}`,
    /** Sorted set of one caller's running CSV exports (member: export id, score: when its slot lapses, ms). */
    exportSlots: (userId: number) => `${ns}exports:{u${userId}}`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;
