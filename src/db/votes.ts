import { sql } from 'kysely';
import type { Db } from './client.js';
import type { VoteStatus } from './schema.js';
import type { BallotChange, CountedBallot, ShardLockedTrx } from './ballots.js';

/** A vote as the API queued it. */
export interface QueuedVote {
  vote_id: string;
  poll_id: number;
  voter_key: string;
  voter_id: number | null;
  voter_fingerprint: string | null;
  /** Per-voter sequence: a later vote of the same voter always has a higher one. */
  seq: number;
  allow_change: boolean;
  selected: number[];
  counted: number[];
  ranking: number[] | null;
  ratings: Record<string, number> | null;
  ip: string | null;
  user_agent: string | null;
  status: VoteStatus;
  reasons: string[];
  response_ms: number | null;
  accepted_at: number;
  /** Address prefixes watched for velocity (the worker checks their flags at commit)... */
  prefixes?: string[];
  /** ...in this partition's hash tag (a signed-in voter's prefixes live outside their own partition). */
  prefix_tag?: string;
  /** Country from a trusted CDN header (analytics); absent where none is configured. */
  country?: string | null;
  /** The voter's partition of the poll: its counters are this shard's. */
  shard: number;
  /** How the view token fared (valid, missing, expired, reused, foreign). */
  view_token: string;
}

/** Whether a voter already has a stored vote in a poll (the unique key's own index answers it). */
export async function hasStoredVote(db: Db, pollId: number, voterKey: string): Promise<boolean> {
  const row = await db.selectFrom('votes').select('vote_id').where('poll_id', '=', pollId).where('voter_key', '=', voterKey).executeTakeFirst();
  return row !== undefined;
}

/** Keeps only the latest vote of each voter: one statement may not touch a row twice. */
export function latestPerVoter(votes: QueuedVote[]): QueuedVote[] {
  const latest = new Map<string, QueuedVote>();
  for (const v of votes) {
    const k = `${v.poll_id}|${v.voter_key}`;
    const seen = latest.get(k);
    if (!seen || seen.seq < v.seq) latest.set(k, v);
  }
  return [...latest.values()];
}

type ChangedRow = {
  poll_id: number;
  shard: number;
  status: VoteStatus;
  counted_options: number[];
  rank_order: number[] | null;
  ratings: Record<string, number> | null;
  before_status: VoteStatus | null;
  before_counted: number[] | null;
  before_rank_order: number[] | null;
  before_ratings: Record<string, number> | null;
};

const state = (
  pollId: number,
  shard: number,
  status: VoteStatus,
  counted: number[],
  ranking: number[] | null,
  ratings: Record<string, number> | null,
): CountedBallot => ({
  pollId,
  shard,
  status,
  counted,
  ranking,
  ratings,
});

/**
 * Inserts new ballots and moves changed ones forward (never back: an older seq loses), and
 * returns exactly the ballots the statement changed with their previous state. A replayed
 * or duplicated batch changes no row and so returns nothing. Runs under the votes' shard locks:
 * the `before` snapshot is exact only while no other writer touches these shards.
 */
export async function recordVotes(trx: ShardLockedTrx, votes: QueuedVote[]): Promise<BallotChange[]> {
  const changes: BallotChange[] = [];
  for (const allowChange of [false, true]) {
    const group = votes.filter((v) => v.allow_change === allowChange);
    if (group.length) changes.push(...(await upsert(trx, group, allowChange)));
  }
  return changes;
}

async function upsert(trx: ShardLockedTrx, votes: QueuedVote[], allowChange: boolean): Promise<BallotChange[]> {
  const rows = votes.map((v) => ({
    vote_id: v.vote_id,
    poll_id: v.poll_id,
    voter_key: v.voter_key,
    voter_id: v.voter_id,
    voter_fingerprint: v.voter_fingerprint,
    seq: v.seq,
    selected_options: v.selected,
    counted_options: v.counted,
    rank_order: v.ranking,
    ratings: v.ratings,
    ip_address: v.ip,
    user_agent: v.user_agent,
    status: v.status,
    flag_reasons: v.reasons,
    response_ms: v.response_ms,
    accepted_at: new Date(v.accepted_at).toISOString(),
    shard: v.shard,
    view_token: v.view_token,
    ...(v.country ? { country: v.country } : {}),
  }));
  // A changed ballot never escapes a flag: once SUSPICIOUS or REJECTED, the voter stays so.
  const onConflict = allowChange
    ? sql`DO UPDATE SET selected_options = excluded.selected_options, counted_options = excluded.counted_options,
          rank_order = excluded.rank_order, ratings = excluded.ratings, seq = excluded.seq,
          ip_address = excluded.ip_address, user_agent = excluded.user_agent,
          response_ms = coalesce(excluded.response_ms, votes.response_ms), country = excluded.country,
          view_token = excluded.view_token,
          status = CASE WHEN votes.status = 'VALID' THEN excluded.status ELSE votes.status END,
          flag_reasons = ARRAY(SELECT DISTINCT unnest(votes.flag_reasons || excluded.flag_reasons)),
          change_count = votes.change_count + 1, accepted_at = excluded.accepted_at, updated_at = now()
        WHERE votes.seq < excluded.seq`
    : sql`DO NOTHING`;
  const { rows: changed } = await sql<ChangedRow>`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS t(
        vote_id uuid, poll_id bigint, voter_key text, voter_id bigint, voter_fingerprint text, seq bigint,
        selected_options bigint[], counted_options bigint[], rank_order jsonb, ratings jsonb, ip_address inet,
        user_agent text, status text, flag_reasons text[], response_ms int, accepted_at timestamptz, country text,
        shard smallint, view_token text)
    ),
    before AS (
      SELECT v.poll_id, v.voter_key, v.status, v.counted_options, v.rank_order, v.ratings
      FROM votes v JOIN input i ON v.poll_id = i.poll_id AND v.voter_key = i.voter_key
    ),
    changed AS (
      INSERT INTO votes (vote_id, poll_id, voter_key, voter_id, voter_fingerprint, seq, selected_options, counted_options,
                         rank_order, ratings, ip_address, user_agent, status, flag_reasons, response_ms, accepted_at, country,
                         shard, view_token)
      SELECT vote_id, poll_id, voter_key, voter_id, voter_fingerprint, seq, selected_options, counted_options,
             rank_order, ratings, ip_address, user_agent, status, flag_reasons, response_ms, accepted_at, country,
             shard, view_token
      FROM input ORDER BY poll_id, voter_key
      ON CONFLICT (poll_id, voter_key) ${onConflict}
      RETURNING poll_id, shard, voter_key, status, counted_options, rank_order, ratings
    )
    SELECT c.poll_id, c.shard, c.status, c.counted_options, c.rank_order, c.ratings,
           b.status AS before_status, b.counted_options AS before_counted,
           b.rank_order AS before_rank_order, b.ratings AS before_ratings
    FROM changed c LEFT JOIN before b ON b.poll_id = c.poll_id AND b.voter_key = c.voter_key`.execute(trx);

  return changed.map((r) => ({
    before: r.before_status ? state(r.poll_id, r.shard, r.before_status, r.before_counted!, r.before_rank_order, r.before_ratings) : null,
    after: state(r.poll_id, r.shard, r.status, r.counted_options, r.rank_order, r.ratings),
  }));
}
