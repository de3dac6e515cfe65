import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createPoll, eventually, startStack, tokenFor, voteQueuesIdle, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

const vote = (pollId: number | string, body: unknown, opts: Parameters<typeof call>[3] = {}) =>
  call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body, ...opts });

function expectError(res: { status: number; body: any }, status: number, code: string) {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(typeof res.body.error.message).toBe('string');
  expect(JSON.stringify(res.body)).not.toMatch(/\.ts:\d|SELECT |"stack"/);
}

describe('vote body and path errors', () => {
  let poll: Awaited<ReturnType<typeof createPoll>>;
  beforeAll(async () => {
    poll = await createPoll(stack);
  });

  it('malformed JSON is VALIDATION_ERROR', async () => {
    expectError(await vote(poll.poll_id, undefined, { raw: '{"options": [1,' }), 400, 'VALIDATION_ERROR');
  });
  it('a non-JSON content type is VALIDATION_ERROR', async () => {
    expectError(await vote(poll.poll_id, undefined, { raw: 'options=1', headers: { 'content-type': 'text/plain' } }), 400, 'VALIDATION_ERROR');
  });
  it('wrong types are VALIDATION_ERROR naming the field', async () => {
    const res = await vote(poll.poll_id, { options: ['1'] });
    expectError(res, 400, 'VALIDATION_ERROR');
    expect(res.body.error.field).toBe('options.0');
    expectError(await vote(poll.poll_id, { options: 5 }), 400, 'VALIDATION_ERROR');
    expectError(await vote(poll.poll_id, [1]), 400, 'VALIDATION_ERROR');
    expectError(await vote(poll.poll_id, { options: [1.5] }), 400, 'VALIDATION_ERROR');
    expectError(await vote(poll.poll_id, { options: [poll.options[0].option_id], fingerprint: 'x'.repeat(129) }), 400, 'VALIDATION_ERROR');
  });
  it('unknown fields are VALIDATION_ERROR', async () => {
    const res = await vote(poll.poll_id, { options: [poll.options[0].option_id], weight: 100 });
    expectError(res, 400, 'VALIDATION_ERROR');
  });
  it('the wrong selection field for the poll type is VALIDATION_ERROR', async () => {
    expectError(await vote(poll.poll_id, { ranking: [poll.options[0].option_id] }), 400, 'VALIDATION_ERROR');
    expectError(await vote(poll.poll_id, {}), 400, 'VALIDATION_ERROR');
  });
  it('negative and huge option ids are VALIDATION_ERROR', async () => {
    expectError(await vote(poll.poll_id, { options: [-3] }), 400, 'VALIDATION_ERROR');
    expectError(await vote(poll.poll_id, { options: [0] }), 400, 'VALIDATION_ERROR');
    expectError(await vote(poll.poll_id, undefined, { raw: '{"options": [123456789012345678901234567890]}' }), 400, 'VALIDATION_ERROR');
  });
  it('an option of another poll or no poll is INVALID_OPTION', async () => {
    const other = await createPoll(stack);
    expectError(await vote(poll.poll_id, { options: [other.options[0].option_id] }), 400, 'INVALID_OPTION');
    expectError(await vote(poll.poll_id, { options: [9_007_199_254_740_991] }), 400, 'INVALID_OPTION');
  });
  it('selection rules are INVALID_SELECTION', async () => {
    const [a, b] = poll.options.map((o) => o.option_id);
    expectError(await vote(poll.poll_id, { options: [a, b] }), 400, 'INVALID_SELECTION');
    expectError(await vote(poll.poll_id, { options: [] }), 400, 'INVALID_SELECTION');
    expectError(await vote(poll.poll_id, { options: [a, a] }), 400, 'INVALID_SELECTION');
  });
  it('oversized bodies are PAYLOAD_TOO_LARGE', async () => {
    const res = await vote(poll.poll_id, { options: [poll.options[0].option_id], fingerprint: 'x'.repeat(20_000) });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
  });
  it('bad, negative, huge and unknown poll ids are POLL_NOT_FOUND', async () => {
    for (const id of ['abc', '-1', '0', '99999999999999999999', '123456789']) {
      expectError(await vote(id, { options: [1] }), 404, 'POLL_NOT_FOUND');
    }
  });
});

describe('bad input', () => {
  /** Everything a vote could have moved: the poll's rows of every counting table, its own row, and the votes table as a whole. */
  async function snapshot(pollId: number) {
    const db = stack.db;
    return {
      votes: await db.selectFrom('votes').selectAll().where('poll_id', '=', pollId).orderBy('vote_id').execute(),
      allVotes: (
        await db
          .selectFrom('votes')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
      results: await db.selectFrom('vote_results').selectAll().where('poll_id', '=', pollId).orderBy(['shard', 'option_id']).execute(),
      tallies: await db.selectFrom('poll_tallies').selectAll().where('poll_id', '=', pollId).orderBy('shard').execute(),
      poll: await db
        .selectFrom('polls')
        .select(['status', 'updated_at', 'closed_at', 'results_final_at'])
        .where('poll_id', '=', pollId)
        .executeTakeFirstOrThrow(),
      api: (await call(stack, 'GET', `/api/v1/polls/${pollId}/results`)).body,
    };
  }

  it('changes nothing: every refusal carries its code, and no row, counter or claim moves', async () => {
    const poll = await createPoll(stack);
    const other = await createPoll(stack);
    const [a, b] = poll.options.map((o) => o.option_id);
    // A counted vote first, so that counters exist that a bad input could move.
    expect((await vote(poll.poll_id, { options: [b] }, { headers: { 'user-agent': 'good-voter' } })).status).toBe(202);
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`)).body.total_votes === 1, 15_000, 'the good vote counted');
    await eventually(() => voteQueuesIdle(stack), 15_000, 'vote queues idle');
    const before = await snapshot(poll.poll_id);
    expect(before.votes).toHaveLength(1);
    expect(before.tallies.reduce((n, t) => n + Number(t.total_votes), 0)).toBe(1);

    // All from one voter, who has not voted yet: a refusal must not leave them a claim either.
    const voter = { 'user-agent': 'bad-input-voter' };
    const bad: Array<[string, number | string, NonNullable<Parameters<typeof call>[3]>, number, string]> = [
      ['malformed JSON', poll.poll_id, { raw: '{"options": [1,' }, 400, 'VALIDATION_ERROR'],
      ['a non-JSON content type', poll.poll_id, { raw: 'options=1', headers: { 'content-type': 'text/plain' } }, 400, 'VALIDATION_ERROR'],
      ['an option id as a string', poll.poll_id, { body: { options: [String(a)] } }, 400, 'VALIDATION_ERROR'],
      ['options not an array', poll.poll_id, { body: { options: a } }, 400, 'VALIDATION_ERROR'],
      ['an array body', poll.poll_id, { body: [a] }, 400, 'VALIDATION_ERROR'],
      ['an unknown field', poll.poll_id, { body: { options: [a], weight: 100 } }, 400, 'VALIDATION_ERROR'],
      ['the wrong selection field', poll.poll_id, { body: { ranking: [a] } }, 400, 'VALIDATION_ERROR'],
      ['no selection', poll.poll_id, { body: {} }, 400, 'VALIDATION_ERROR'],
      ['a negative option id', poll.poll_id, { body: { options: [-3] } }, 400, 'VALIDATION_ERROR'],
      ['a huge option id', poll.poll_id, { raw: '{"options": [123456789012345678901234567890]}' }, 400, 'VALIDATION_ERROR'],
      ['an option of another poll', poll.poll_id, { body: { options: [other.options[0].option_id] } }, 400, 'INVALID_OPTION'],
      ['two options on a single-choice poll', poll.poll_id, { body: { options: [a, b] } }, 400, 'INVALID_SELECTION'],
      ['no option', poll.poll_id, { body: { options: [] } }, 400, 'INVALID_SELECTION'],
      ['one option twice', poll.poll_id, { body: { options: [a, a] } }, 400, 'INVALID_SELECTION'],
      ['an oversized body', poll.poll_id, { body: { options: [a], fingerprint: 'x'.repeat(20_000) } }, 413, 'PAYLOAD_TOO_LARGE'],
      ['a malformed poll id', 'abc', { body: { options: [a] } }, 404, 'POLL_NOT_FOUND'],
      ['an unused poll id', '123456789', { body: { options: [a] } }, 404, 'POLL_NOT_FOUND'],
    ];
    for (const [what, pollId, opts, status, code] of bad) {
      const res = await vote(pollId, undefined, { ...opts, headers: { ...voter, ...opts.headers } });
      expect({ what, status: res.status, code: res.body?.error?.code }).toEqual({ what, status, code });
    }

    await eventually(() => voteQueuesIdle(stack), 15_000, 'vote queues idle');
    expect(await snapshot(poll.poll_id)).toEqual(before);
    // No claim was left behind: the same voter's first good vote is accepted as new.
    const good = await vote(poll.poll_id, { options: [a] }, { headers: voter });
    expect({ status: good.status, changed: good.body.changed }).toEqual({ status: 202, changed: false });
  });
});

describe('poll type rules', () => {
  it('MULTIPLE_CHOICE takes 1..max_choices distinct options', async () => {
    const poll = await createPoll(stack, {
      poll_type: 'MULTIPLE_CHOICE',
      options: [{ text: 'a' }, { text: 'b' }, { text: 'c' }, { text: 'd' }],
      settings: { max_choices: 2 },
    });
    const [a, b, c] = poll.options.map((o) => o.option_id);
    expectError(await vote(poll.poll_id, { options: [a, b, c] }), 400, 'INVALID_SELECTION');
    expectError(await vote(poll.poll_id, { options: [a, a] }), 400, 'INVALID_SELECTION');
    expect((await vote(poll.poll_id, { options: [b, a] })).status).toBe(202);
  });
  it('RANKED takes a distinct prefix of the options', async () => {
    const poll = await createPoll(stack, { poll_type: 'RANKED' });
    const [a, b, c] = poll.options.map((o) => o.option_id);
    expectError(await vote(poll.poll_id, { ranking: [a, b, a] }), 400, 'INVALID_SELECTION');
    expectError(await vote(poll.poll_id, { ranking: [a, 77_777_777] }), 400, 'INVALID_OPTION');
    expectError(await vote(poll.poll_id, { options: [a] }), 400, 'VALIDATION_ERROR');
    expect((await vote(poll.poll_id, { ranking: [c, a] }, { headers: { 'user-agent': 'r1' } })).status).toBe(202);
    expect((await vote(poll.poll_id, { ranking: [b, c, a] }, { headers: { 'user-agent': 'r2' } })).status).toBe(202);
  });
  it('RATING takes integers within the range', async () => {
    const poll = await createPoll(stack, { poll_type: 'RATING', settings: { rating_min: 1, rating_max: 5 } });
    const [a, b] = poll.options.map((o) => o.option_id);
    expectError(await vote(poll.poll_id, { ratings: { [a]: 6 } }), 400, 'INVALID_SELECTION');
    expectError(await vote(poll.poll_id, { ratings: { [a]: 0 } }), 400, 'INVALID_SELECTION');
    expectError(await vote(poll.poll_id, { ratings: { [a]: 2.5 } }), 400, 'VALIDATION_ERROR');
    expectError(await vote(poll.poll_id, { ratings: { abc: 2 } }), 400, 'VALIDATION_ERROR');
    expectError(await vote(poll.poll_id, { ratings: {} }), 400, 'INVALID_SELECTION');
    expectError(await vote(poll.poll_id, { ratings: { 99999999: 3 } }), 400, 'INVALID_OPTION');
    expect((await vote(poll.poll_id, { ratings: { [a]: 5, [b]: 1 } })).status).toBe(202);
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`)).body.total_votes === 1);
    const res = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`);
    expect(res.body.options.map((o: any) => o.vote_count)).toEqual([1, 1, 0]);
  });
});

describe('poll state, identity and visibility', () => {
  it('DRAFT (for its creator; no such poll for others) and CLOSED polls are POLL_NOT_ACTIVE; before start too', async () => {
    const draft = await createPoll(stack, { status: 'DRAFT' });
    expectError(await vote(draft.poll_id, { options: [draft.options[0].option_id] }, { token: await tokenFor(1) }), 409, 'POLL_NOT_ACTIVE');
    expectError(await vote(draft.poll_id, { options: [draft.options[0].option_id] }), 404, 'POLL_NOT_FOUND');
    const closed = await createPoll(stack);
    expect((await call(stack, 'POST', `/api/v1/polls/${closed.poll_id}/close`, { token: await tokenFor(1) })).status).toBe(200);
    expectError(await vote(closed.poll_id, { options: [closed.options[0].option_id] }), 409, 'POLL_NOT_ACTIVE');
    const later = await createPoll(stack, { start_time: new Date(Date.now() + 3_600_000).toISOString() });
    expectError(await vote(later.poll_id, { options: [later.options[0].option_id] }), 409, 'POLL_NOT_ACTIVE');
  });
  it('after end_time is POLL_EXPIRED, and the poll closes by itself', async () => {
    const poll = await createPoll(stack, { end_time: new Date(Date.now() + 1200).toISOString() });
    expect((await vote(poll.poll_id, { options: [poll.options[0].option_id] })).status).toBe(202);
    await new Promise((r) => setTimeout(r, 1300));
    expectError(await vote(poll.poll_id, { options: [poll.options[0].option_id] }, { headers: { 'user-agent': 'late' } }), 410, 'POLL_EXPIRED');
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`)).body.status === 'CLOSED', 10_000, 'auto close');
  });
  it('a second vote is ALREADY_VOTED', async () => {
    const poll = await createPoll(stack);
    expect((await vote(poll.poll_id, { options: [poll.options[0].option_id] })).status).toBe(202);
    expectError(await vote(poll.poll_id, { options: [poll.options[1].option_id] }), 409, 'ALREADY_VOTED');
  });
  it('require_authentication needs a signed-in voter; bad tokens are INVALID_TOKEN', async () => {
    const poll = await createPoll(stack, { settings: { require_authentication: true } });
    const body = { options: [poll.options[0].option_id] };
    expectError(await vote(poll.poll_id, body), 401, 'AUTH_REQUIRED');
    expectError(await vote(poll.poll_id, body, { token: 'not.a.jwt' }), 401, 'INVALID_TOKEN');
    expectError(await vote(poll.poll_id, body, { token: await tokenFor(5, {}, 'another-secret-another-secret-xx') }), 401, 'INVALID_TOKEN');
    expectError(await vote(poll.poll_id, body, { headers: { authorization: 'Basic abc' } }), 401, 'INVALID_TOKEN');
    expect((await vote(poll.poll_id, body, { token: await tokenFor(5) })).status).toBe(202);
    expectError(await vote(poll.poll_id, body, { token: await tokenFor(5) }), 409, 'ALREADY_VOTED');
    expect((await vote(poll.poll_id, body, { token: await tokenFor('6') })).status).toBe(202);
  });
  it('PRIVATE polls need their key; ORGANIZATION polls their org', async () => {
    const priv = await createPoll(stack, { visibility: 'PRIVATE' });
    expect(priv.access_key).toBeTruthy();
    const body = { options: [priv.options[0].option_id] };
    expectError(await vote(priv.poll_id, body), 404, 'POLL_NOT_FOUND');
    expectError(await call(stack, 'POST', `/api/v1/polls/${priv.poll_id}/votes?key=wrong`, { body }), 404, 'POLL_NOT_FOUND');
    expect((await call(stack, 'POST', `/api/v1/polls/${priv.poll_id}/votes?key=${priv.access_key}`, { body })).status).toBe(202);

    const creator = await tokenFor(10, { org: 7 });
    const org = await createPoll(stack, { visibility: 'ORGANIZATION' }, creator);
    const orgBody = { options: [org.options[0].option_id] };
    expectError(await vote(org.poll_id, orgBody), 401, 'AUTH_REQUIRED');
    expectError(await vote(org.poll_id, orgBody, { token: await tokenFor(11, { org: 8 }) }), 403, 'FORBIDDEN');
    expectError(await vote(org.poll_id, orgBody, { token: await tokenFor(12) }), 403, 'FORBIDDEN');
    expect((await vote(org.poll_id, orgBody, { token: await tokenFor(13, { org: '7' }) })).status).toBe(202);
  });
});
