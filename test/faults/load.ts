import type { LoadPoll } from './fault-stack.js';

/*
 * A load generator that behaves like many real voters: each voter has its own address
 * (X-Forwarded-For, behind TRUST_PROXY=loopback), sends one request at a time, and retries
 * a request that got no answer (or 409 VOTE_PENDING) as a browser's user would. Every
 * answer is recorded with the voter and the ballot, for the verifier.
 */

export interface Ballot {
  options?: number[];
  ranking?: number[];
  ratings?: Record<string, number>;
}

/** One answer to one request; `status` null: no answer (connection refused or dropped, timeout). */
export interface Answer {
  status: number | null;
  /** Why there was no answer: `refused` (never reached a server), `cut` (dropped in flight), `timeout`. */
  noAnswer?: 'refused' | 'cut' | 'timeout';
  code?: string;
  vote_id?: string;
  changed?: boolean;
  /** The load's tag when the request was sent (e.g. "outage"). */
  tag: string;
  at: number;
}

/** One ballot a voter meant to cast, and every answer its tries got. */
export interface Attempt {
  ballot: Ballot;
  answers: Answer[];
}

export interface Voter {
  ip: string;
  poll: LoadPoll;
  attempts: Attempt[];
}

/** Every voter of a scenario, across its load phases. */
export interface VoterBook {
  voters: Map<string, Voter>;
  /** The voter at `ip` in `poll`, created on first use. */
  voter(poll: LoadPoll, ip: string): Voter;
}

export function createVoterBook(): VoterBook {
  const voters = new Map<string, Voter>();
  return {
    voters,
    voter(poll, ip) {
      const key = `${poll.poll_id}|${ip}`;
      let v = voters.get(key);
      if (!v) voters.set(key, (v = { ip, poll, attempts: [] }));
      return v;
    },
  };
}

// Never the same address twice in one test process: voters of different scenarios stay apart.
let nextAddress = 1;
function freshIp(): string {
  const n = nextAddress++;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

let ballotCounter = 0;
/** A valid ballot for the poll, varied from call to call. */
export function ballotFor(poll: LoadPoll): Ballot {
  const i = ballotCounter++;
  const n = poll.options.length;
  const rotated = poll.options.map((_, k) => poll.options[(i + k) % n]);
  switch (poll.poll_type) {
    case 'SINGLE_CHOICE':
      return { options: [rotated[0]] };
    case 'MULTIPLE_CHOICE':
      return { options: rotated.slice(0, 1 + ((i >> 2) % Math.min(n, poll.max_choices))) };
    case 'RANKED':
      return { ranking: rotated.slice(0, 1 + ((i >> 2) % n)) };
    case 'RATING': {
      const ratings: Record<string, number> = {};
      rotated.forEach((id, k) => {
        if (k === 0 || (i + k) % 3 !== 0) ratings[String(id)] = 1 + ((i * 7 + k * 3) % 5);
      });
      return { ratings };
    }
  }
}

/** A ballot as one comparable string: what the voter chose, in the form the poll type stores it. */
export function ballotKey(
  pollType: LoadPoll['poll_type'],
  ballot: { options?: number[] | null; ranking?: number[] | null; ratings?: Record<string, number> | null },
): string {
  switch (pollType) {
    case 'SINGLE_CHOICE':
    case 'MULTIPLE_CHOICE':
      return [...(ballot.options ?? [])]
        .map(Number)
        .sort((a, b) => a - b)
        .join(',');
    case 'RANKED':
      return (ballot.ranking ?? []).map(Number).join('>');
    case 'RATING':
      return Object.entries(ballot.ratings ?? {})
        .map(([k, v]) => [Number(k), Number(v)])
        .sort((a, b) => a[0] - b[0])
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
  }
}

export interface LoadStats {
  requests: number;
  accepted: number;
  refused503: number;
  unanswered: number;
  /** Other statuses by "status code" (e.g. "409 ALREADY_VOTED"). */
  other: Record<string, number>;
}

export interface Load {
  /** Tags every request sent from now on (the verifier reports per tag). */
  tag: string;
  readonly running: boolean;
  /** Requests sent and not answered yet. */
  readonly inFlight: number;
  /** Stops starting new votes and waits for every voter's request in flight, retries included. */
  stop(): Promise<void>;
  stats(tag?: string): LoadStats;
  /** Resolves once `n` more votes got 202 than when called (fails after `timeoutMs`). */
  acceptedAtLeast(n: number, timeoutMs?: number): Promise<void>;
}

export interface LoadOptions {
  book: VoterBook;
  polls: LoadPoll[];
  /** The API base URL(s) (read at every request; several are used round-robin). */
  target: () => string | string[];
  /** New voters per second (default 250). */
  rate?: number;
  /** Most requests in flight at once (default 48). */
  concurrency?: number;
  /** Voters who keep changing their vote, per allow_change_vote poll (default 20). */
  changeVoters?: number;
  /** Voters of an earlier phase who vote again first (they come back after a FLUSHALL). */
  revoters?: Voter[];
  /** How long a voter keeps retrying a request that got no answer (default 90 s). */
  retryForMs?: number;
  /** Per-request timeout (default 20 s): no answer by then counts as no answer. */
  requestTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function whyNoAnswer(err: unknown): NonNullable<Answer['noAnswer']> {
  const e = err as { name?: string; cause?: { code?: string; name?: string } };
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError') return 'timeout';
  return e.cause?.code === 'ECONNREFUSED' ? 'refused' : 'cut';
}

/** Starts sending votes; call stop() to end. */
export function startLoad(opts: LoadOptions): Load {
  const rate = opts.rate ?? 250;
  const concurrency = opts.concurrency ?? 48;
  const retryForMs = opts.retryForMs ?? 90_000;
  const requestTimeoutMs = opts.requestTimeoutMs ?? 20_000;
  const answers: Answer[] = [];
  const tasks = new Set<Promise<void>>();
  let running = true;
  let inFlight = 0;
  let targetIndex = 0;
  let acceptedCount = 0;
  const waiters = new Set<() => void>();

  const pickTarget = () => {
    const t = opts.target();
    return Array.isArray(t) ? t[targetIndex++ % t.length] : t;
  };

  async function send(voter: Voter, ballot: Ballot): Promise<Answer> {
    const tag = load.tag;
    inFlight++;
    try {
      const res = await fetch(`${pickTarget()}/api/v1/polls/${voter.poll.poll_id}/votes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': voter.ip, 'user-agent': 'viral-polls-fault-suite' },
        body: JSON.stringify(ballot),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      const text = await res.text();
      let body: any = null;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      const answer: Answer = { status: res.status, tag, at: Date.now() };
      if (res.status === 202) {
        answer.vote_id = body?.vote_id;
        answer.changed = body?.changed;
      } else {
        answer.code = body?.error?.code;
        const retryAfter = Number(res.headers.get('retry-after'));
        if (answer.code === 'VOTE_PENDING' && retryAfter > 0) (answer as Answer & { retryAfterMs?: number }).retryAfterMs = retryAfter * 1000;
      }
      return answer;
    } catch (err) {
      return { status: null, noAnswer: whyNoAnswer(err), tag, at: Date.now() };
    } finally {
      inFlight--;
    }
  }

  /** Casts one ballot, retrying while the outcome is unknown (no answer) or pending. */
  async function cast(voter: Voter, ballot: Ballot): Promise<Answer> {
    const attempt: Attempt = { ballot, answers: [] };
    voter.attempts.push(attempt);
    const deadline = Date.now() + retryForMs;
    let backoff = 200;
    for (;;) {
      const answer = await send(voter, ballot);
      attempt.answers.push(answer);
      answers.push(answer);
      if (answer.status === 202) {
        acceptedCount++;
        for (const w of waiters) w();
      }
      const retry = answer.status === null || (answer.status === 409 && answer.code === 'VOTE_PENDING');
      if (!retry || Date.now() > deadline) return answer;
      await sleep((answer as Answer & { retryAfterMs?: number }).retryAfterMs ?? backoff);
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  const track = (p: Promise<void>) => {
    tasks.add(p);
    void p.finally(() => tasks.delete(p));
  };

  // New voters at `rate` per second, held back while `concurrency` requests wait (as real
  // clients would be: a down API does not get more requests than its clients have open).
  const revoters = [...(opts.revoters ?? [])];
  let pollIndex = 0;
  const newVoters = (async () => {
    let budget = 0;
    let last = Date.now();
    while (running) {
      await sleep(10);
      const now = Date.now();
      budget = Math.min(budget + ((now - last) / 1000) * rate, Math.max(1, rate / 10));
      last = now;
      while (running && budget >= 1 && inFlight < concurrency) {
        budget--;
        const again = revoters.shift();
        const voter = again ?? opts.book.voter(opts.polls[pollIndex++ % opts.polls.length], freshIp());
        track(cast(voter, ballotFor(voter.poll)).then(() => {}));
      }
    }
  })();

  // Voters who change their mind, each one request at a time, so "the latest accepted ballot" is well defined.
  const changing = opts.polls
    .filter((p) => p.allow_change_vote)
    .flatMap((poll) =>
      Array.from({ length: opts.changeVoters ?? 20 }, async (_, k) => {
        const voter = opts.book.voter(poll, freshIp());
        await sleep(k * 17);
        while (running) {
          await cast(voter, ballotFor(poll));
          await sleep(100 + ((k * 37) % 200));
        }
      }),
    );

  const load: Load = {
    tag: 'load',
    get running() {
      return running;
    },
    get inFlight() {
      return inFlight;
    },
    async stop() {
      running = false;
      await newVoters;
      await Promise.all(changing);
      while (tasks.size) await Promise.all([...tasks]);
    },
    stats(tag) {
      const s: LoadStats = { requests: 0, accepted: 0, refused503: 0, unanswered: 0, other: {} };
      for (const a of answers) {
        if (tag !== undefined && a.tag !== tag) continue;
        s.requests++;
        if (a.status === 202) s.accepted++;
        else if (a.status === 503) s.refused503++;
        else if (a.status === null) s.unanswered++;
        else {
          const k = `${a.status}${a.code ? ` ${a.code}` : ''}`;
          s.other[k] = (s.other[k] ?? 0) + 1;
        }
      }
      return s;
    },
    acceptedAtLeast(n, timeoutMs = 60_000) {
      const goal = acceptedCount + n;
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (acceptedCount < goal) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${n} more 202s (stats: ${JSON.stringify(load.stats())})`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
  };
  return load;
}
