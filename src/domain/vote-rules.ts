import { FLAG_REASONS } from './flag-reasons.js';

const DAY_MS = 86_400_000;
/** A confirmed claim lasts at least this long (longer for a poll that ends later). */
export const CLAIM_MIN_MS = 90 * DAY_MS;

/** The fields of a poll that decide when it takes votes. */
export interface VotingWindowFacts {
  status: 'DRAFT' | 'ACTIVE' | 'CLOSED';
  start_time: Date | null;
  end_time: Date | null;
}

/** Why a poll takes no vote now; null when it does. */
export type WindowRefusal = 'DRAFT' | 'EXPIRED' | 'CLOSED' | 'NOT_STARTED';

/** Whether a poll takes votes at `now`. Past end_time is EXPIRED even once the automatic close has run. */
export function votingWindowRefusal(poll: VotingWindowFacts, now: number): WindowRefusal | null {
  if (poll.status === 'DRAFT') return 'DRAFT';
  if (poll.end_time && now >= poll.end_time.getTime()) return 'EXPIRED';
  if (poll.status === 'CLOSED') return 'CLOSED';
  if (poll.start_time && now < poll.start_time.getTime()) return 'NOT_STARTED';
  return null;
}

/**
 * How long a confirmed claim is kept: a week past the poll's end, at least CLAIM_MIN_MS; in
 * whole minutes, so that the claims of one batch share one TTL.
 */
export function claimLifetimeMs(endTime: Date | null, now: number): number {
  return Math.ceil(Math.max((endTime ? endTime.getTime() - now : 0) + 7 * DAY_MS, CLAIM_MIN_MS) / 60_000) * 60_000;
}

/**
 * Whether a "new" voter's claim may just have lapsed: only on a poll open longer than a claim
 * lasts. Hot polls are young, so the stored votes are asked only far from any viral burst.
 */
export function claimMayHaveLapsed(openedAt: Date, now: number): boolean {
  return now - openedAt.getTime() > CLAIM_MIN_MS - DAY_MS;
}

/** The reasons a vote is held for review (SUSPICIOUS): its prefix's velocity, or a view-to-vote time below the minimum. */
export function flagReasonsOf(v: { prefixFlagged: boolean; responseMs: number | null; minResponseMs: number }): string[] {
  const reasons: string[] = [];
  if (v.prefixFlagged) reasons.push(FLAG_REASONS.velocity);
  if (v.responseMs !== null && v.responseMs < v.minResponseMs) reasons.push(FLAG_REASONS.tooFast);
  return reasons;
}
