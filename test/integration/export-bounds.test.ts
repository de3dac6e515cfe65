import http from 'node:http';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExportDb } from '../../src/db/analytics.js';
import { call, createPoll, eventually, startStack, tokenFor, type Stack } from '../helpers/stack.js';

/**
 * CSV exports cannot be starved: each is bounded (a client that reads nothing is let go, the
 * whole export has a statement timeout), and one caller runs at most EXPORTS_PER_CALLER at once.
 */
let stack: Stack;
let creator: string;
let admin: string;
let pollId: number;
beforeAll(async () => {
  // One export connection per process: an export that is never let go would starve the next one.
  stack = await startStack({ workers: false, env: { EXPORTS_PER_CALLER: '1', EXPORT_IDLE_MS: '1500', EXPORT_POOL_SIZE: '1' } });
  creator = await tokenFor(31);
  admin = await tokenFor(32, { role: 'admin' });
  const poll = await createPoll(stack, {}, creator);
  pollId = poll.poll_id;
  // Far more CSV than socket buffers hold, so a client that reads nothing stalls the export.
  await sql`
    INSERT INTO votes (vote_id, poll_id, voter_key, seq, selected_options, counted_options, user_agent, accepted_at)
    SELECT gen_random_uuid(), ${pollId}, 'k' || g, 1, ARRAY[${poll.options[0].option_id}]::bigint[], ARRAY[${poll.options[0].option_id}]::bigint[], repeat('x', 500), now()
    FROM generate_series(1, 40000) g`.execute(stack.db);
});
afterAll(async () => {
  await stack?.close();
});

/** An export whose client takes the headers and then reads nothing. */
function stalledExport(token: string) {
  const url = new URL(`${stack.url}/api/v1/polls/${pollId}/votes.csv`);
  let req!: http.ClientRequest;
  const headers = new Promise<http.IncomingMessage>((resolve, reject) => {
    req = http.get(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.pause();
      resolve(res);
    });
    req.on('error', reject);
  });
  return { headers, abort: () => req.destroy() };
}

async function fullExport(token: string) {
  const res = await fetch(`${stack.url}/api/v1/polls/${pollId}/votes.csv`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text };
}

describe('CSV exports', () => {
  it('allow one caller EXPORTS_PER_CALLER at once (429 with Retry-After), others go on', async () => {
    const first = stalledExport(creator);
    expect((await first.headers).statusCode).toBe(200);
    const second = await call(stack, 'GET', `/api/v1/polls/${pollId}/votes.csv`, { token: creator });
    expect({ status: second.status, code: second.body?.error?.code }).toEqual({ status: 429, code: 'RATE_LIMITED' });
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    first.abort();
    // Its slot and its connection are free once it ended.
    await eventually(async () => (await fullExport(creator)).status === 200, 10_000, 'the creator exporting again');
    const full = await fullExport(admin);
    expect(full.status).toBe(200);
    expect(full.body.trim().split('\n')).toHaveLength(40_001);
  });

  it('let go of a client that reads nothing, freeing its slot and its connection', async () => {
    const stalled = stalledExport(creator);
    try {
      expect((await stalled.headers).statusCode).toBe(200);
      expect((await call(stack, 'GET', `/api/v1/polls/${pollId}/votes.csv`, { token: creator })).status).toBe(429);
      // The server lets it go after EXPORT_IDLE_MS (our paused client cannot even notice): the
      // same caller's slot and the one export connection are free, and the next export runs to its end.
      let next: Awaited<ReturnType<typeof fullExport>> | null = null;
      await eventually(async () => (next = await fullExport(creator)).status === 200, 15_000, 'the next export');
      expect(next!.body.trim().split('\n')).toHaveLength(40_001);
    } finally {
      stalled.abort();
    }
  });

  it('run under a statement timeout on their own pool', async () => {
    const db = createExportDb(stack.config.DATABASE_URL, 1, 400);
    try {
      const { rows } = await sql<{ statement_timeout: string }>`SHOW statement_timeout`.execute(db);
      expect(rows[0].statement_timeout).toBe('400ms');
      await expect(sql`SELECT pg_sleep(3)`.execute(db)).rejects.toThrow(/statement timeout/);
    } finally {
      await db.destroy();
    }
  });
});
