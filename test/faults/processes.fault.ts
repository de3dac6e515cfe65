import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { parsePrometheus } from '../helpers/prom.js';
import { watch, type Watch } from '../helpers/realtime.js';
import { countersAndRecount, eventually } from '../helpers/stack.js';
import { beginScenario, expectNothingLostOrDoubled, report, useFaultStack } from './scenario.js';
import { judge } from './verify.js';

/*
 * Roles dying under load: a worker and an API SIGKILLed, every role SIGTERMed, the gateway
 * restarted. Each scenario prints `name: 202s=… counted=… lost=… doubled=… 503s=…` and fails
 * on any lost 202 or double.
 */
const stackOf = useFaultStack({ redis: { appendonly: true } });

/** Active vote jobs right now, from the workers' own gauge. */
async function activeVoteJobs(url: string): Promise<number> {
  const res = await fetch(`${url}/metrics`).catch(() => null);
  if (res?.status !== 200) return 0;
  return parsePrometheus(await res.text())
    .samples.filter((s) => s.name === 'queue_jobs' && /vote/.test(s.labels.queue) && s.labels.state === 'active')
    .reduce((n, s) => n + s.value, 0);
}

describe.sequential('roles killed under load', () => {
  it('SIGKILL a worker in the middle of its batches, then restart it', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'worker-sigkill');
    const load = run.load();
    await load.acceptedAtLeast(600);
    // Killed while it holds vote jobs, so that something is really in its hands.
    await eventually(async () => (await activeVoteJobs(stack.workers.url)) > 0, 30_000, 'a vote job active in the worker');
    const killedAt = Date.now();
    const exit = await stack.workers.kill();
    expect(exit.signal).toBe('SIGKILL');
    // The API keeps accepting while no worker runs: the queue absorbs it.
    await load.acceptedAtLeast(500);
    await stack.workers.start();
    await load.acceptedAtLeast(500);
    await load.stop();
    const v = await run.verdict();
    report(
      `  worker-sigkill: every vote counted, ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill (restart and load phases included; a standby's hand-over is timed in worker-crash.test.ts)`,
    );
    expectNothingLostOrDoubled(v);
  });

  it('SIGKILL an API with requests in flight; clients that got no answer retry', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'api-sigkill');
    // Busy enough that many requests are half-way through the API when it dies.
    const load = run.load({ rate: 600, concurrency: 64 });
    await load.acceptedAtLeast(600);
    await eventually(async () => load.inFlight >= 10, 20_000, 'requests in flight');
    const exit = await stack.api.kill();
    expect(exit.signal).toBe('SIGKILL');
    await stack.api.start();
    await load.acceptedAtLeast(600, 120_000);
    await load.stop();
    const v = await run.verdict();
    // The kill really cut requests off mid-way (not only refused connections during the restart).
    expect(v.cutOff).toBeGreaterThan(0);
    expectNothingLostOrDoubled(v);
  });

  it('SIGTERM every role under load (graceful drain), then start them again', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'sigterm-all');
    const load = run.load();
    await load.acceptedAtLeast(600);
    const exits = await Promise.all(stack.roles.map((r) => r.stop()));
    // A graceful stop exits 0; anything else (the shutdown timer, a crash) is a finding.
    expect(exits.map((e, i) => `${stack.roles[i].name}:${e.signal ?? e.code}`)).toEqual(stack.roles.map((r) => `${r.name}:0`));
    await Promise.all(stack.roles.map((r) => r.start()));
    await load.acceptedAtLeast(600, 120_000);
    await load.stop();
    expectNothingLostOrDoubled(await run.verdict());
  });

  it('restart the gateway under load: a watcher reconnects and converges to the stored counts', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'gateway-restart');
    const watched = run.polls.filter((p) => p.poll_type === 'SINGLE_CHOICE' || p.poll_type === 'MULTIPLE_CHOICE');
    // Each watcher reconnects whenever its socket ends, as the web pages do.
    let stopped = false;
    let reconnects = 0;
    const latest = new Map<number, any>();
    const sockets: Watch[] = [];
    const open = (pollId: number) => {
      const w = watch({ url: stack.realtime.url }, { poll_id: pollId });
      sockets.push(w);
      w.ws.on('message', (data) => latest.set(pollId, JSON.parse(data.toString())));
      void w.ended.then(() => {
        if (stopped) return;
        reconnects++;
        setTimeout(() => !stopped && open(pollId), 250);
      });
    };
    for (const p of watched) open(p.poll_id);
    try {
      await eventually(async () => watched.every((p) => latest.has(p.poll_id)), 20_000, 'a first snapshot per watcher');
      const load = run.load();
      await load.acceptedAtLeast(600);
      const reconnectsBefore = reconnects;
      await stack.realtime.restart();
      await load.acceptedAtLeast(600, 120_000);
      await load.stop();
      const v = await run.verdict();
      expectNothingLostOrDoubled(v);
      expect(reconnects - reconnectsBefore).toBeGreaterThanOrEqual(watched.length);
      const stored = new Map<number, { total: number; counts: Record<string, number> }>();
      for (const p of watched) {
        const c = await countersAndRecount(stack.db, p.poll_id);
        stored.set(p.poll_id, { total: c.total, counts: Object.fromEntries(Object.entries(c.counters).map(([k, n]) => [String(k), n])) });
      }
      const seen = () => watched.map((p) => ({ poll: p.poll_id, total: latest.get(p.poll_id)?.total_votes, counts: latest.get(p.poll_id)?.counts }));
      const want = watched.map((p) => ({ poll: p.poll_id, ...stored.get(p.poll_id) }));
      await eventually(async () => JSON.stringify(seen()) === JSON.stringify(want), 20_000, 'watchers showing the stored counts').catch(() => {});
      report(
        `  gateway-restart: ${reconnects - reconnectsBefore} reconnect attempts by ${watched.length} watchers; converged=${JSON.stringify(seen()) === JSON.stringify(want)}`,
      );
      expect(seen()).toEqual(want);
    } finally {
      stopped = true;
      for (const w of sockets) w.ws.terminate();
    }
  });
});

describe('the verifier', () => {
  it('sees a lost 202, a wrong latest ballot, a counter above its recount and a voter stored twice', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'verifier-self-check');
    const load = run.load();
    await load.acceptedAtLeast(300);
    await load.stop();
    const clean = await run.verdict();
    expectNothingLostOrDoubled(clean);
    const judgeNow = () => judge(stack.db, run.book, run.polls, 'tampered');

    // A 202 that nothing stored.
    const single = run.polls.find((p) => p.poll_type === 'SINGLE_CHOICE' && !p.allow_change_vote)!;
    const ghost = run.book.voter(single, '192.0.2.1');
    ghost.attempts.push({
      ballot: { options: [single.options[0]] },
      answers: [{ status: 202, vote_id: '00000000-0000-7000-8000-000000000000', tag: 'x', at: Date.now() }],
    });
    expect(await judgeNow()).toMatchObject({ lost: 1, doubled: 0 });
    ghost.attempts.length = 0;

    // A change voter whose latest accepted ballot is not the stored one.
    const changer = [...run.book.voters.values()].find((v) => v.poll.allow_change_vote && v.attempts.some((a) => a.answers.some((x) => x.status === 202)))!;
    const last = [...changer.attempts].reverse().find((a) => a.answers.some((x) => x.status === 202))!;
    const kept = last.ballot;
    last.ballot = { options: [changer.poll.options.find((o) => o !== kept.options![0])!] };
    expect(await judgeNow()).toMatchObject({ lost: 1, doubled: 0 });
    last.ballot = kept;

    // A counter one above its recount.
    const counter = await stack.db.selectFrom('vote_results').select(['option_id']).where('poll_id', '=', single.poll_id).executeTakeFirstOrThrow();
    const bump = (d: number) =>
      stack.db
        .updateTable('vote_results')
        .set((eb) => ({ vote_count: eb('vote_count', '+', d) }))
        .where('poll_id', '=', single.poll_id)
        .where('option_id', '=', counter.option_id)
        .execute();
    await bump(1);
    expect(await judgeNow()).toMatchObject({ lost: 0, doubled: 1 });
    await bump(-1);

    // One voter (one address) stored twice under two voter keys, counted twice.
    const { rows } = await sql<{ n: number }>`
      WITH one AS (SELECT * FROM votes WHERE poll_id = ${single.poll_id} AND status = 'VALID' LIMIT 1)
      INSERT INTO votes (vote_id, poll_id, voter_key, seq, selected_options, counted_options, ip_address, status, accepted_at)
      SELECT gen_random_uuid(), poll_id, voter_key || '-twin', seq, selected_options, counted_options, ip_address, status, accepted_at FROM one
      RETURNING 1 AS n`.execute(stack.db);
    expect(rows).toHaveLength(1);
    // Stored twice (doubled); and the option counter and the total both run one below the recount (lost 2).
    expect(await judgeNow()).toMatchObject({ lost: 2, doubled: 1 });
    report('  verifier-self-check: a ghost 202, a wrong latest ballot, a counter +1 and a twin row were each seen');
  });
});
