import type { RedisClient } from '../../shared/redis.js';
import {
  ADMIT_KEY_COUNT,
  ADMIT_VOTE,
  CONFIRM_CLAIMS,
  decodeAdmit,
  decodeWatch,
  encodeAdmit,
  encodeWatch,
  RELEASE_CLAIM,
  WATCH_KEY_COUNT,
  WATCH_PREFIXES,
  type AdmitArgs,
  type AdmitKeys,
  type Admission,
  type PrefixWatch,
} from './admission-scripts.js';

interface AdmissionCommands {
  admitVote(...args: Array<string | number>): Promise<unknown[]>;
  watchVotePrefixes(...args: Array<string | number>): Promise<unknown[]>;
  confirmVoteClaims(numKeys: number, ...args: Array<string | number>): Promise<number>;
  releaseVoteClaim(claim: string, pending: string, ipVotes: string, voteId: string, seq: string, isNew: string): Promise<number>;
}

/**
 * The Redis side of "one vote per voter", the per-address limits and prefix velocity: admit,
 * confirm, release. Confirmations go in groups on `batchClient`, a client without
 * auto-pipelining: a script with a variable key count is routed by its key count, not a key,
 * by ioredis's auto-pipelining on a cluster.
 */
export function createVoteAdmission(redis: RedisClient, batchClient: RedisClient) {
  // Fixed key counts: an auto-pipelined script is routed by its first key, which must be a real one.
  redis.defineCommand('admitVote', { numberOfKeys: ADMIT_KEY_COUNT, lua: ADMIT_VOTE });
  redis.defineCommand('watchVotePrefixes', { numberOfKeys: WATCH_KEY_COUNT, lua: WATCH_PREFIXES });
  batchClient.defineCommand('confirmVoteClaims', { lua: CONFIRM_CLAIMS });
  redis.defineCommand('releaseVoteClaim', { numberOfKeys: 3, lua: RELEASE_CLAIM });
  const cmd = redis as unknown as AdmissionCommands;
  const batch = batchClient as unknown as AdmissionCommands;

  // A batch's votes are answered in the same tick: their claims are confirmed together, one
  // command per partition's pending set (one slot) and TTL instead of one per vote.
  let toConfirm = new Map<string, { pending: string; ttlMs: number; claims: string[]; entries: string[] }>();
  const flushConfirms = () => {
    const groups = toConfirm;
    toConfirm = new Map();
    for (const g of groups.values()) batch.confirmVoteClaims(1 + g.claims.length, g.pending, ...g.claims, g.ttlMs, ...g.entries).catch(() => {});
  };

  return {
    /** One round trip: close, end time, claim, address limits, flagged prefixes, view token, windows. */
    async admit(keys: AdmitKeys, args: AdmitArgs): Promise<Admission> {
      return decodeAdmit(await cmd.admitVote(...encodeAdmit(keys, args)));
    },
    /** The velocity windows of a signed-in vote (their prefixes live in another partition than the user's claim). */
    async watch(prefixes: Array<[string, string]>, args: Parameters<typeof encodeWatch>[1]): Promise<PrefixWatch> {
      return decodeWatch(await cmd.watchVotePrefixes(...encodeWatch(prefixes, args)));
    },
    /**
     * Makes the claim last as long as the poll matters, once its vote is queued. Best effort:
     * should it fail, the pending claim lapses within seconds and the unique key in PostgreSQL
     * still holds.
     */
    confirm(keys: Pick<AdmitKeys, 'claim' | 'pending'>, ttlMs: number, voteId: string, seq: string): void {
      if (toConfirm.size === 0) setImmediate(flushConfirms);
      const group = `${keys.pending}|${ttlMs}`;
      let g = toConfirm.get(group);
      if (!g) toConfirm.set(group, (g = { pending: keys.pending, ttlMs, claims: [], entries: [] }));
      g.claims.push(keys.claim);
      g.entries.push(`${voteId}:${seq}`);
    },
    /** Undoes an admission whose vote could not be queued; a failure leaves the pending claim to lapse. */
    release(keys: Pick<AdmitKeys, 'claim' | 'pending' | 'ipVotes'>, voteId: string, seq: string, isNew: boolean): Promise<unknown> {
      return cmd.releaseVoteClaim(keys.claim, keys.pending, keys.ipVotes, voteId, seq, isNew ? '1' : '0').catch(() => 0);
    },
  };
}
export type VoteAdmission = ReturnType<typeof createVoteAdmission>;
