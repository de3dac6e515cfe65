import calculateSlot from 'cluster-key-slot';

const SLOTS = 16384;
let slotTags: string[] | null = null;

/**
 * A short string whose hash tag lands on `slot`. Built once (about 160k CRC16s): with it a
 * poll's partitions and the vote queues are placed evenly around the slot ring, so the masters of
 * a cluster (which own contiguous slot ranges) share them evenly instead of by chance.
 */
function slotTag(slot: number): string {
  if (!slotTags) {
    const tags: string[] = new Array(SLOTS);
    let filled = 0;
    for (let i = 0; filled < SLOTS; i++) {
      const s = i.toString(36);
      const at = calculateSlot(s);
      if (tags[at] === undefined) {
        tags[at] = s;
        filled++;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot];
}

/** `count` tags evenly spaced from `offset`: partition i of n gets the i-th. */
function spreadTags(offset: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => slotTag((offset + Math.floor(((i + 0.5) * SLOTS) / count)) % SLOTS));
}

const pollTags = new Map<string, string[]>();

/**
 * The hash tags of a poll's partitions. Each poll starts at its own point of the ring, so two
 * polls' partition 0 do not pile onto one master.
 */
export function partitionTags(pollId: number, partitions: number): string[] {
  const memo = `${pollId}/${partitions}`;
  let tags = pollTags.get(memo);
  if (!tags) {
    if (pollTags.size >= 10_000) pollTags.clear();
    pollTags.set(memo, (tags = spreadTags(calculateSlot(String(pollId)), partitions)));
  }
  return tags;
}

/**
 * The partition of a voter, from what identifies them to the velocity rules: a signed-in user's
 * id, an anonymous voter's widest watched address prefix (so their claim, their address's limit
 * and their prefix windows share one slot and one script call).
 */
export function partitionOf(routingKey: string, partitions: number): number {
  return partitions <= 1 ? 0 : calculateSlot(routingKey) % partitions;
}

/** The vote queue of a poll's partition: partition p of every poll goes to queue p mod the queue count. */
export const voteQueueOf = (partition: number, queues: number) => partition % queues;

/**
 * Every Redis key and channel name in one place. Keys one script touches share a hash tag, and
 * a tag is as narrow as that script needs: a poll's per-voter keys carry its partition's tag
 * (`{tag}` from partitionTags), so one hot poll spreads over every master of a cluster.
 */
export function redisKeys(namespace: string) {
  const ns = namespace ? `${namespace}:` : '';
  return {
    /** BullMQ prefix of one queue: a hash tag of its own, so queues spread over the masters. */
    queuePrefix: (queue: string) => `${ns}{${queue}}`,
    /** Name and BullMQ prefix of vote queue `q` of `count`: their tags evenly spaced around the ring. */
    voteQueue: (q: number, count: number) => ({ name: `vote-ingest-${q}`, prefix: `${ns}{${spreadTags(0, count)[q]}}` }),
    /** Who commits vote queue `name` (a lease held by one worker process at a time). */
    committerLease: (prefix: string, name: string) => `${prefix}:${name}:committer`,
    /** Worker processes alive (sorted set by heartbeat): how many share the vote queues. */
    liveCommitters: `${ns}{committers}:live`,
    /** Dedup claim of one voter in one poll (hash: seq, vote_id, st = p pending / c confirmed). */
    voter: (tag: string, pollId: number, voterKey: string) => `${ns}vote:{${tag}}:${pollId}:${voterKey}`,
    /** Claims of a poll partition not yet confirmed (sorted set: vote id by expiry): the close waits for them. */
    pendingClaims: (tag: string, pollId: number) => `${ns}pending:{${tag}}:${pollId}`,
    /** Set once a poll's voting closed: admissions in this partition refuse from then on. */
    pollClosed: (tag: string, pollId: number) => `${ns}closed:{${tag}}:${pollId}`,
    /** Votes of one address in one poll this hour (the per-IP step-up and cap). */
    ipVotes: (tag: string, pollId: number, limitKey: string) => `${ns}ipvotes:{${tag}}:${pollId}:${limitKey}`,
    /** Sliding window (sorted set of vote ids by time) of one address prefix in one poll. */
    prefixWindow: (tag: string, pollId: number, prefix: string) => `${ns}ipwin:{${tag}}:${pollId}:${prefix}`,
    /** Set while a prefix is flagged for velocity; holds the start of the offending window (ms). */
    prefixFlag: (tag: string, pollId: number, prefix: string) => `${ns}ipflag:{${tag}}:${pollId}:${prefix}`,
    /** A view token that admitted a vote (one vote per token). */
    viewTokenUsed: (tag: string, pollId: number, nonce: string) => `${ns}vt:{${tag}}:${pollId}:${nonce}`,
    /** Sharded pub/sub channel carrying a poll's new counts after each committed batch. */
    pollUpdates: (pollId: number) => `${ns}poll:{${pollId}}:update`,
    /** A redeemed CAPTCHA solution, kept until its challenge expires. */
    captchaUsed: (signature: string) => `${ns}captcha:used:${signature}`,
    /** Sharded pub/sub channel telling API processes and gateways that a poll changed. */
    pollInvalidations: `${ns}{polls}:invalidate`,
    /** HyperLogLog of the distinct viewers of an open poll (analytics completion rate). */
    views: (pollId: number) => `${ns}views:{${pollId}}`,
    /** Sorted set of one caller's running CSV exports (member: export id, score: when its slot lapses, ms). */
    exportSlots: (userId: number) => `${ns}exports:{u${userId}}`,
    /** rate-limiter-flexible prefix of polls created per user; each user's counter hashes to its own slot. */
    pollCreations: `${ns}creations`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;
