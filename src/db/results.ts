import { sql } from 'kysely';
import type { Db } from './client.js';
import type { PollStatus, PollType } from './schema.js';

/** The materialised results of one poll, as stored. */
export interface ResultsState {
  poll_id: number;
  poll_type: PollType;
  status: PollStatus;
  total_votes: number;
  pending_review: number;
  seq: number;
  updated_at: Date;
  options: Array<{ option_id: number; text: string; vote_count: number; percentage: number }>;
}

/** Reads the stored counts of the given polls in one query. */
export async function loadResults(db: Db, pollIds: number[]): Promise<Map<number, ResultsState>> {
  const out = new Map<number, ResultsState>();
  if (pollIds.length === 0) return out;
  const { rows } = await sql<{
    poll_id: number;
    poll_type: PollType;
    status: PollStatus;
    total_votes: number;
    pending_review: number;
    seq: number;
    updated_at: Date;
    option_id: number;
    text: string;
    vote_count: number;
    percentage: string;
  }>`
    SELECT p.poll_id, p.poll_type, p.status, t.total_votes, t.pending_review, t.seq, t.updated_at,
           o.option_id, o.text, r.vote_count, r.percentage
    FROM polls p
    JOIN poll_tallies t ON t.poll_id = p.poll_id
    JOIN poll_options o ON o.poll_id = p.poll_id
    JOIN vote_results r ON r.poll_id = o.poll_id AND r.option_id = o.option_id
    WHERE p.poll_id = ANY(${pollIds}::bigint[])
    ORDER BY p.poll_id, o.display_order, o.option_id`.execute(db);
  for (const r of rows) {
    let s = out.get(r.poll_id);
    if (!s) {
      s = {
        poll_id: r.poll_id,
        poll_type: r.poll_type,
        status: r.status,
        total_votes: r.total_votes,
        pending_review: r.pending_review,
        seq: r.seq,
        updated_at: r.updated_at,
        options: [],
      };
      out.set(r.poll_id, s);
    }
    s.options.push({ option_id: r.option_id, text: r.text, vote_count: r.vote_count, percentage: Number(r.percentage) });
  }
  return out;
}
