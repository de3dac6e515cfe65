import type { ColumnType, Generated, Selectable } from 'kysely';

export type PollType = 'SINGLE_CHOICE' | 'MULTIPLE_CHOICE' | 'RANKED' | 'RATING';
export type PollStatus = 'DRAFT' | 'ACTIVE' | 'CLOSED';
export type Visibility = 'PUBLIC' | 'PRIVATE' | 'ORGANIZATION';
export type VoteStatus = 'VALID' | 'SUSPICIOUS' | 'REJECTED';

export interface PollSettings {
  max_choices: number;
  require_authentication: boolean;
  show_results_before_close: boolean;
  rating_min: number;
  rating_max: number;
  captcha: 'off' | 'flagged' | 'always';
  /** Anonymous votes must carry a fresh view token (fetched with the poll, one vote each). */
  require_view_token: boolean;
  /** Origins (lower-case `scheme://host[:port]`) allowed to embed the poll and to vote from a browser. */
  embed_origins: string[];
}

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Int8 = number;
/** A timestamp the database fills in when omitted. */
type DefaultTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface PollsTable {
  poll_id: Generated<Int8>;
  creator_id: Int8;
  org_id: Int8 | null;
  question: string;
  poll_type: PollType;
  status: Generated<PollStatus>;
  is_anonymous: Generated<boolean>;
  allow_change_vote: Generated<boolean>;
  visibility: Generated<Visibility>;
  access_key: string | null;
  start_time: Timestamp | null;
  end_time: Timestamp | null;
  settings: ColumnType<PollSettings, string, string>;
  tiebreak_seed: string;
  created_at: DefaultTimestamp;
  updated_at: DefaultTimestamp;
  published_at: Timestamp | null;
  closed_at: Timestamp | null;
  /** How many partitions the poll's voters are split into (fixed at creation). */
  partitions: ColumnType<number, number | undefined, number>;
  /** When the final results were published: every vote accepted before the close is counted. */
  results_final_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface PollOptionsTable {
  option_id: Generated<Int8>;
  poll_id: Int8;
  text: string;
  image_url: string | null;
  display_order: number;
}

export interface VotesTable {
  vote_id: string;
  poll_id: Int8;
  voter_key: string;
  voter_id: Int8 | null;
  voter_fingerprint: string | null;
  seq: Int8;
  selected_options: ColumnType<number[], number[], number[]>;
  counted_options: ColumnType<number[], number[], number[]>;
  rank_order: ColumnType<number[] | null, string | null, string | null>;
  ratings: ColumnType<Record<string, number> | null, string | null, string | null>;
  ip_address: string | null;
  user_agent: string | null;
  status: Generated<VoteStatus>;
  flag_reasons: Generated<string[]>;
  response_ms: number | null;
  /** ISO country from the operator's CDN header (analytics); null without one. */
  country: ColumnType<string | null, string | null | undefined, string | null>;
  change_count: Generated<number>;
  /** The partition (counter shard) of the voter. */
  shard: ColumnType<number, number | undefined, number>;
  /** How the vote's view token fared: valid, missing, expired, reused or foreign (null before it was recorded). */
  view_token: ColumnType<string | null, string | null | undefined, string | null>;
  accepted_at: Timestamp;
  created_at: DefaultTimestamp;
  updated_at: DefaultTimestamp;
}

/** Counters are sharded by partition: a poll's count is the sum over its shards. */
export interface VoteResultsTable {
  poll_id: Int8;
  option_id: Int8;
  shard: Generated<number>;
  vote_count: Generated<Int8>;
  last_updated: DefaultTimestamp;
}

export interface PollTalliesTable {
  poll_id: Int8;
  shard: Generated<number>;
  total_votes: Generated<Int8>;
  pending_review: Generated<Int8>;
  seq: Generated<Int8>;
  updated_at: DefaultTimestamp;
}

export interface RankedBallotCountsTable {
  poll_id: Int8;
  shard: Generated<number>;
  ranking: ColumnType<number[], number[], number[]>;
  ballot_count: Int8;
}

export interface RatingCountsTable {
  poll_id: Int8;
  shard: Generated<number>;
  option_id: Int8;
  rating: number;
  rating_count: Int8;
}

export interface PollAnalyticsTable {
  poll_id: Int8;
  total_votes: Generated<Int8>;
  unique_voters: Generated<Int8>;
  completion_rate: Generated<number>;
  avg_response_time_seconds: number | null;
  median_response_time_seconds: number | null;
  geographic_distribution: ColumnType<Record<string, number>, string, string>;
  device_breakdown: ColumnType<Record<string, number>, string, string>;
  time_series: ColumnType<Array<{ hour: string; votes: number }>, string, string>;
  suspicious_votes: Generated<Int8>;
  unique_viewers: Generated<Int8>;
  rejected_votes: Generated<Int8>;
  time_series_last_hour: ColumnType<Array<{ minute: string; votes: number }>, string | undefined, string>;
  updated_at: DefaultTimestamp;
}

export interface VoteReviewsTable {
  review_id: Generated<number>;
  vote_id: string;
  poll_id: number;
  previous_status: VoteStatus;
  decision: 'VALID' | 'REJECTED';
  reviewer_id: number;
  note: string | null;
  decided_at: DefaultTimestamp;
}

export interface DB {
  polls: PollsTable;
  poll_options: PollOptionsTable;
  votes: VotesTable;
  vote_results: VoteResultsTable;
  poll_tallies: PollTalliesTable;
  ranked_ballot_counts: RankedBallotCountsTable;
  rating_counts: RatingCountsTable;
  poll_analytics: PollAnalyticsTable;
  vote_reviews: VoteReviewsTable;
}

export type PollRow = Selectable<PollsTable>;
export type PollOptionRow = Selectable<PollOptionsTable>;
