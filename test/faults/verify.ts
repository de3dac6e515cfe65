import { sql, type Kysely } from 'kysely';
import type { DB } from '../../src/db/schema.js';
import { parsePrometheus } from '../helpers/prom.js';
import { countersAndRecount } from '../helpers/stack.js';
import type { FaultStack, LoadPoll } from './fault-stack.js';
import { ballotKey, type Attempt, type Voter, type VoterBook } from './load.js';

/*
 * What a fault did to the votes: for every poll, each 202 next to what PostgreSQL stores,
 * and each stored counter next to a recount of the stored ballots.
 *
 *  lost:    a voter who got a 202 has no stored vote, or not a counted one, or (vote changes)
 *           not their latest accepted ballot; plus, for every counter below its recount, the
 *           difference (so one uncounted ballot shows in its option and in the total: 2).
 *  doubled: every extra stored vote of one voter (one address), plus, for every counter
 *           above its recount, the difference.
 */

export interface Verdict {
  scenario: string;
  accepted202: number;
  voters: number;
  counted: number;
  lost: number;
  doubled: number;
  refused503: number;
  /** Requests that got no answer, of which `cutOff` were dropped in flight (not refused at connect). */
  unanswered: number;
  cutOff: number;
  /** Voters told 409 ALREADY_VOTED after an unanswered try, with nothing of theirs stored (issue 14, item 9). */
  falseAlreadyVoted: number;
  /** Stored votes whose voter never got a 202 (a try that died after the enqueue: allowed). */
  unacked: number;
  /** Stored votes whose voter only ever got 503 (which promises that nothing was accepted). */
  stored503: number;
  /** Vote jobs that failed for good (left in the failed set). */
  failedJobs: number;
  other: Record<string, number>;
  settledInMs: number;
  /** A few examples of what was lost or doubled, for the log. */
  examples: string[];
}

/** The verdict as one line: `scenario: 202s=… counted=… lost=… doubled=… 503s=…` and the details. */
export function formatVerdict(v: Verdict): string {
  const other =
    Object.entries(v.other)
      .map(([k, n]) => `${k}:${n}`)
      .join(',') || '-';
  return (
    `${v.scenario}: 202s=${v.accepted202} counted=${v.counted} lost=${v.lost} doubled=${v.doubled} 503s=${v.refused503}` +
    ` (voters=${v.voters} unanswered=${v.unanswered} cutOff=${v.cutOff} falseAlreadyVoted=${v.falseAlreadyVoted} unacked=${v.unacked}` +
    ` stored503=${v.stored503} failedJobs=${v.failedJobs} other=${other} settled=${(v.settledInMs / 1000).toFixed(1)}s)`
  );
}

interface StoredVote {
  vote_id: string;
  ip: string | null;
  status: string;
  selected_options: number[];
  rank_order: number[] | null;
  ratings: Record<string, number> | null;
}

const firstAccepted = (a: Attempt) => a.answers.find((x) => x.status === 202);
/** A try whose outcome the voter never learnt (no answer to the last request): it may or may not be stored. */
const unknownOutcome = (a: Attempt) => a.answers.length > 0 && a.answers[a.answers.length - 1].status === null;

/**
 * The ballots that may be stored for a voter who got at least one 202. Vote changes: the
 * latest accepted one, or any later try whose outcome the voter never learnt. Otherwise the
 * first accepted one (a later 202, after the claims were lost, must not overwrite it), or
 * an earlier try with an unknown outcome.
 */
function acceptableBallots(voter: Voter): Set<string> | null {
  const accepted = voter.attempts.map((a, i) => [a, i] as const).filter(([a]) => firstAccepted(a));
  if (accepted.length === 0) return null;
  const key = (a: Attempt) => ballotKey(voter.poll.poll_type, a.ballot);
  const ok = new Set<string>();
  if (voter.poll.allow_change_vote) {
    const [last, i] = accepted[accepted.length - 1];
    ok.add(key(last));
    for (const a of voter.attempts.slice(i + 1)) if (unknownOutcome(a)) ok.add(key(a));
  } else {
    const [first, i] = accepted[0];
    ok.add(key(first));
    for (const a of voter.attempts.slice(0, i)) if (unknownOutcome(a)) ok.add(key(a));
  }
  return ok;
}

async function pollFigures(db: Kysely<DB>, poll: LoadPoll) {
  const { rows } = await sql<StoredVote>`
    SELECT vote_id::text, host(ip_address) AS ip, status, selected_options, rank_order, ratings
    FROM votes WHERE poll_id = ${poll.poll_id}`.execute(db);
  const c = await countersAndRecount(db, poll.poll_id);
  // The per-type tables RANKED and RATING results are tabulated from, against the stored ballots.
  let over = 0;
  let under = 0;
  const compare = (stored: Map<string, number>, recount: Map<string, number>) => {
    for (const k of new Set([...stored.keys(), ...recount.keys()])) {
      const d = (stored.get(k) ?? 0) - (recount.get(k) ?? 0);
      if (d > 0) over += d;
      else under -= d;
    }
  };
  if (poll.poll_type === 'RANKED') {
    const stored = await sql<{ k: string; n: number }>`
      SELECT array_to_string(ranking, '>') AS k, ballot_count::int AS n FROM ranked_ballot_counts WHERE poll_id = ${poll.poll_id} AND ballot_count > 0`.execute(
      db,
    );
    const recount = await sql<{ k: string; n: number }>`
      SELECT (SELECT string_agg(x, '>' ORDER BY o) FROM jsonb_array_elements_text(rank_order) WITH ORDINALITY AS e(x, o)) AS k, count(*)::int AS n
      FROM votes WHERE poll_id = ${poll.poll_id} AND status = 'VALID' GROUP BY 1`.execute(db);
    compare(new Map(stored.rows.map((r) => [r.k, r.n])), new Map(recount.rows.map((r) => [r.k, r.n])));
  }
  if (poll.poll_type === 'RATING') {
    const stored = await sql<{ k: string; n: number }>`
      SELECT option_id || '=' || rating AS k, rating_count::int AS n FROM rating_counts WHERE poll_id = ${poll.poll_id} AND rating_count > 0`.execute(db);
    const recount = await sql<{ k: string; n: number }>`
      SELECT e.key || '=' || e.value AS k, count(*)::int AS n
      FROM votes, jsonb_each_text(ratings) AS e WHERE poll_id = ${poll.poll_id} AND status = 'VALID' GROUP BY 1`.execute(db);
    compare(new Map(stored.rows.map((r) => [r.k, r.n])), new Map(recount.rows.map((r) => [r.k, r.n])));
  }
  for (const id of Object.keys(c.recount)) {
    const d = (c.counters[id] ?? 0) - c.recount[id];
    if (d > 0) over += d;
    else under -= d;
  }
  if (c.total > c.validVotes) over += c.total - c.validVotes;
  else under += c.validVotes - c.total;
  return { rows, over, under, counters: c.counters, total: c.total };
}

/** Compares the load's answers with the database, once. */
export async function judge(db: Kysely<DB>, book: VoterBook, polls: LoadPoll[], scenario: string): Promise<Verdict> {
  const v: Verdict = {
    scenario,
    accepted202: 0,
    voters: 0,
    counted: 0,
    lost: 0,
    doubled: 0,
    refused503: 0,
    unanswered: 0,
    cutOff: 0,
    falseAlreadyVoted: 0,
    unacked: 0,
    stored503: 0,
    failedJobs: 0,
    other: {},
    settledInMs: 0,
    examples: [],
  };
  const example = (s: string) => v.examples.length < 10 && v.examples.push(s);
  for (const poll of polls) {
    const { rows, over, under } = await pollFigures(db, poll);
    v.counted += rows.length;
    if (over) example(`poll ${poll.poll_id} (${poll.poll_type}): counters ${over} above the recount`);
    if (under) example(`poll ${poll.poll_id} (${poll.poll_type}): counters ${under} below the recount`);
    v.doubled += over;
    v.lost += under;
    const byIp = new Map<string, StoredVote[]>();
    for (const r of rows) {
      const k = r.ip ?? '';
      byIp.set(k, [...(byIp.get(k) ?? []), r]);
    }
    for (const [ip, stored] of byIp) {
      if (stored.length > 1) {
        v.doubled += stored.length - 1;
        example(`poll ${poll.poll_id}: voter ${ip} stored ${stored.length} times`);
      }
    }
    const voters = [...book.voters.values()].filter((x) => x.poll.poll_id === poll.poll_id);
    const known = new Set(voters.map((x) => x.ip));
    v.unacked += rows.filter((r) => !known.has(r.ip ?? '')).length;
    for (const voter of voters) {
      v.voters++;
      const answers = voter.attempts.flatMap((a) => a.answers);
      for (const a of answers) {
        if (a.status === 202) v.accepted202++;
        else if (a.status === 503) v.refused503++;
        else if (a.status === null) {
          v.unanswered++;
          if (a.noAnswer !== 'refused') v.cutOff++;
        } else {
          const k = `${a.status}${a.code ? ` ${a.code}` : ''}`;
          v.other[k] = (v.other[k] ?? 0) + 1;
        }
      }
      const stored = byIp.get(voter.ip)?.[0];
      const ok = acceptableBallots(voter);
      if (!ok) {
        if (stored) {
          v.unacked++;
          if (answers.every((a) => a.status === 503)) v.stored503++;
        } else if (
          voter.attempts.some((a) =>
            a.answers.some((x, i) => x.status === 409 && x.code === 'ALREADY_VOTED' && a.answers.slice(0, i).some((y) => y.status === null)),
          )
        ) {
          v.falseAlreadyVoted++;
        }
        continue;
      }
      if (!stored) {
        v.lost++;
        example(`poll ${poll.poll_id}: voter ${voter.ip} got 202 (${firstAccepted(voter.attempts.find(firstAccepted)!)!.vote_id}) and nothing is stored`);
        continue;
      }
      const got = ballotKey(poll.poll_type, { options: stored.selected_options, ranking: stored.rank_order, ratings: stored.ratings });
      if (!ok.has(got)) {
        v.lost++;
        example(`poll ${poll.poll_id}: voter ${voter.ip} stored ballot ${got}, expected one of ${[...ok].join(' | ')}`);
      } else if (stored.status !== 'VALID') {
        v.lost++;
        example(`poll ${poll.poll_id}: voter ${voter.ip} stored as ${stored.status}, not counted`);
      }
    }
  }
  return v;
}

/** Jobs per state summed over the vote queues, from the workers' `queue_jobs` gauge (null: unknown). */
async function voteQueueDepths(stack: FaultStack): Promise<{ pending: number; failed: number } | null> {
  try {
    const res = await fetch(`${stack.workers.url}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return null;
    const samples = parsePrometheus(await res.text()).samples.filter((s) => s.name === 'queue_jobs');
    // Names may change (partitioned queues): every queue that carries votes says "vote".
    const vote = samples.filter((s) => /vote/.test(s.labels.queue ?? ''));
    if (vote.length === 0) return null;
    const sum = (states: string[]) => vote.filter((s) => states.includes(s.labels.state)).reduce((n, s) => n + s.value, 0);
    return { pending: sum(['waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children']), failed: sum(['failed']) };
  } catch {
    return null;
  }
}

/**
 * Waits until the queues have drained and the database agrees with every 202 (or, when it
 * never does, until the queues have stayed empty for `idleGraceMs`: what is missing then is
 * lost), then returns the verdict.
 */
export async function settleAndJudge(
  stack: FaultStack,
  book: VoterBook,
  polls: LoadPoll[],
  scenario: string,
  opts: { timeoutMs?: number; idleGraceMs?: number } = {},
): Promise<Verdict> {
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? 180_000);
  const idleGraceMs = opts.idleGraceMs ?? 10_000;
  let idleSince: number | null = null;
  for (;;) {
    const depths = await voteQueueDepths(stack);
    const idle = depths !== null && depths.pending === 0;
    const v = await judge(stack.db, book, polls, scenario);
    v.failedJobs = depths?.failed ?? 0;
    v.settledInMs = Date.now() - started;
    if (idle) idleSince ??= Date.now();
    else idleSince = null;
    const clean = v.lost === 0 && v.doubled === 0;
    if ((idle && clean) || (idleSince !== null && Date.now() - idleSince > idleGraceMs) || Date.now() > deadline) {
      if (!idle) v.examples.push(`the vote queues never drained (depths: ${JSON.stringify(depths)})`);
      return v;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
