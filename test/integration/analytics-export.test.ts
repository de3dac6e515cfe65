import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parse } from 'csv-parse';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createPoll, eventually, startStack, tokenFor, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { VOTES_PER_IP_PER_POLL_PER_HOUR: '100000', PREFIX_VOTES_LIMIT: '100000', MIN_RESPONSE_MS: '0' } });
});
afterAll(async () => {
  await stack?.close();
});

const N = 100_000;
const EVIL = '=HYPERLINK("http://evil.example","click"), with "quotes"\nand a line break';
const START = Date.parse('2026-11-01T00:00:00.000Z');
// Live heap, not garbage awaiting collection: the API runs in this process, so this is the server's memory too.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const liveHeap = () => (gc(), process.memoryUsage().heapUsed);

const uuidOf = (i: number) =>
  createHash('md5')
    .update(String(i))
    .digest('hex')
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');

/** Rows of the export that a cursor still has open on the server, i.e. not yet all read. */
async function exportStillReading(): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
      AND query ILIKE '%"voter_fingerprint"%' AND query ILIKE '%order by "created_at"%'`.execute(stack.db);
  return rows[0].n > 0;
}

it('streams 100,000 votes in many chunks with bounded memory, and they parse back to the same votes', async () => {
  const creator = await tokenFor(1);
  const poll = await createPoll(stack, {}, creator);
  const options = poll.options.map((o) => o.option_id);
  await sql`
    INSERT INTO votes (vote_id, poll_id, voter_key, voter_fingerprint, seq, selected_options, counted_options, ip_address,
                       user_agent, status, flag_reasons, response_ms, accepted_at, created_at)
    SELECT md5(i::text)::uuid, ${poll.poll_id}, 'f:' || i, 'fp' || i, 1,
           ARRAY[(${options}::bigint[])[1 + i % 3]], ARRAY[(${options}::bigint[])[1 + i % 3]],
           ('10.' || (i >> 16) || '.' || ((i >> 8) & 255) || '.' || (i & 255))::inet,
           CASE WHEN i % 1000 = 0 THEN ${EVIL} ELSE 'agent/' || (i % 7) END,
           CASE WHEN i % 10 = 0 THEN 'SUSPICIOUS' ELSE 'VALID' END,
           CASE WHEN i % 10 = 0 THEN ARRAY['IP_PREFIX_VELOCITY'] ELSE '{}' END,
           i % 5000,
           timestamptz '2026-11-01T00:00:00Z' + i * interval '1 second',
           timestamptz '2026-11-01T00:00:00Z' + i * interval '1 second'
    FROM generate_series(1, ${N}) AS i`.execute(stack.db);

  const baseline = liveHeap();
  let peak = baseline;
  const res = await fetch(`${stack.url}/api/v1/polls/${poll.poll_id}/votes.csv`, { headers: { authorization: `Bearer ${creator}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
  expect(res.headers.get('content-disposition')).toContain(`poll-${poll.poll_id}-votes.csv`);

  let chunks = 0;
  let readingWhilePaused = false;
  // Holds the first chunk for a moment: a streaming server is then stuck mid-cursor, a buffering one would be done.
  const counter = new Transform({
    transform(chunk, _encoding, done) {
      if (++chunks > 1) return done(null, chunk);
      setTimeout(() => exportStillReading().then((reading) => ((readingWhilePaused = reading), done(null, chunk)), done), 300);
    },
  });
  const seen = new Uint8Array(N + 1);
  let rows = 0;
  let lastCreated = '';
  const parser = parse({ columns: true });
  const check = (async () => {
    for await (const r of parser as AsyncIterable<Record<string, string>>) {
      const i = Number(r.voter_fingerprint.slice(2));
      expect(seen[i]).toBe(0);
      seen[i] = 1;
      if (++rows % 5000 === 0) peak = Math.max(peak, liveHeap());
      const expected = {
        vote_id: uuidOf(i),
        status: i % 10 === 0 ? 'SUSPICIOUS' : 'VALID',
        flag_reasons: i % 10 === 0 ? 'IP_PREFIX_VELOCITY' : '',
        selected_options: String(options[i % 3]),
        ranking: '',
        ratings: '',
        choice_texts: ['vim', 'emacs', 'nano'][i % 3],
        response_ms: String(i % 5000),
        change_count: '0',
        created_at: new Date(START + i * 1000).toISOString(),
        accepted_at: new Date(START + i * 1000).toISOString(),
        voter_id: '',
        voter_fingerprint: `fp${i}`,
        ip_address: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
        // A formula stays text in a spreadsheet: the cell starts with a quote.
        user_agent: i % 1000 === 0 ? `'${EVIL}` : `agent/${i % 7}`,
        country: '',
      };
      if (JSON.stringify(r) !== JSON.stringify(expected)) expect(r).toEqual(expected);
      expect(r.created_at >= lastCreated).toBe(true);
      lastCreated = r.created_at;
    }
  })();
  await pipeline(Readable.fromWeb(res.body as WebReadableStream), counter, parser);
  await check;

  expect(rows).toBe(N);
  expect(seen.slice(1).every((s) => s === 1)).toBe(true);
  expect(readingWhilePaused).toBe(true);
  expect(chunks).toBeGreaterThan(100);
  // The export is ~12 MB of CSV from 100,000 rows; holding the rows or the text would keep tens of MB alive.
  const growthMb = (peak - baseline) / 2 ** 20;
  console.log(`CSV export: ${chunks} chunks, heap growth ${growthMb.toFixed(1)} MB`);
  expect(growthMb).toBeLessThan(16);
  await eventually(async () => !(await exportStillReading()), 5000, 'the cursor closed');
}, 60_000);

it('an anonymous poll exports ballots without voter identity and with coarse times', async () => {
  const creator = await tokenFor(1);
  const poll = await createPoll(stack, { is_anonymous: true, settings: { captcha: 'off' } }, creator);
  const optionId = poll.options[1].option_id;
  const voter = await tokenFor(4242);
  const vote = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
    body: { options: [optionId] },
    token: voter,
    headers: { 'user-agent': 'UniqueAgent/1.0' },
  });
  expect(vote.status).toBe(202);
  await eventually(async () => (await stack.db.selectFrom('votes').select('vote_id').where('poll_id', '=', poll.poll_id).execute()).length === 1);

  const res = await call<string>(stack, 'GET', `/api/v1/polls/${poll.poll_id}/votes.csv`, { token: creator });
  expect(res.status).toBe(200);
  const [header, ...records] = await new Promise<string[][]>((resolve, reject) =>
    parse(res.body, (err, out: string[][]) => (err ? reject(err) : resolve(out))),
  );
  expect(header).toEqual([
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
  ]);
  expect(records).toHaveLength(1);
  expect(records[0].slice(0, 3)).toEqual(['VALID', '', String(optionId)]);
  expect(records[0][5]).toBe('emacs');
  expect(records[0][9]).toMatch(/T\d\d:00:00\.000Z$/);
  // The vote id is a UUIDv7: it would carry the vote's millisecond.
  expect(res.body).not.toContain(vote.body.vote_id);
  expect(res.body).not.toContain('4242');
  expect(res.body).not.toContain('UniqueAgent');
  expect(res.body).not.toContain('127.0.0.1');
});
