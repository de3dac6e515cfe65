import { describe, expect, it } from 'vitest';
import type { Load } from './load.js';
import { beginScenario, expectNothingLostOrDoubled, hold, report, useFaultStack, type ScenarioRun } from './scenario.js';
import { judge } from './verify.js';

/*
 * Redis going away under load: stopped cleanly, killed with -9 (append-only file, fsync every
 * second, as production runs it) while it holds a backlog of accepted votes, and emptied
 * with FLUSHALL. Votes refused while it is away
 * are 503s; no 202 may be lost and nothing counted twice.
 */
const stackOf = useFaultStack({ redis: { appendonly: true, appendfsync: 'everysec' } });

const OUTAGE_MS = 5000;

/**
 * Runs the load with the workers stopped for a while, so that when Redis goes, many accepted
 * votes exist nowhere else (at an easy rate the workers commit each vote within milliseconds
 * and a Redis fault would test nothing). Returns how many 202s were not in PostgreSQL then.
 */
async function buildBacklog(run: ScenarioRun, load: Load): Promise<number> {
  await load.acceptedAtLeast(600);
  await run.stack.workers.stop();
  await load.acceptedAtLeast(500);
  return (await judge(run.stack.db, run.book, run.polls, 'backlog')).lost;
}

describe.sequential('Redis faults under load', () => {
  it('stop Redis (SIGTERM, AOF on) under load and start it again', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'redis-stop');
    const load = run.load();
    const queued = await buildBacklog(run, load);
    load.tag = 'outage';
    await stack.redis.stop();
    await hold(OUTAGE_MS);
    await stack.redis.start();
    await stack.workers.start();
    load.tag = 'after';
    await load.acceptedAtLeast(500, 120_000);
    await load.stop();
    const v = await run.verdict(`queuedOnlyInRedis=${queued} refusedDuringOutage=${load.stats('outage').refused503}`);
    expectNothingLostOrDoubled(v);
  });

  it('kill -9 an AOF Redis under load and restart it on the same data directory', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'redis-kill9');
    const load = run.load();
    const queued = await buildBacklog(run, load);
    load.tag = 'outage';
    await stack.redis.kill();
    await hold(OUTAGE_MS);
    await stack.redis.start();
    await stack.workers.start();
    load.tag = 'after';
    await load.acceptedAtLeast(500, 120_000);
    await load.stop();
    const v = await run.verdict(`queuedOnlyInRedis=${queued} refusedDuringOutage=${load.stats('outage').refused503}`);
    expectNothingLostOrDoubled(v);
  });

  it('FLUSHALL between load phases: votes are accepted again, repeat voters deduplicated by PostgreSQL', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'flushall');
    const first = run.load();
    await first.acceptedAtLeast(1000);
    await first.stop();
    // After the queue drained: nothing accepted is only in Redis any more.
    const before = await run.verdict('(phase 1, before FLUSHALL)');
    expectNothingLostOrDoubled(before);

    await stack.redis.flushAll();
    // Every third voter of phase 1 comes back (the claims that remembered them are gone), among new voters.
    const revoters = [...run.book.voters.values()].filter((_, i) => i % 3 === 0);
    const second = run.load({ revoters });
    second.tag = 'after-flush';
    await second.acceptedAtLeast(1000, 120_000);
    await second.stop();
    const v = await run.verdict();
    const again = revoters.filter((r) => r.attempts.some((a) => a.answers.some((x) => x.status === 202 && x.tag === 'after-flush')));
    report(`  flushall: ${revoters.length} phase-1 voters voted again, ${again.length} got a second 202 (their first ballot must be the one stored)`);
    // The system recovered by itself: the second phase got 202s without any restart.
    expect(second.stats('after-flush').accepted).toBeGreaterThan(0);
    expectNothingLostOrDoubled(v);
  });
});
