import { describe, expect, it } from 'vitest';
import { beginScenario, expectNothingLostOrDoubled, hold, report, useFaultStack } from './scenario.js';

/*
 * PostgreSQL stopped hard (`pg_ctlcluster stop -m immediate`, a crash: recovery at the next
 * start) for 60 s under load. The queue exists to absorb exactly this: no 202 may be lost,
 * nothing counted twice, and (once issue 14 item 8 is fixed) no vote refused.
 */
const stackOf = useFaultStack({ redis: { appendonly: true } });

const OUTAGE_MS = 60_000;

describe('PostgreSQL outage under load', () => {
  it('stop PostgreSQL for 60 s under load, then start it again', async () => {
    const stack = stackOf();
    const run = await beginScenario(stack, 'postgres-60s');
    const load = run.load({ rate: 150 });
    await load.acceptedAtLeast(800);
    load.tag = 'outage';
    await stack.pg.stop('immediate');
    await hold(OUTAGE_MS);
    load.tag = 'after';
    await stack.pg.start();
    const crashed = stack.roles.filter((r) => !r.running).map((r) => r.name);
    await stack.ensureRunning();
    await load.acceptedAtLeast(800, 120_000);
    await load.stop();
    // Requests sent during the outage, whenever they were answered.
    const outage = load.stats('outage');
    const refusedDuringOutage = outage.refused503;
    const v = await run.verdict(
      `refusedDuringOutage=${refusedDuringOutage} acceptedDuringOutage=${outage.accepted} rolesDownAfterOutage=${crashed.join(',') || 'none'}`,
    );
    expectNothingLostOrDoubled(v);
    expect(crashed, 'roles that died during the outage').toEqual([]);

    // ===== Issue 14, item 8: a PostgreSQL outage must cost no vote at all. =====
    // Fails today (the vote path's poll cache reloads from PostgreSQL every second, so every
    // vote gets 503 for the whole outage); passes once the vote path serves the last known poll.
    report(`  postgres-60s: ${refusedDuringOutage} votes refused with 503 during the outage, ${outage.accepted} accepted`);
    expect(refusedDuringOutage).toBe(0);
    // A longer budget: once the outage is queued instead of refused, a minute of votes waits to be drained after it.
  }, 420_000);
});
