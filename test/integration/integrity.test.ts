import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, countersAndRecount, createPoll, eventually, startStack, tokenFor, type Stack } from '../helpers/stack.js';
import { solveCaptcha } from '../helpers/captcha.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'loopback', CAPTCHA_MAX_NUMBER: '2000' } });
});
afterAll(async () => {
  await stack?.close();
});

const vote = (pollId: number, body: Record<string, unknown>, ip: string, ua = 'integrity-test') =>
  call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body, headers: { 'x-forwarded-for': ip, 'user-agent': ua } });
const results = async (pollId: number) => (await call(stack, 'GET', `/api/v1/polls/${pollId}/results`)).body;
/** A view token as the voting client (address and browser) fetches it: tokens are bound to their client. */
const viewTokenFor = async (pollId: number, ip: string, ua = 'integrity-test') =>
  (await call(stack, 'GET', `/api/v1/polls/${pollId}`, { headers: { 'x-forwarded-for': ip, 'user-agent': ua } })).body.view_token as string;

const freshSolution = async () => solveCaptcha((await call(stack, 'GET', '/api/v1/captcha/challenge')).body);

describe('IP-prefix velocity', () => {
  it('the 51st vote from one /24 flags the window, requires a CAPTCHA, and a solution works once', async () => {
    const poll = await createPoll(stack);
    const option = poll.options[0].option_id;
    for (let i = 1; i <= 50; i++) expect((await vote(poll.poll_id, { options: [option] }, `198.51.100.${i}`)).status).toBe(202);
    await eventually(async () => (await results(poll.poll_id)).total_votes === 50, 15_000, '50 counted');

    expect((await vote(poll.poll_id, { options: [option] }, '198.51.100.51')).status).toBe(202);
    await eventually(async () => (await results(poll.poll_id)).pending_review === 51, 15_000, 'window flagged');
    const after = await results(poll.poll_id);
    expect(after.total_votes).toBe(0);
    expect(after.options[0].vote_count).toBe(0);
    const c = await countersAndRecount(stack.db, poll.poll_id);
    expect(c.counters).toEqual(c.recount);
    expect(c.suspiciousVotes).toBe(51);

    const refused = await vote(poll.poll_id, { options: [option] }, '198.51.100.52');
    expect(refused.status).toBe(428);
    expect(refused.body.error.code).toBe('CAPTCHA_REQUIRED');
    expect(refused.body.error.challenge).toMatchObject({ algorithm: 'SHA-256' });

    const captcha = await solveCaptcha(refused.body.error.challenge);
    expect((await vote(poll.poll_id, { options: [option], captcha }, '198.51.100.52')).status).toBe(202);
    const replay = await vote(poll.poll_id, { options: [option], captcha }, '198.51.100.53');
    expect(replay.status).toBe(428);
    await eventually(async () => (await results(poll.poll_id)).pending_review === 52, 10_000, 'captcha vote pending');
    expect((await results(poll.poll_id)).total_votes).toBe(0);

    // Other prefixes are unaffected.
    expect((await vote(poll.poll_id, { options: [option] }, '203.0.113.9')).status).toBe(202);
    await eventually(async () => (await results(poll.poll_id)).total_votes === 1, 10_000, 'other prefix counted');

    const listed = await call(stack, 'GET', `/api/v1/admin/flagged-votes?poll_id=${poll.poll_id}&limit=100`, { token: await tokenFor(9, { role: 'admin' }) });
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(52);
    expect(listed.body.items[0]).toMatchObject({ poll_id: poll.poll_id, status: 'SUSPICIOUS', reasons: ['IP_PREFIX_VELOCITY'], user_agent: 'integrity-test' });
    expect(listed.body.items[0].ip_address).toMatch(/^198\.51\.100\./);
  });

  it('concurrent replays of one solution: exactly one is accepted', async () => {
    const poll = await createPoll(stack, { settings: { captcha: 'always' } });
    const captcha = await freshSolution();
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => vote(poll.poll_id, { options: [poll.options[0].option_id], captcha }, `192.0.2.${i + 1}`)),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([202, 428, 428, 428, 428, 428, 428, 428]);
  });

  it('the same rate spread over many prefixes is not flagged', async () => {
    const poll = await createPoll(stack);
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) => vote(poll.poll_id, { options: [poll.options[i % 3].option_id] }, `100.${64 + (i % 60)}.${i % 250}.7`)),
    );
    expect(answers.every((a) => a.status === 202)).toBe(true);
    await eventually(async () => (await results(poll.poll_id)).total_votes === 300, 15_000, '300 counted');
    expect((await results(poll.poll_id)).pending_review).toBe(0);
  });
});

describe('CAPTCHA modes', () => {
  it('`always` asks every anonymous voter, not signed-in ones', async () => {
    const poll = await createPoll(stack, { settings: { captcha: 'always' } });
    const body = { options: [poll.options[0].option_id] };
    const refused = await vote(poll.poll_id, body, '192.0.2.200');
    expect(refused.status).toBe(428);
    expect((await vote(poll.poll_id, { ...body, captcha: 'bm90IGEgc29sdXRpb24=' }, '192.0.2.200')).status).toBe(428);
    expect((await vote(poll.poll_id, { ...body, captcha: await solveCaptcha(refused.body.error.challenge) }, '192.0.2.200')).status).toBe(202);
    const signedIn = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { body, token: await tokenFor(77) });
    expect(signedIn.status).toBe(202);
    await eventually(async () => (await results(poll.poll_id)).total_votes === 2, 10_000, 'both counted as VALID');
  });
});

describe('per-IP limit', () => {
  it('past VOTES_PER_IP_PER_POLL_PER_HOUR an address steps up to a CAPTCHA (the 428 uses no point), past the hard cap 429', async () => {
    const poll = await createPoll(stack);
    const body = { options: [poll.options[0].option_id] };
    for (let i = 0; i < 10; i++) expect((await vote(poll.poll_id, body, '192.0.2.77', `browser-${i}`)).status).toBe(202);
    const stepUp = await vote(poll.poll_id, body, '192.0.2.77', 'browser-10');
    expect(stepUp.status).toBe(428);
    expect(stepUp.body.error.code).toBe('CAPTCHA_REQUIRED');
    // The 11th person behind this address is not turned away: with a solved CAPTCHA the vote counts.
    expect((await vote(poll.poll_id, { ...body, captcha: await solveCaptcha(stepUp.body.error.challenge) }, '192.0.2.77', 'browser-10')).status).toBe(202);
    await eventually(async () => (await results(poll.poll_id)).total_votes === 11, 10_000, 'eleven counted');
    // Another poll has its own budget.
    const other = await createPoll(stack);
    expect((await vote(other.poll_id, { options: [other.options[0].option_id] }, '192.0.2.77', 'browser-11')).status).toBe(202);

    const capped = await startStack({
      env: { TRUST_PROXY: 'loopback', CAPTCHA_MAX_NUMBER: '2000', VOTES_PER_IP_PER_POLL_PER_HOUR: '2', VOTES_PER_IP_PER_POLL_PER_HOUR_MAX: '4' },
    });
    try {
      const p = await createPoll(capped);
      const at = (ua: string, extra: Record<string, unknown> = {}) =>
        call(capped, 'POST', `/api/v1/polls/${p.poll_id}/votes`, {
          body: { options: [p.options[0].option_id], ...extra },
          headers: { 'x-forwarded-for': '192.0.2.78', 'user-agent': ua },
        });
      const solveHere = async () => solveCaptcha((await call(capped, 'GET', '/api/v1/captcha/challenge')).body);
      expect([(await at('a')).status, (await at('b')).status]).toEqual([202, 202]);
      // Refused for want of a CAPTCHA, again and again: none of these uses one of the address's points.
      for (let i = 0; i < 5; i++) expect((await at(`c${i}`)).status).toBe(428);
      expect((await at('c', { captcha: await solveHere() })).status).toBe(202);
      expect((await at('d', { captcha: await solveHere() })).status).toBe(202);
      const limited = await at('e', { captcha: await solveHere() });
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe('RATE_LIMITED');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(3000);
    } finally {
      await capped.close();
    }
  });

  it('requests refused by the per-IP limit do not count toward their /24 window', async () => {
    const poll = await createPoll(stack);
    const option = poll.options[0].option_id;
    for (let i = 2; i <= 6; i++) expect((await vote(poll.poll_id, { options: [option] }, `198.51.100.${i}`)).status).toBe(202);
    // One address hammers: 10 accepted, 50 asked for a CAPTCHA; 65 requests from the /24 but only 15 votes.
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await vote(poll.poll_id, { options: [option] }, '198.51.100.50', `hammer-${i}`)).status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(10);
    expect(statuses.filter((s) => s === 428)).toHaveLength(50);
    await eventually(async () => (await results(poll.poll_id)).total_votes === 15, 15_000, '15 counted');
    const c = await countersAndRecount(stack.db, poll.poll_id);
    expect({ valid: c.validVotes, suspicious: c.suspiciousVotes }).toEqual({ valid: 15, suspicious: 0 });
    // The neighbours may still vote without a CAPTCHA.
    expect((await vote(poll.poll_id, { options: [option] }, '198.51.100.7')).status).toBe(202);
  });

  it('a spoofed X-Forwarded-For without TRUST_PROXY counts against the real address', async () => {
    const direct = await startStack({ env: { VOTES_PER_IP_PER_POLL_PER_HOUR: '3' } });
    try {
      const poll = await createPoll(direct);
      const statuses = [];
      for (let i = 0; i < 5; i++) {
        const res = await call(direct, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
          body: { options: [poll.options[0].option_id] },
          headers: { 'x-forwarded-for': `203.0.113.${i}`, 'user-agent': `spoof-${i}` },
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([202, 202, 202, 428, 428]);
      await eventually(async () => (await direct.db.selectFrom('votes').select('ip_address').execute()).length === 3);
      const ips = await direct.db.selectFrom('votes').select('ip_address').execute();
      expect(new Set(ips.map((r) => r.ip_address))).toEqual(new Set(['127.0.0.1']));
    } finally {
      await direct.close();
    }
  });
});

describe('too-fast voting', () => {
  it('a vote within MIN_RESPONSE_MS of the view lands SUSPICIOUS; forged and foreign tokens are 400', async () => {
    const poll = await createPoll(stack);
    const other = await createPoll(stack);
    const view_token = await viewTokenFor(poll.poll_id, '192.0.2.31');
    const body = { options: [poll.options[0].option_id] };
    expect((await vote(poll.poll_id, { ...body, view_token }, '192.0.2.31')).status).toBe(202);

    const forged = view_token.slice(0, -3) + (view_token.endsWith('AAA') ? 'BBB' : 'AAA');
    const bad = await vote(poll.poll_id, { ...body, view_token: forged }, '192.0.2.32');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'view_token' });
    const foreign = (await call(stack, 'GET', `/api/v1/polls/${other.poll_id}`)).body.view_token;
    expect((await vote(poll.poll_id, { ...body, view_token: foreign }, '192.0.2.33')).status).toBe(400);

    const slow = await viewTokenFor(poll.poll_id, '192.0.2.34');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await vote(poll.poll_id, { ...body, view_token: slow }, '192.0.2.34')).status).toBe(202);

    await eventually(
      async () => {
        const r = await results(poll.poll_id);
        return r.total_votes === 1 && r.pending_review === 1;
      },
      10_000,
      'one fast (pending) and one slow (counted)',
    );
    const rows = await stack.db
      .selectFrom('votes')
      .select(['status', 'flag_reasons', 'response_ms'])
      .where('poll_id', '=', poll.poll_id)
      .orderBy('response_ms')
      .execute();
    expect(rows[0]).toMatchObject({ status: 'SUSPICIOUS', flag_reasons: ['TOO_FAST'] });
    expect(rows[0].response_ms).toBeLessThan(1000);
    expect(rows[1].status).toBe('VALID');
    expect(rows[1].response_ms).toBeGreaterThanOrEqual(1100);
  });
});

describe('human review', () => {
  it('VALID joins the counts once under concurrent double submission; REJECTED stays out; nothing is deleted', async () => {
    const admin = await tokenFor(1000, { role: 'admin' });
    const poll = await createPoll(stack);
    const option = poll.options[1].option_id;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const view_token = await viewTokenFor(poll.poll_id, `192.0.2.${100 + i}`);
      ids.push((await vote(poll.poll_id, { options: [option], view_token }, `192.0.2.${100 + i}`)).body.vote_id);
    }
    await eventually(async () => (await results(poll.poll_id)).pending_review === 3, 10_000, 'three pending');

    expect((await call(stack, 'POST', `/api/v1/admin/votes/${ids[0]}/review`, { body: { decision: 'VALID' } })).status).toBe(401);
    expect((await call(stack, 'POST', `/api/v1/admin/votes/${ids[0]}/review`, { body: { decision: 'VALID' }, token: await tokenFor(5) })).status).toBe(403);
    expect((await call(stack, 'POST', `/api/v1/admin/votes/${ids[0]}/review`, { body: { decision: 'MAYBE' }, token: admin })).status).toBe(400);
    expect(
      (await call(stack, 'POST', `/api/v1/admin/votes/00000000-0000-0000-0000-000000000000/review`, { body: { decision: 'VALID' }, token: admin })).status,
    ).toBe(404);

    const both = await Promise.all([
      call(stack, 'POST', `/api/v1/admin/votes/${ids[0]}/review`, { body: { decision: 'VALID', note: 'looks human' }, token: admin }),
      call(stack, 'POST', `/api/v1/admin/votes/${ids[0]}/review`, { body: { decision: 'VALID', note: 'double click' }, token: admin }),
    ]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both.filter((r) => r.body.changed)).toHaveLength(1);
    const rejected = await call(stack, 'POST', `/api/v1/admin/votes/${ids[1]}/review`, { body: { decision: 'REJECTED', note: 'bot' }, token: admin });
    expect(rejected.body).toMatchObject({ vote_id: ids[1], status: 'REJECTED', previous_status: 'SUSPICIOUS', decided_by: 1000, note: 'bot' });

    await eventually(
      async () => {
        const r = await results(poll.poll_id);
        return r.total_votes === 1 && r.pending_review === 1;
      },
      5000,
      'one accepted, one rejected, one pending',
    );
    const c = await countersAndRecount(stack.db, poll.poll_id);
    expect(c.counters).toEqual(c.recount);
    expect(c.counters[option]).toBe(1);
    expect(await stack.db.selectFrom('votes').select('vote_id').where('poll_id', '=', poll.poll_id).execute()).toHaveLength(3);
    const audit = await stack.db.selectFrom('vote_reviews').selectAll().where('poll_id', '=', poll.poll_id).orderBy('review_id').execute();
    expect(audit.map((a) => [a.vote_id, a.decision, a.reviewer_id])).toEqual([
      [ids[0], 'VALID', 1000],
      [ids[0], 'VALID', 1000],
      [ids[1], 'REJECTED', 1000],
    ]);
    const stillFlagged = await call(stack, 'GET', `/api/v1/admin/flagged-votes?poll_id=${poll.poll_id}`, { token: admin });
    expect(stillFlagged.body.items.map((v: any) => v.vote_id)).toEqual([ids[2]]);
    const rejectedList = await call(stack, 'GET', `/api/v1/admin/flagged-votes?poll_id=${poll.poll_id}&status=REJECTED`, { token: admin });
    expect(rejectedList.body.items.map((v: any) => v.vote_id)).toEqual([ids[1]]);
  });

  it('pages through flagged votes with a cursor', async () => {
    const admin = await tokenFor(1000, { role: 'admin' });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await call(stack, 'GET', `/api/v1/admin/flagged-votes?limit=7${cursor ? `&cursor=${cursor}` : ''}`, { token: admin });
      expect(res.status).toBe(200);
      seen.push(...res.body.items.map((v: any) => v.vote_id));
      cursor = res.body.next_cursor;
    } while (cursor);
    const { n } = await stack.db
      .selectFrom('votes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'SUSPICIOUS')
      .executeTakeFirstOrThrow();
    expect(seen).toHaveLength(Number(n));
    expect(new Set(seen).size).toBe(seen.length);
    expect((await call(stack, 'GET', '/api/v1/admin/flagged-votes?cursor=garbage', { token: admin })).status).toBe(400);
    const unknown = await call(stack, 'GET', '/api/v1/admin/no-such-thing', { token: admin });
    expect({ status: unknown.status, code: unknown.body.error.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
  });
});

describe('client address', () => {
  it('a forwarded entry that is not an address falls back to the socket address', async () => {
    const poll = await createPoll(stack);
    expect((await vote(poll.poll_id, { options: [poll.options[0].option_id] }, 'not-an-ip')).status).toBe(202);
    await eventually(async () => (await results(poll.poll_id)).total_votes === 1, 10_000, 'counted');
    const row = await stack.db.selectFrom('votes').select('ip_address').where('poll_id', '=', poll.poll_id).executeTakeFirstOrThrow();
    expect(row.ip_address).toBe('127.0.0.1');
  });
});
