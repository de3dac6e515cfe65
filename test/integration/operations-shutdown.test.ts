import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { countersAndRecount, createPoll, eventually, freePort, JWT_SECRET, type Stack, startStack, voteQueuesIdle } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'loopback', FRAUD_DEFENCES: 'off' } });
});
afterAll(async () => {
  await stack?.close();
});

/** The API role as its own OS process, so it can be sent a real SIGTERM. */
function spawnApi(port: number): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/api/main.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: stack.config.DATABASE_URL,
      REDIS_URL: stack.config.REDIS_URL,
      REDIS_NAMESPACE: stack.config.REDIS_NAMESPACE,
      JWT_SECRET,
      TRUST_PROXY: 'loopback',
      FRAUD_DEFENCES: 'off',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => err };
}

/** How one vote request of the load ended; anything else fails the test. */
type Outcome = { kind: 'accepted'; voteId: string } | { kind: 'refused' } | { kind: 'unanswered' };

/** Connection errors of a request the server never answered: refused, or closed before any response. */
const UNANSWERED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** Sends one vote and classifies the answer strictly: 202 with its body, 503 with the contract's body, or no answer at all. */
async function castOne(url: string, body: unknown, ip: string): Promise<Outcome> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify(body) });
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    if (code && UNANSWERED.has(code)) return { kind: 'unanswered' };
    throw new Error(`vote from ${ip}: unexpected failure ${code ?? ''} ${String(err)}`);
  }
  // A response was started: from here on a failure to read it is a failure of the test, not "no answer".
  const text = await res.text();
  if (res.status === 202) {
    const parsed = JSON.parse(text);
    expect(parsed, `202 body for ${ip}`).toMatchObject({ status: 'accepted', vote_id: expect.stringMatching(/^[0-9a-f-]{36}$/), changed: false });
    return { kind: 'accepted', voteId: parsed.vote_id };
  }
  if (res.status === 503) {
    const parsed = JSON.parse(text);
    expect(parsed, `503 body for ${ip}`).toMatchObject({ error: { code: 'UNAVAILABLE', message: expect.any(String) } });
    return { kind: 'refused' };
  }
  throw new Error(`vote from ${ip}: unexpected ${res.status} ${text}`);
}

it('a SIGTERM in the middle of a load run loses no 202-accepted vote, and stores nothing it did not accept', async () => {
  const poll = await createPoll(stack, { poll_type: 'MULTIPLE_CHOICE', settings: { max_choices: 3 } });
  const ids = poll.options.map((o) => o.option_id);
  const port = await freePort();
  const api = spawnApi(port);
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${url}/healthz`).catch(() => null))?.status === 200, 20_000, 'API child up');

  const TOTAL = 6000;
  const CONCURRENCY = 100;
  const SIGTERM_AFTER = 1500;
  let next = 0;
  const accepted: string[] = [];
  let refused = 0;
  let unanswered = 0;
  let signalled = false;
  let answeredAfterSignal = 0;
  const client = async () => {
    while (next < TOTAL) {
      const i = next++;
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      // Not caught: an unexpected status or body fails the run here instead of being counted as anything.
      const outcome = await castOne(`${url}/api/v1/polls/${poll.poll_id}/votes`, { options: ids.slice(0, 1 + (i % 3)) }, ip);
      if (outcome.kind === 'accepted') accepted.push(outcome.voteId);
      else if (outcome.kind === 'refused') refused++;
      else unanswered++;
      // Answered once the signal had gone: a request in flight at the SIGTERM was finished, not dropped.
      if (signalled && outcome.kind !== 'unanswered') answeredAfterSignal++;
      if (!signalled && accepted.length >= SIGTERM_AFTER) {
        signalled = true;
        api.child.kill('SIGTERM');
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  expect(signalled).toBe(true);
  expect(await api.exited, api.stderr()).toBe(0);
  expect(accepted.length, `${refused} refused with 503, ${unanswered} unanswered`).toBeGreaterThanOrEqual(SIGTERM_AFTER);
  expect(new Set(accepted).size, 'every 202 names its own vote').toBe(accepted.length);
  // A real mid-flight stop: requests in flight were still answered after the signal, later ones found the server gone.
  expect(answeredAfterSignal).toBeGreaterThan(0);
  expect(unanswered).toBeGreaterThan(0);

  // The API comes back on the same port; the workers (in this process) committed throughout.
  const restarted = spawnApi(port);
  try {
    await eventually(async () => (await fetch(`${url}/healthz`).catch(() => null))?.status === 200, 20_000, 'API child up again');
    const storedIds = () => stack.db.selectFrom('votes').select(['vote_id', 'status']).where('poll_id', '=', poll.poll_id).execute();
    await eventually(
      async () => (await storedIds()).length >= accepted.length && (await voteQueuesIdle(stack)),
      30_000,
      'every accepted vote committed and the vote queues empty',
    );

    const stored = await storedIds();
    // Exactly the accepted votes, each once: none lost, none unaccepted slipped in.
    const storedSet = new Set(stored.map((v) => v.vote_id));
    const acceptedSet = new Set(accepted);
    expect({
      lost: accepted.filter((id) => !storedSet.has(id)),
      notAccepted: [...storedSet].filter((id) => !acceptedSet.has(id)),
      storedTwice: stored.length - storedSet.size,
    }).toEqual({ lost: [], notAccepted: [], storedTwice: 0 });
    expect(stored.every((v) => v.status === 'VALID')).toBe(true);
    const counts = await countersAndRecount(stack.db, poll.poll_id);
    expect(counts.total).toBe(accepted.length);
    expect(counts.counters).toEqual(counts.recount);
    const results = await fetch(`${url}/api/v1/polls/${poll.poll_id}/results`).then((r) => r.json());
    expect(results.total_votes, 'the restarted API reports every accepted vote').toBe(accepted.length);
  } finally {
    restarted.child.kill('SIGTERM');
    await restarted.exited;
  }
});
