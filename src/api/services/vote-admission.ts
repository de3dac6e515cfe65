import type { RedisClient } from '../../shared/redis.js';
import {
  ADMIT_KEY_COUNT,
  ADMIT_VOTE,
  CONFIRM_CLAIM,
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
  confirmVoteClaim(claim: string, pending: string, ttlMs: number, voteId: string, seq: string): Promise<number>;
  releaseVoteClaim(claim: string, pending: string, ipVotes: string, voteId: string, seq: string, isNew: string): Promise<number>;
}

/** The Redis side of "one vote per voter", the per-address limits and prefix velocity: admit, confirm, release. */
export function createVoteAdmission(redis: RedisClient) {
  // Fixed key counts: an auto-pipelined script is routed by its first key, which must be a real one.
  redis.defineCommand('admitVote', { numberOfKeys: ADMIT_KEY_COUNT, lua: ADMIT_VOTE });
  redis.defineCommand('watchVotePrefixes', { numberOfKeys: WATCH_KEY_COUNT, lua: WATCH_PREFIXES });
  redis.defineCommand('confirmVoteClaim', { numberOfKeys: 2, lua: CONFIRM_CLAIM });
  redis.defineCommand('releaseVoteClaim', { numberOfKeys: 3, lua: RELEASE_CLAIM });
  const cmd = redis as unknown as AdmissionCommands;

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
      cmd.confirmVoteClaim(keys.claim, keys.pending, ttlMs, voteId, seq).catch(() => {});
    },
    /** Undoes an admission whose vote could not be queued; a failure leaves the pending claim to lapse. */
    release(keys: Pick<AdmitKeys, 'claim' | 'pending' | 'ipVotes'>, voteId: string, seq: string, isNew: boolean): Promise<unknown> {
      return cmd.releaseVoteClaim(keys.claim, keys.pending, keys.ipVotes, voteId, seq, isNew ? '1' : '0').catch(() => 0);
    },
  };
}
export type VoteAdmission = ReturnType<typeof createVoteAdmission>;
