import { sql } from 'kysely';
import type { Db } from './client.js';
import type { PollOptionRow, PollRow, PollSettings, PollStatus, PollType, Visibility } from './schema.js';

export interface PollWithOptions {
  poll: PollRow;
  options: PollOptionRow[];
}

export interface NewPollInput {
  creator_id: number;
  org_id: number | null;
  question: string;
  poll_type: PollType;
  status: PollStatus;
  is_anonymous: boolean;
  allow_change_vote: boolean;
  visibility: Visibility;
  access_key: string | null;
  start_time: Date | null;
  end_time: Date | null;
  settings: PollSettings;
  tiebreak_seed: string;
  /** How many partitions the poll's voters are split into. */
  partitions: number;
}

export interface OptionInput {
  text: string;
  image_url: string | null;
}

/** Inserts a poll with its options and its zeroed counters. */
export async function insertPoll(trx: Db, input: NewPollInput, options: OptionInput[]): Promise<PollWithOptions> {
  const poll = await trx
    .insertInto('polls')
    .values({
      ...input,
      settings: JSON.stringify(input.settings),
      published_at: input.status === 'ACTIVE' ? new Date() : null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await trx.insertInto('poll_tallies').values({ poll_id: poll.poll_id }).execute();
  return { poll, options: await replaceOptions(trx, poll.poll_id, options) };
}

/** Replaces a draft poll's options (and their zero counters). */
export async function replaceOptions(trx: Db, pollId: number, options: OptionInput[]): Promise<PollOptionRow[]> {
  await trx.deleteFrom('poll_options').where('poll_id', '=', pollId).execute();
  const rows = await trx
    .insertInto('poll_options')
    .values(options.map((o, i) => ({ poll_id: pollId, text: o.text, image_url: o.image_url, display_order: i })))
    .returningAll()
    .execute();
  await trx
    .insertInto('vote_results')
    .values(rows.map((o) => ({ poll_id: pollId, option_id: o.option_id })))
    .execute();
  return rows;
}

/** A poll and its options in display order, or null. */
export async function findPoll(db: Db, pollId: number, opts: { forUpdate?: boolean } = {}): Promise<PollWithOptions | null> {
  let q = db.selectFrom('polls').selectAll().where('poll_id', '=', pollId);
  if (opts.forUpdate) q = q.forUpdate();
  const poll = await q.executeTakeFirst();
  if (!poll) return null;
  const options = await db.selectFrom('poll_options').selectAll().where('poll_id', '=', pollId).orderBy('display_order').orderBy('option_id').execute();
  return { poll, options };
}

/** Attaches options to many polls with one query. */
export async function withOptions(db: Db, polls: PollRow[]): Promise<PollWithOptions[]> {
  if (polls.length === 0) return [];
  const options = await db
    .selectFrom('poll_options')
    .selectAll()
    .where(
      'poll_id',
      'in',
      polls.map((p) => p.poll_id),
    )
    .orderBy('poll_id')
    .orderBy('display_order')
    .orderBy('option_id')
    .execute();
  return polls.map((poll) => ({ poll, options: options.filter((o) => o.poll_id === poll.poll_id) }));
}

/** One page of polls, newest first, after the cursor's poll id. */
export async function listPolls(db: Db, filter: { creatorId?: number; status?: PollStatus; before?: number; limit: number }): Promise<PollRow[]> {
  let q = db.selectFrom('polls').selectAll().orderBy('poll_id', 'desc').limit(filter.limit);
  if (filter.creatorId !== undefined) q = q.where('creator_id', '=', filter.creatorId);
  else q = q.where('visibility', '=', 'PUBLIC').where('status', '!=', 'DRAFT');
  if (filter.status) q = q.where('status', '=', filter.status);
  if (filter.before !== undefined) q = q.where('poll_id', '<', filter.before);
  return q.execute();
}

/** Updates the given columns of a poll. */
export async function updatePoll(
  trx: Db,
  pollId: number,
  patch: Partial<Omit<NewPollInput, 'settings' | 'partitions'>> & { settings?: PollSettings },
): Promise<PollRow> {
  const { settings, ...rest } = patch;
  return trx
    .updateTable('polls')
    .set({ ...rest, ...(settings ? { settings: JSON.stringify(settings) } : {}), updated_at: sql`now()` })
    .where('poll_id', '=', pollId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Moves a poll from one status to another; null when it was not in `from`. */
export async function transitionPoll(trx: Db, pollId: number, from: PollStatus[], to: PollStatus): Promise<PollRow | null> {
  const row = await trx
    .updateTable('polls')
    .set({
      status: to,
      updated_at: sql`now()`,
      ...(to === 'ACTIVE' ? { published_at: sql`now()` } : {}),
      ...(to === 'CLOSED' ? { closed_at: sql`now()` } : {}),
    })
    .where('poll_id', '=', pollId)
    .where('status', 'in', from)
    .returningAll()
    .executeTakeFirst();
  return row ?? null;
}

/** Marks a closed poll's results final (once: null when they already were, or it is not closed). */
export async function markResultsFinal(trx: Db, pollId: number): Promise<PollRow | null> {
  const row = await trx
    .updateTable('polls')
    .set({ results_final_at: sql`now()` })
    .where('poll_id', '=', pollId)
    .where('status', '=', 'CLOSED')
    .where('results_final_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
  return row ?? null;
}
