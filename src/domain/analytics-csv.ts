/** One vote as the export reads it; the identity fields are absent on anonymous polls. */
export interface ExportedVote {
  vote_id: string;
  status: 'VALID' | 'SUSPICIOUS' | 'REJECTED';
  flag_reasons: string[];
  selected_options: number[];
  rank_order: number[] | null;
  ratings: Record<string, number> | null;
  response_ms: number | null;
  change_count: number;
  created_at: Date;
  accepted_at: Date;
  voter_id?: number | null;
  voter_fingerprint?: string | null;
  ip_address?: string | null;
  user_agent?: string | null;
  country?: string | null;
}

// vote_id leads only where identity is shown: the ids are UUIDv7, and carry the millisecond of the vote.
const BALLOT_COLUMNS = [
  'status',
  'flag_reasons',
  'selected_options',
  'ranking',
  'ratings',
  'choice_texts',
  'response_ms',
  'change_count',
  'created_at',
  'accepted_at',
];
const IDENTITY_COLUMNS = ['voter_id', 'voter_fingerprint', 'ip_address', 'user_agent', 'country'];
const HOUR_MS = 3_600_000;

/** The header row of a poll's vote export: who voted only where the poll is not anonymous. */
export function csvColumns(isAnonymous: boolean): string[] {
  return isAnonymous ? BALLOT_COLUMNS : ['vote_id', ...BALLOT_COLUMNS, ...IDENTITY_COLUMNS];
}

/**
 * The ballot in words, for a reader without the option ids: "vim; emacs", ranked "1. vim; 2. emacs",
 * rated "vim: 5; emacs: 2". An option no longer in the poll shows as its id.
 */
export function choiceTexts(v: Pick<ExportedVote, 'selected_options' | 'rank_order' | 'ratings'>, optionTexts: ReadonlyMap<number, string>): string {
  const text = (id: number | string) => optionTexts.get(Number(id)) ?? `#${id}`;
  if (v.rank_order) return v.rank_order.map((id, i) => `${i + 1}. ${text(id)}`).join('; ');
  if (v.ratings)
    return Object.entries(v.ratings)
      .map(([id, rating]) => `${text(id)}: ${rating}`)
      .join('; ');
  return v.selected_options.map(text).join('; ');
}

/**
 * One vote as a CSV record, lists as "12;14" and ratings as "12:5;13:2" so a spreadsheet shows
 * them in one cell, and the same ballot in option texts beside them. On anonymous polls times are cut to the hour and the (time-ordered) vote id
 * left out: a vote's exact time could otherwise single out a voter whose voting time the
 * creator knows.
 */
export function csvRecord(v: ExportedVote, isAnonymous: boolean, optionTexts: ReadonlyMap<number, string> = new Map()): Array<string | number | null> {
  const time = (d: Date) => (isAnonymous ? new Date(Math.floor(d.getTime() / HOUR_MS) * HOUR_MS) : d).toISOString();
  const ballot = [
    v.status,
    v.flag_reasons.join(';'),
    v.selected_options.join(';'),
    v.rank_order?.join(';') ?? '',
    v.ratings
      ? Object.entries(v.ratings)
          .map(([option, rating]) => `${option}:${rating}`)
          .join(';')
      : '',
    choiceTexts(v, optionTexts),
    v.response_ms,
    v.change_count,
    time(v.created_at),
    time(v.accepted_at),
  ];
  if (isAnonymous) return ballot;
  return [v.vote_id, ...ballot, v.voter_id ?? null, v.voter_fingerprint ?? null, v.ip_address ?? null, v.user_agent ?? null, v.country ?? null];
}
