import { timingSafeEqual } from 'node:crypto';
import { AppError, type Refusal } from '../shared/errors.js';

/** The fields of a poll that decide who may see it. */
export interface PollAccessFacts {
  status: 'DRAFT' | 'ACTIVE' | 'CLOSED';
  visibility: 'PUBLIC' | 'PRIVATE' | 'ORGANIZATION';
  creator_id: number;
  org_id: number | null;
  access_key: string | null;
  show_results_before_close: boolean;
}

/** The caller as far as access rules care. */
export interface Caller {
  userId: number;
  orgId: number | null;
  isAdmin: boolean;
}

const NOT_FOUND: Refusal<'POLL_NOT_FOUND'> = { code: 'POLL_NOT_FOUND', message: 'No such poll' };

/**
 * Whether a caller may read (and so vote on or watch) a poll: null, or the refusal. A DRAFT
 * exists only for its creator and admins, and a PRIVATE poll without its key looks absent too:
 * both are POLL_NOT_FOUND, like an id never used, so ids reveal nothing. The creator voting on
 * their own draft gets POLL_NOT_ACTIVE from the vote rules.
 */
export function readRefusal(
  poll: PollAccessFacts,
  caller: Caller | null,
  key: string | undefined,
): Refusal<'POLL_NOT_FOUND' | 'AUTH_REQUIRED' | 'FORBIDDEN'> | null {
  const privileged = caller !== null && (caller.userId === poll.creator_id || caller.isAdmin);
  if (privileged) return null;
  if (poll.status === 'DRAFT') return NOT_FOUND;
  if (poll.visibility === 'PRIVATE' && (!key || !poll.access_key || !timingSafeEqualStrings(key, poll.access_key))) return NOT_FOUND;
  if (poll.visibility === 'ORGANIZATION') {
    if (!caller) return { code: 'AUTH_REQUIRED', message: 'This poll is for members of an organization: sign in' };
    if (caller.orgId === null || caller.orgId !== poll.org_id) return { code: 'FORBIDDEN', message: 'This poll is for members of another organization' };
  }
  return null;
}

/** Results hidden until close are shown only to the poll's creator. */
export function resultsRefusal(poll: PollAccessFacts, caller: Caller | null): Refusal<'RESULTS_HIDDEN'> | null {
  if (poll.show_results_before_close || poll.status === 'CLOSED') return null;
  if (caller !== null && caller.userId === poll.creator_id) return null;
  return { code: 'RESULTS_HIDDEN', message: 'Results of this poll are hidden until it closes' };
}

/** `readRefusal` for request handlers: throws the refusal as the contract's error. */
export function assertCanReadPoll(poll: PollAccessFacts, caller: Caller | null, key: string | undefined): void {
  const refusal = readRefusal(poll, caller, key);
  if (refusal) throw AppError.of(refusal);
}

/** `resultsRefusal` for request handlers. */
export function assertCanSeeResults(poll: PollAccessFacts, caller: Caller | null): void {
  const refusal = resultsRefusal(poll, caller);
  if (refusal) throw AppError.of(refusal);
}

/** Creator or admin: who may manage a poll. */
export function isPollManager(poll: { creator_id: number }, caller: Caller | null): boolean {
  return caller !== null && (caller.userId === poll.creator_id || caller.isAdmin);
}

function timingSafeEqualStrings(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
