import { timingSafeEqual } from 'node:crypto';
import { authRequired, forbidden, pollNotFound, resultsHidden } from '../shared/errors.js';

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

/**
 * Decides whether a caller may read (and so vote on or watch) a poll; throws the contract's
 * error otherwise. A DRAFT exists only for its creator and admins, and a PRIVATE poll without
 * its key looks absent too: both are 404, like an id never used, so ids reveal nothing. The
 * creator voting on their own draft gets POLL_NOT_ACTIVE from the vote rules.
 */
export function assertCanReadPoll(poll: PollAccessFacts, caller: Caller | null, key: string | undefined): void {
  const privileged = caller !== null && (caller.userId === poll.creator_id || caller.isAdmin);
  if (privileged) return;
  if (poll.status === 'DRAFT') throw pollNotFound();
  if (poll.visibility === 'PRIVATE' && (!key || !poll.access_key || !timingSafeEqualStrings(key, poll.access_key))) {
    throw pollNotFound();
  }
  if (poll.visibility === 'ORGANIZATION') {
    if (!caller) throw authRequired('This poll is for members of an organization: sign in');
    if (caller.orgId === null || caller.orgId !== poll.org_id) throw forbidden('This poll is for members of another organization');
  }
}

/** Results hidden until close are shown only to the poll's creator. */
export function assertCanSeeResults(poll: PollAccessFacts, caller: Caller | null): void {
  if (poll.show_results_before_close || poll.status === 'CLOSED') return;
  if (caller !== null && caller.userId === poll.creator_id) return;
  throw resultsHidden();
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
