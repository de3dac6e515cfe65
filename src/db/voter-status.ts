import type { Db } from './client.js';
import type { VoteStatus } from './schema.js';

/** The stored vote of one voter in a poll (its status and when it was last cast), or null. */
export async function findVoterVote(db: Db, pollId: number, voterKey: string): Promise<{ status: VoteStatus; accepted_at: Date } | null> {
  const row = await db.selectFrom('votes').select(['status', 'accepted_at']).where('poll_id', '=', pollId).where('voter_key', '=', voterKey).executeTakeFirst();
  return row ?? null;
}
