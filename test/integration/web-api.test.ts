import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealtime as startGatewayOn, type RealtimeHandle } from '../../src/realtime/gateway.js';
import { createLogger } from '../../src/shared/logger.js';
import { startRealtime, watch } from '../helpers/realtime.js';
import { call, countersAndRecount, createPoll, eventually, freePort, startStack, tokenFor, type Stack } from '../helpers/stack.js';

/**
 * What the web pages need from the API and the gateway, at the HTTP and WebSocket level: embed
 * origins, a poll's own review queue with bulk decisions, a voter's own vote status, hidden
 * results revealed to a held socket, /ws through the API, and option texts in the export.
 */

let stack: Stack;
/** A gateway the tests watch directly. */
let gateway: RealtimeHandle;
/** The gateway the API forwards /ws to (REALTIME_UPSTREAM_URL). */
let upstream: RealtimeHandle;
let upstreamPort: number;
let owner: string;

const startUpstream = () => startGatewayOn(stack.config, createLogger('silent', 'test-upstream'), upstreamPort);

beforeAll(async () => {
  upstreamPort = await freePort();
  stack = await startStack({
    env: {
      REALTIME_UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}`,
      TRUST_PROXY: 'loopback',
      MIN_RESPONSE_MS: '0',
      PREFIX_VOTES_LIMIT: '3',
      PREFIX_WINDOW_SECONDS: '300',
    },
  });
  gateway = await startRealtime(stack.config);
  upstream = await startUpstream();
  owner = await tokenFor(7);
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
  await stack?.close();
});

const vote = (pollId: number, body: Record<string, unknown>, ip: string, headers: Record<string, string> = {}) =>
  call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body, headers: { 'x-forwarded-for': ip, ...headers } });

/** Votes from one /24 past PREFIX_VOTES_LIMIT: every one of them is held. */
async function burst(pollId: number, ballots: Array<Record<string, unknown>>, net: string) {
  for (const [i, b] of ballots.entries()) expect((await vote(pollId, b, `${net}.${i + 1}`)).status).toBe(202);
  await eventually(
    async () => (await call(stack, 'GET', `/api/v1/polls/${pollId}/results`, { token: owner })).body.pending_review === ballots.length,
    15_000,
    'the burst held',
  );
}

describe('settings.embed_origins', () => {
  it('defaults to [], keeps origins (normalised, deduplicated) and refuses anything else', async () => {
    expect((await createPoll(stack, {}, owner)).settings.embed_origins).toEqual([]);
    const poll = await createPoll(stack, { settings: { embed_origins: ['https://News.Example:443', 'https://news.example', 'http://localhost:8080'] } }, owner);
    expect(poll.settings.embed_origins).toEqual(['https://news.example', 'http://localhost:8080']);
    for (const bad of [
      'https://news.example/path',
      'news.example',
      'ftp://x.example',
      'https://',
      'javascript:alert(1)',
      '*',
      "https://a.example 'unsafe-inline'",
    ]) {
      const res = await call(stack, 'POST', '/api/v1/polls', {
        token: owner,
        body: { question: 'q', poll_type: 'SINGLE_CHOICE', options: [{ text: 'a' }, { text: 'b' }], settings: { embed_origins: [bad] } },
      });
      expect(res.status, bad).toBe(400);
      expect(res.body.error.field, bad).toBe('settings.embed_origins.0');
    }
  });

  it('can change while the poll is open (other settings still cannot)', async () => {
    const poll = await createPoll(stack, {}, owner);
    const res = await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { settings: { embed_origins: ['https://blog.example'] } } });
    expect(res.status).toBe(200);
    expect(res.body.settings).toMatchObject({ embed_origins: ['https://blog.example'], captcha: 'flagged', show_results_before_close: true });
    const csp = (await call<string>(stack, 'GET', `/embed/polls/${poll.poll_id}`)).headers.get('content-security-policy');
    expect(csp).toContain("frame-ancestors 'self' https://blog.example");
    const refused = await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { settings: { captcha: 'off' } } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.field).toBe('settings.captcha');
  });
});

describe("a poll's own review queue", () => {
  it('lists held ballots with their choice, reasons, prefix and time; creators and admins only', async () => {
    const poll = await createPoll(stack, { options: [{ text: 'a' }, { text: 'b' }], settings: { captcha: 'off' } }, owner);
    const [a, b] = poll.options.map((o) => o.option_id);
    await burst(poll.poll_id, [{ options: [a] }, { options: [b] }, { options: [a] }, { options: [b] }], '203.0.113');
    const res = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/flagged-votes?limit=3`, { token: owner });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body.pending_review).toBe(4);
    expect(res.body.prefixes).toEqual([{ prefix: '203.0.113.0/24', count: 4 }]);
    expect(res.body.items).toHaveLength(3);
    expect(res.body.items[0]).toMatchObject({
      status: 'SUSPICIOUS',
      reasons: ['IP_PREFIX_VELOCITY'],
      options: [a],
      ranking: null,
      ratings: null,
      ip_prefix: '203.0.113.0/24',
    });
    expect(res.body.items[0]).not.toHaveProperty('ip_address');
    const next = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/flagged-votes?limit=3&cursor=${res.body.next_cursor}`, { token: owner });
    expect(next.body.items.map((v: { options: number[] }) => v.options)).toEqual([[b]]);
    expect(next.body.next_cursor).toBeNull();
    const narrowed = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/flagged-votes?prefix=198.51.100.0/24`, { token: owner });
    expect(narrowed.body.items).toEqual([]);

    expect((await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/flagged-votes`, { token: await tokenFor(1, { role: 'admin' }) })).status).toBe(200);
    expect((await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/flagged-votes`, { token: await tokenFor(8) })).body.error.code).toBe('FORBIDDEN');
    expect((await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/flagged-votes`)).body.error.code).toBe('AUTH_REQUIRED');
    expect(
      (
        await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/flagged-votes/review`, {
          token: await tokenFor(8),
          body: { decision: 'VALID', prefix: '203.0.113.0/24' },
        })
      ).status,
    ).toBe(403);
    // Someone else's PRIVATE poll without its key: no such poll, whatever the id.
    const hidden = await createPoll(stack, { visibility: 'PRIVATE' }, owner);
    expect((await call(stack, 'GET', `/api/v1/polls/${hidden.poll_id}/flagged-votes`, { token: await tokenFor(8) })).body.error.code).toBe('POLL_NOT_FOUND');
    expect((await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/flagged-votes?prefix=nope`, { token: owner })).body.error.field).toBe('prefix');
  });

  it('hides who voted on anonymous polls (no User-Agent, times to the minute)', async () => {
    const poll = await createPoll(stack, { is_anonymous: true, settings: { captcha: 'off' } }, owner);
    await burst(
      poll.poll_id,
      [1, 2, 3, 4].map(() => ({ options: [poll.options[0].option_id] })),
      '198.51.100',
    );
    const res = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/flagged-votes`, { token: owner });
    for (const v of res.body.items) {
      expect(v.user_agent).toBeNull();
      expect(new Date(v.created_at).getSeconds()).toBe(0);
    }
  });

  it('approves a whole prefix in one go, moving ranked and rating counts exactly once, even when two reviewers race', async () => {
    const ranked = await createPoll(
      stack,
      { poll_type: 'RANKED', options: [{ text: 'x' }, { text: 'y' }, { text: 'z' }], settings: { captcha: 'off' } },
      owner,
    );
    const [x, y, z] = ranked.options.map((o) => o.option_id);
    const ballots = [[x, y], [y, x], [x], [z, y], [x, z, y]];
    await burst(
      ranked.poll_id,
      ballots.map((ranking) => ({ ranking })),
      '192.0.2',
    );
    const before = await call(stack, 'GET', `/api/v1/polls/${ranked.poll_id}/results`, { token: owner });
    expect(before.body.total_votes).toBe(0);
    const review = () =>
      call(stack, 'POST', `/api/v1/polls/${ranked.poll_id}/flagged-votes/review`, {
        token: owner,
        body: { decision: 'VALID', prefix: '192.0.2.0/24', note: 'a class voting together' },
      });
    const [first, second] = await Promise.all([review(), review()]);
    expect([first.status, second.status]).toEqual([200, 200]);
    // One reviewer moved all five, the other found them decided (or found nothing left to take).
    expect(first.body.changed + second.body.changed).toBe(5);
    for (const r of [first.body, second.body]) expect(r).toMatchObject({ decision: 'VALID', remaining: 0, pending_review: 0, not_found: [] });
    // (Results are micro-cached for 200 ms.)
    await eventually(
      async () => (await call(stack, 'GET', `/api/v1/polls/${ranked.poll_id}/results`, { token: owner })).body.total_votes === 5,
      5000,
      'the approved votes counted',
    );
    const after = await call(stack, 'GET', `/api/v1/polls/${ranked.poll_id}/results`, { token: owner });
    expect(after.body.total_votes).toBe(5);
    expect(after.body.pending_review).toBe(0);
    expect(after.body.ranked.rounds[0].tallies).toEqual({ [x]: 3, [y]: 1, [z]: 1 });
    expect(after.body.ranked.winner).toBe(x);
    const counts = await countersAndRecount(stack.db, ranked.poll_id);
    expect(counts.counters).toEqual(counts.recount);

    const rating = await createPoll(stack, { poll_type: 'RATING', options: [{ text: 'r' }], settings: { captcha: 'off' } }, owner);
    const r = rating.options[0].option_id;
    await burst(
      rating.poll_id,
      [5, 4, 4, 1].map((v) => ({ ratings: { [r]: v } })),
      '192.0.3',
    );
    const queue = await call(stack, 'GET', `/api/v1/polls/${rating.poll_id}/flagged-votes`, { token: owner });
    const ids = queue.body.items.map((v: { vote_id: string }) => v.vote_id);
    const missing = '01890000-0000-7000-8000-000000000000';
    const some = await call(stack, 'POST', `/api/v1/polls/${rating.poll_id}/flagged-votes/review`, {
      token: owner,
      body: { decision: 'VALID', vote_ids: [...ids.slice(0, 3), missing] },
    });
    expect(some.body).toMatchObject({ reviewed: 3, changed: 3, not_found: [missing], pending_review: 1 });
    const rejected = await call(stack, 'POST', `/api/v1/polls/${rating.poll_id}/flagged-votes/review`, {
      token: owner,
      body: { decision: 'REJECTED', prefix: '192.0.3.0/24' },
    });
    expect(rejected.body).toMatchObject({ reviewed: 1, changed: 1, pending_review: 0 });
    await eventually(
      async () => (await call(stack, 'GET', `/api/v1/polls/${rating.poll_id}/results`, { token: owner })).body.rating.options[0].count === 3,
      5000,
      'the approved ratings counted',
    );
    const results = await call(stack, 'GET', `/api/v1/polls/${rating.poll_id}/results`, { token: owner });
    expect(results.body.rating.options[0]).toMatchObject({ count: 3, histogram: { '1': 0, '2': 0, '3': 0, '4': 2, '5': 1 } });
    // Rejecting one already counted takes it out again, exactly.
    const undo = await call(stack, 'POST', `/api/v1/polls/${rating.poll_id}/flagged-votes/review`, {
      token: owner,
      body: { decision: 'REJECTED', vote_ids: [ids[0]] },
    });
    expect(undo.body).toMatchObject({ reviewed: 1, changed: 1 });
    // (Results are micro-cached for 200 ms.)
    await eventually(
      async () => (await call(stack, 'GET', `/api/v1/polls/${rating.poll_id}/results`, { token: owner })).body.rating.options[0].count === 2,
      5000,
      'one fewer',
    );

    expect((await call(stack, 'POST', `/api/v1/polls/${rating.poll_id}/flagged-votes/review`, { token: owner, body: { decision: 'VALID' } })).status).toBe(400);
    expect(
      (
        await call(stack, 'POST', `/api/v1/polls/${rating.poll_id}/flagged-votes/review`, {
          token: owner,
          body: { decision: 'VALID', prefix: '10.0.0.0/8', vote_ids: [missing] },
        })
      ).status,
    ).toBe(400);
  });
});

describe('GET /api/v1/polls/:id/my-vote', () => {
  it('tells a voter what became of their own vote: nothing yet, counted, or under review', async () => {
    const poll = await createPoll(stack, { settings: { captcha: 'off' } }, owner);
    const me = { 'user-agent': 'test-browser/1' };
    const mine = (ip: string, fp = 'fp-1') =>
      call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/my-vote?fingerprint=${fp}`, { headers: { ...me, 'x-forwarded-for': ip } });
    expect((await mine('100.64.1.1')).body).toEqual({ poll_id: poll.poll_id, status: 'NONE', voted_at: null });
    expect((await vote(poll.poll_id, { options: [poll.options[0].option_id], fingerprint: 'fp-1' }, '100.64.1.1', me)).status).toBe(202);
    await eventually(async () => (await mine('100.64.1.1')).body.status === 'COUNTED', 10_000, 'the vote counted');
    // Another browser on the same address is another voter.
    expect((await mine('100.64.1.1', 'fp-2')).body.status).toBe('NONE');
    // Signed in: the user.
    const user = await tokenFor(99);
    expect((await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { token: user, body: { options: [poll.options[1].option_id] } })).status).toBe(
      202,
    );
    await eventually(
      async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/my-vote`, { token: user })).body.status === 'COUNTED',
      10_000,
      'the signed-in vote',
    );
    // A burst: the vote that crosses the limit, and the ones before it, are under review.
    for (let i = 1; i <= 4; i++)
      expect((await vote(poll.poll_id, { options: [poll.options[0].option_id], fingerprint: 'fp-1' }, `100.64.2.${i}`, me)).status).toBe(202);
    await eventually(async () => (await mine('100.64.2.4')).body.status === 'UNDER_REVIEW', 10_000, 'held');
    await eventually(async () => (await mine('100.64.2.1')).body.status === 'UNDER_REVIEW', 10_000, 'held afterwards');
    const priv = await createPoll(stack, { visibility: 'PRIVATE' }, owner);
    expect((await call(stack, 'GET', `/api/v1/polls/${priv.poll_id}/my-vote`)).status).toBe(404);
    expect((await call(stack, 'GET', `/api/v1/polls/${priv.poll_id}/my-vote?key=${priv.access_key}`)).body.status).toBe('NONE');
  });
});

describe('hidden results on a held socket (hidden=wait)', () => {
  it('holds the socket, says the results are hidden, and sends the final results at the close', async () => {
    const poll = await createPoll(stack, { settings: { show_results_before_close: false } }, owner);
    // The contract's default stays: without the opt-in, 4403 RESULTS_HIDDEN.
    expect(await watch(gateway, { poll_id: poll.poll_id }).ended).toEqual({ code: 4403, reason: 'RESULTS_HIDDEN' });
    const held = watch(gateway, { poll_id: poll.poll_id, hidden: 'wait' });
    expect(await held.waitFor(() => true)).toEqual({ type: 'hidden', poll_id: poll.poll_id, reason: 'RESULTS_HIDDEN' });
    expect((await vote(poll.poll_id, { options: [poll.options[0].option_id] }, '100.64.3.1')).status).toBe(202);
    await eventually(
      async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`, { token: owner })).body.total_votes === 1,
      10_000,
      'counted',
    );
    await new Promise((r) => setTimeout(r, 700));
    // Nothing of the counts leaked before the close.
    expect(held.messages.map((m) => m.body.type)).toEqual(['hidden']);
    expect((await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: owner })).status).toBe(200);
    const final = await held.waitFor((m) => m.type === 'results' && m.final, 10_000, 'the reveal');
    expect(final.total_votes).toBe(1);
    expect(final.counts[poll.options[0].option_id]).toBe(1);
    held.close();
  });

  it('reveals at once when the creator shows results before the close, and holds again when hidden again', async () => {
    const poll = await createPoll(stack, { settings: { show_results_before_close: false } }, owner);
    const held = watch(gateway, { poll_id: poll.poll_id, hidden: 'wait' });
    await held.waitFor((m) => m.type === 'hidden');
    expect(
      (await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { settings: { show_results_before_close: true } } })).status,
    ).toBe(200);
    const shown = await held.waitFor((m) => m.type === 'results', 10_000, 'shown');
    expect(shown.final).toBe(false);
    expect(
      (await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { settings: { show_results_before_close: false } } })).status,
    ).toBe(200);
    await eventually(async () => held.messages.filter((m) => m.body.type === 'hidden').length === 2, 10_000, 'hidden again');
    held.close();
  });
});

describe('/ws through the API', () => {
  it('forwards the upgrade to the gateway, passes its refusals on, and answers 502 without a gateway', async () => {
    const poll = await createPoll(stack, {}, owner);
    const viaApi = watch(stack, { poll_id: poll.poll_id });
    const first = await viaApi.waitFor((m) => m.type === 'results');
    expect(first.poll_id).toBe(poll.poll_id);
    expect((await vote(poll.poll_id, { options: [poll.options[1].option_id] }, '100.64.4.1')).status).toBe(202);
    await viaApi.waitFor((m) => m.total_votes === 1, 10_000, 'the vote, live');
    viaApi.close();
    // The gateway's own answers come back as they are.
    expect(await watch(stack, { poll_id: 999_999 }).ended).toEqual({ code: 4404, reason: 'POLL_NOT_FOUND' });
    const notWs = await fetch(`${stack.url}/ws?poll_id=1`);
    expect(notWs.status).toBe(404);
    const wrongPath = watch({ url: `${stack.url}/nope` } as never, { poll_id: 1 });
    expect((await wrongPath.ended).status).toBe(404);
    await upstream.close();
    expect((await watch(stack, { poll_id: poll.poll_id }).ended).status).toBe(502);
    upstream = await startUpstream();
  });
});

describe('the vote export', () => {
  it('carries the ballots in option texts', async () => {
    const poll = await createPoll(stack, { poll_type: 'RANKED', options: [{ text: 'Fish, chips' }, { text: 'Pie' }] }, owner);
    const [fish, pie] = poll.options.map((o) => o.option_id);
    expect((await vote(poll.poll_id, { ranking: [pie, fish] }, '100.64.5.1')).status).toBe(202);
    const rating = await createPoll(stack, { poll_type: 'RATING', options: [{ text: 'Service' }, { text: 'Food' }] }, owner);
    expect((await vote(rating.poll_id, { ratings: { [rating.options[0].option_id]: 4, [rating.options[1].option_id]: 2 } }, '100.64.5.2')).status).toBe(202);
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${rating.poll_id}/results`)).body.total_votes === 1, 10_000, 'counted');
    const csv = async (id: number) =>
      parse((await call<string>(stack, 'GET', `/api/v1/polls/${id}/votes.csv`, { token: owner })).body, { columns: true }) as Array<Record<string, string>>;
    expect((await csv(poll.poll_id)).map((r) => r.choice_texts)).toEqual(['1. Pie; 2. Fish, chips']);
    expect((await csv(rating.poll_id)).map((r) => r.choice_texts)).toEqual(['Service: 4; Food: 2']);
  });
});
