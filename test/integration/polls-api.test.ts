import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleJob } from '../../src/shared/queues.js';
import { createPollLifecycleProcessor } from '../../src/workers/poll-lifecycle.js';
import { call, createPoll, eventually, startStack, tokenFor, type Stack } from '../helpers/stack.js';

let stack: Stack;
let owner: string;
let stranger: string;
let admin: string;
beforeAll(async () => {
  stack = await startStack();
  owner = await tokenFor(1);
  stranger = await tokenFor(2);
  admin = await tokenFor(3, { role: 'admin' });
});
afterAll(async () => {
  await stack?.close();
});

function expectError(res: { status: number; body: any }, status: number, code: string) {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
}

const valid = { question: 'Q?', poll_type: 'SINGLE_CHOICE', options: [{ text: 'a' }, { text: 'b' }] };

describe('create', () => {
  it('needs a signed-in user', async () => {
    expectError(await call(stack, 'POST', '/api/v1/polls', { body: valid }), 401, 'AUTH_REQUIRED');
    expectError(await call(stack, 'POST', '/api/v1/polls', { body: valid, token: 'x.y.z' }), 401, 'INVALID_TOKEN');
  });
  it('rejects bad bodies with VALIDATION_ERROR naming the field', async () => {
    const cases: Array<[unknown, string | undefined]> = [
      [{ ...valid, question: '' }, 'question'],
      [{ ...valid, poll_type: 'BEST_OF' }, 'poll_type'],
      [{ ...valid, options: [{ text: 'only' }] }, 'options'],
      [{ ...valid, options: [{ text: 'a', colour: 'red' }, { text: 'b' }] }, 'options.0.colour'],
      [{ ...valid, extra: 1 }, 'extra'],
      [{ ...valid, settings: { captcha: 'off', shade: 'blue' } }, 'settings.shade'],
      [{ ...valid, end_time: 'tomorrow' }, 'end_time'],
      [{ ...valid, status: 'CLOSED' }, 'status'],
      [{ ...valid, settings: { rating_min: 5, rating_max: 1 } }, 'settings.rating_min'],
      [{ ...valid, status: 'ACTIVE', end_time: '2000-01-01T00:00:00Z' }, 'end_time'],
      [{ ...valid, visibility: 'ORGANIZATION' }, 'visibility'],
      [{ ...valid, poll_type: 'MULTIPLE_CHOICE', settings: { max_choices: 5 } }, 'settings.max_choices'],
    ];
    for (const [body, field] of cases) {
      const res = await call(stack, 'POST', '/api/v1/polls', { body, token: owner });
      expectError(res, 400, 'VALIDATION_ERROR');
      if (field) expect(res.body.error.field).toBe(field);
    }
    expectError(await call(stack, 'POST', '/api/v1/polls', { raw: '{"question":', token: owner }), 400, 'VALIDATION_ERROR');
    const notJson = { raw: JSON.stringify(valid), token: owner, headers: { 'content-type': 'text/plain' } };
    expectError(await call(stack, 'POST', '/api/v1/polls', notJson), 400, 'VALIDATION_ERROR');
    expectError(
      await call(stack, 'POST', '/api/v1/polls', { raw: JSON.stringify({ ...valid, question: 'x'.repeat(70_000) }), token: owner }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
  });
  it('returns the Poll with defaults', async () => {
    const res = await call(stack, 'POST', '/api/v1/polls', { body: valid, token: owner });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      creator_id: 1,
      question: 'Q?',
      poll_type: 'SINGLE_CHOICE',
      status: 'DRAFT',
      is_anonymous: false,
      allow_change_vote: false,
      visibility: 'PUBLIC',
      start_time: null,
      end_time: null,
      settings: { max_choices: 1, require_authentication: false, show_results_before_close: true, rating_min: 1, rating_max: 5, captcha: 'flagged' },
    });
    expect(res.body.options.map((o: any) => [o.text, o.display_order])).toEqual([
      ['a', 0],
      ['b', 1],
    ]);
    expect(res.body.access_key).toBeUndefined();
  });
});

describe('read and list', () => {
  it('GET returns the poll with a view_token; unknown ids are 404', async () => {
    const poll = await createPoll(stack);
    const res = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`);
    expect(res.status).toBe(200);
    expect(res.body.poll_id).toBe(poll.poll_id);
    expect(typeof res.body.view_token).toBe('string');
    for (const id of ['999999', '-4', 'x', '1e3']) expectError(await call(stack, 'GET', `/api/v1/polls/${id}`), 404, 'POLL_NOT_FOUND');
  });
  it('access_key only for the creator of a PRIVATE poll', async () => {
    const poll = await createPoll(stack, { visibility: 'PRIVATE' });
    expectError(await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`), 404, 'POLL_NOT_FOUND');
    const withKey = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}?key=${poll.access_key}`);
    expect(withKey.status).toBe(200);
    expect(withKey.body.access_key).toBeUndefined();
    expect((await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`, { token: owner })).body.access_key).toBe(poll.access_key);
  });
  it('lists PUBLIC non-draft polls with a cursor; creator=me lists my own', async () => {
    const mine = await tokenFor(50);
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await createPoll(stack, { question: `list ${i}` }, mine));
    await createPoll(stack, { visibility: 'PRIVATE' }, mine);
    await createPoll(stack, { status: 'DRAFT' }, mine);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await call(stack, 'GET', `/api/v1/polls?status=ACTIVE&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      for (const p of res.body.items) {
        expect(p.visibility).toBe('PUBLIC');
        expect(p.status).toBe('ACTIVE');
        seen.push(p.poll_id);
      }
      cursor = res.body.next_cursor;
    } while (cursor);
    for (const p of created) expect(seen).toContain(p.poll_id);
    expect(new Set(seen).size).toBe(seen.length);
    const own = await call(stack, 'GET', '/api/v1/polls?creator=me&limit=100', { token: mine });
    expect(own.body.items).toHaveLength(7);
    expectError(await call(stack, 'GET', '/api/v1/polls?creator=me'), 401, 'AUTH_REQUIRED');
    expectError(await call(stack, 'GET', '/api/v1/polls?limit=0'), 400, 'VALIDATION_ERROR');
    expectError(await call(stack, 'GET', '/api/v1/polls?cursor=abc'), 400, 'VALIDATION_ERROR');
  });
});

describe('edit, publish, close', () => {
  it('a DRAFT can change anything; only the creator may edit', async () => {
    const poll = await createPoll(stack, { status: 'DRAFT' });
    // A draft does not exist for anyone else.
    expectError(await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { body: { question: 'x' }, token: stranger }), 404, 'POLL_NOT_FOUND');
    expectError(await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { body: { question: 'x' } }), 401, 'AUTH_REQUIRED');
    const res = await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, {
      token: owner,
      body: { question: 'New?', poll_type: 'MULTIPLE_CHOICE', options: [{ text: 'x' }, { text: 'y' }, { text: 'z' }, { text: 'w' }], allow_change_vote: true },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ question: 'New?', poll_type: 'MULTIPLE_CHOICE', allow_change_vote: true, settings: { max_choices: 4 } });
    expect(res.body.options.map((o: any) => o.text)).toEqual(['x', 'y', 'z', 'w']);
    expectError(await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { options: 'none' } }), 400, 'VALIDATION_ERROR');
  });
  it('publish moves DRAFT to ACTIVE once', async () => {
    const poll = await createPoll(stack, { status: 'DRAFT' });
    expectError(await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/publish`, { token: stranger }), 404, 'POLL_NOT_FOUND');
    const res = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/publish`, { token: owner });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ACTIVE');
    expectError(await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/publish`, { token: owner }), 409, 'POLL_NOT_DRAFT');
  });
  it('an ACTIVE poll changes only end_time and show_results_before_close', async () => {
    const poll = await createPoll(stack);
    expectError(await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { question: 'x' } }), 400, 'VALIDATION_ERROR');
    const setting = await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { settings: { max_choices: 2 } } });
    expectError(setting, 400, 'VALIDATION_ERROR');
    expect(setting.body.error.field).toBe('settings.max_choices');
    // A body that is not JSON is refused, not read as "no changes".
    const end = new Date(Date.now() + 3_600_000).toISOString();
    const plain = await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, {
      token: owner,
      raw: JSON.stringify({ end_time: end }),
      headers: { 'content-type': 'text/plain' },
    });
    expectError(plain, 400, 'VALIDATION_ERROR');
    expect((await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`)).body.end_time).toBeNull();
    const res = await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, {
      token: owner,
      body: { end_time: end, settings: { show_results_before_close: false } },
    });
    expect(res.status).toBe(200);
    expect(res.body.end_time).toBe(end);
    expect(res.body.settings.show_results_before_close).toBe(false);
    expect(res.body.settings.captcha).toBe('flagged');
  });
  it('close by creator or admin; a closed poll cannot be edited', async () => {
    const poll = await createPoll(stack);
    expectError(await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: stranger }), 403, 'FORBIDDEN');
    const res = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: admin });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('CLOSED');
    expect((await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: owner })).status).toBe(200);
    expectError(await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { end_time: null } }), 409, 'POLL_NOT_ACTIVE');
  });
  it("edit and publish are the creator's alone, admins included", async () => {
    const poll = await createPoll(stack, { status: 'DRAFT' });
    // A stranger does not even see the draft; an admin sees it but may not change it.
    for (const [token, status, code] of [
      [stranger, 404, 'POLL_NOT_FOUND'],
      [admin, 403, 'FORBIDDEN'],
    ] as const) {
      expectError(await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token, body: { question: 'Mine now?' } }), status, code);
      expectError(await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/publish`, { token }), status, code);
    }
    const after = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`, { token: owner });
    expect({ status: after.body.status, question: after.body.question }).toEqual({ status: 'DRAFT', question: 'Best editor?' });
  });
  it('a body over 64 KiB is 413 PAYLOAD_TOO_LARGE naming the real limit', async () => {
    const res = await call(stack, 'POST', '/api/v1/polls', { token: owner, body: { ...valid, question: 'x'.repeat(70_000) } });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(res.body.error.message).toContain(String(64 * 1024));
  });
  it('a poll ending moments after it is created still closes', async () => {
    const poll = await createPoll(stack, { end_time: new Date(Date.now() + 150).toISOString() });
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`)).body.status === 'CLOSED', 10_000, 'closed at its end time');
  });
  it('a close job that finds no active poll retries while the poll may still be committing, then lets go', async () => {
    const close = createPollLifecycleProcessor({
      db: stack.db,
      redis: null as never,
      keys: null as never,
      lifecycle: null as never,
      pendingTtlMs: 0,
      voteQueues: [],
    });
    const job = (ageMs: number) =>
      ({ data: { poll_id: 2_000_000_000, end_time: new Date().toISOString() }, timestamp: Date.now() - ageMs, name: 'close-at-end' }) as Job<LifecycleJob>;
    await expect(close(job(0))).rejects.toThrow(/not active yet/);
    await expect(close(job(120_000))).resolves.toEqual({ closed: false });
  });
  it('moving end_time earlier closes the poll at the new time', async () => {
    const poll = await createPoll(stack, { end_time: new Date(Date.now() + 3_600_000).toISOString() });
    const end = new Date(Date.now() + 800).toISOString();
    expect((await call(stack, 'PATCH', `/api/v1/polls/${poll.poll_id}`, { token: owner, body: { end_time: end } })).status).toBe(200);
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`)).body.status === 'CLOSED', 10_000, 'closed at the new end time');
  });
});

describe('results', () => {
  it('hidden until close for everyone but the creator', async () => {
    const poll = await createPoll(stack, { settings: { show_results_before_close: false } });
    await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { body: { options: [poll.options[0].option_id] } });
    expectError(await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`), 403, 'RESULTS_HIDDEN');
    expectError(await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`, { token: stranger }), 403, 'RESULTS_HIDDEN');
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`, { token: owner })).body.total_votes === 1);
    await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: owner });
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`)).status === 200, 5000);
    const res = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`);
    expect(res.body).toMatchObject({ poll_id: poll.poll_id, poll_type: 'SINGLE_CHOICE', status: 'CLOSED', total_votes: 1, pending_review: 0 });
    expect(res.body.options[0]).toMatchObject({ option_id: poll.options[0].option_id, text: 'vim', vote_count: 1, percentage: 100 });
    expect(typeof res.body.updated_at).toBe('string');
  });
  it('percentages are over the sum of counts, two decimals', async () => {
    const poll = await createPoll(stack);
    const ids = poll.options.map((o) => o.option_id);
    for (const [i, opt] of [ids[0], ids[0], ids[1]].entries()) {
      await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { body: { options: [opt] }, headers: { 'user-agent': `ua${i}` } });
    }
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`)).body.total_votes === 3);
    const res = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`);
    expect(res.body.options.map((o: any) => o.percentage)).toEqual([66.67, 33.33, 0]);
  });
});
