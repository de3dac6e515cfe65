import { sql } from 'kysely';
import type { RankedBallotGroup, RankedInput } from '../domain/tally/instant-runoff.js';
import type { RatingInput } from '../domain/tally/rating.js';
import type { Db } from './client.js';
import type { PollSettings, PollStatus, PollType } from './schema.js';

/** The materialised results of one poll, as stored. */
export interface ResultsState {
  poll_id: number;
  poll_type: PollType;
  status: PollStatus;
  total_votes: number;
  pending_review: number;
  seq: number;
  updated_at: Date;
  /** The final results of a closed poll: every vote accepted before the close is counted. */
  final: boolean;
  options: Array<{ option_id: number; text: string; vote_count: number; percentage: number }>;
  /**
   * RANKED only: the counted ballots grouped by ranking, with the secret tie-break seed. Kept raw
   * so that tabulation runs after commit, outside the poll lock, once per published state.
   */
  ranked_input?: RankedInput;
  /** RATING only: the counted ratings per option and value. */
  rating_input?: RatingInput;
}

/** `count` over `total` as a percentage with two decimals, rounded half up (as PostgreSQL's round does). */
export function percentageOf(count: number, total: number): number {
  return total > 0 ? Math.floor((20_000 * count + total) / (2 * total)) / 100 : 0;
}

/**
 * Reads the stored counts of the given polls, summed over their shards: one query, plus one per
 * tabulated poll type present. `seq` is the sum of the shards' versions: each only grows, so a
 * later read never has a smaller one.
 */
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
    final: boolean;
    option_id: number;
    text: string;
    vote_count: number;
    settings: PollSettings;
    tiebreak_seed: string;
  }>`
    WITH t AS (
      SELECT poll_id, sum(total_votes)::bigint AS total_votes, sum(pending_review)::bigint AS pending_review,
             sum(seq)::bigint AS seq, max(updated_at) AS updated_at
      FROM poll_tallies WHERE poll_id = ANY(${pollIds}::bigint[]) GROUP BY poll_id
    ),
    r AS (
      SELECT poll_id, option_id, sum(vote_count)::bigint AS vote_count
      FROM vote_results WHERE poll_id = ANY(${pollIds}::bigint[]) GROUP BY poll_id, option_id
    )
    SELECT p.poll_id, p.poll_type, p.status, t.total_votes, t.pending_review, t.seq, t.updated_at,
           p.results_final_at IS NOT NULL AS final, o.option_id, o.text, coalesce(r.vote_count, 0) AS vote_count,
           p.settings, p.tiebreak_seed
    FROM polls p
    JOIN t ON t.poll_id = p.poll_id
    JOIN poll_options o ON o.poll_id = p.poll_id
    LEFT JOIN r ON r.poll_id = o.poll_id AND r.option_id = o.option_id
    WHERE p.poll_id = ANY(${pollIds}::bigint[])
    ORDER BY p.poll_id, o.display_order, o.option_id`.execute(db);
  const first = new Map<number, (typeof rows)[number]>();
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
        final: r.final,
        options: [],
      };
      out.set(r.poll_id, s);
      first.set(r.poll_id, r);
    }
    s.options.push({ option_id: r.option_id, text: r.text, vote_count: r.vote_count, percentage: 0 });
  }
  for (const s of out.values()) {
    const sum = s.options.reduce((n, o) => n + o.vote_count, 0);
    for (const o of s.options) o.percentage = percentageOf(o.vote_count, sum);
  }

  const idsOf = (type: PollType) => [...out.values()].filter((s) => s.poll_type === type).map((s) => s.poll_id);
  const ballots = await loadRankedBallots(db, idsOf('RANKED'));
  const histograms = await loadRatingHistograms(db, idsOf('RATING'));
  for (const s of out.values()) {
    const optionIds = s.options.map((o) => o.option_id);
    const { settings, tiebreak_seed } = first.get(s.poll_id)!;
    if (s.poll_type === 'RANKED') s.ranked_input = { optionIds, ballots: ballots.get(s.poll_id) ?? [], seed: tiebreak_seed };
    if (s.poll_type === 'RATING') {
      s.rating_input = { optionIds, ratingMin: settings.rating_min, ratingMax: settings.rating_max, histograms: histograms.get(s.poll_id) ?? {} };
    }
  }
  return out;
}

/** Counted ballot groups of RANKED polls: cost follows distinct rankings, not voters. */
async function loadRankedBallots(db: Db, pollIds: number[]): Promise<Map<number, RankedBallotGroup[]>> {
  const out = new Map<number, RankedBallotGroup[]>();
  if (pollIds.length === 0) return out;
  // Zero-count groups are what changed votes leave behind; they carry no ballots.
  const { rows } = await sql<{ poll_id: number; ranking: number[]; ballot_count: number }>`
    SELECT poll_id, ranking, sum(ballot_count)::bigint AS ballot_count FROM ranked_ballot_counts
    WHERE poll_id = ANY(${pollIds}::bigint[]) AND ballot_count > 0
    GROUP BY poll_id, ranking`.execute(db);
  for (const r of rows) {
    let groups = out.get(r.poll_id);
    if (!groups) out.set(r.poll_id, (groups = []));
    groups.push({ ranking: r.ranking, count: r.ballot_count });
  }
  return out;
}

/** Counted ratings of RATING polls: option id -> rating -> how many. */
async function loadRatingHistograms(db: Db, pollIds: number[]): Promise<Map<number, Record<number, Record<number, number>>>> {
  const out = new Map<number, Record<number, Record<number, number>>>();
  if (pollIds.length === 0) return out;
  const { rows } = await sql<{ poll_id: number; option_id: number; rating: number; rating_count: number }>`
    SELECT poll_id, option_id, rating, sum(rating_count)::bigint AS rating_count FROM rating_counts
    WHERE poll_id = ANY(${pollIds}::bigint[]) AND rating_count > 0
    GROUP BY poll_id, option_id, rating`.execute(db);
  for (const r of rows) {
    let byOption = out.get(r.poll_id);
    if (!byOption) out.set(r.poll_id, (byOption = {}));
    (byOption[r.option_id] ??= {})[r.rating] = r.rating_count;
  }
  return out;
}
