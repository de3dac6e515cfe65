import { appendFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { createLoadPolls, startFaultStack, type FaultStack, type LoadPoll } from './fault-stack.js';
import { createVoterBook, startLoad, type Load, type LoadOptions, type VoterBook } from './load.js';
import { formatVerdict, settleAndJudge, type Verdict } from './verify.js';

/** Waits out a fault that lasts a fixed time by definition (an outage of N seconds), never a condition. */
export const hold = (ms: number) => new Promise((r) => setTimeout(r, ms));

const lines: string[] = [];

/** Prints a scenario's line now and again in the file's summary (and appends it to $FAULTS_REPORT when set). */
export function report(line: string): void {
  lines.push(line);
  console.log(line);
  if (process.env.FAULTS_REPORT) appendFileSync(process.env.FAULTS_REPORT, `${line}\n`);
}

/**
 * One private stack per test file, started before its scenarios and torn down after them.
 * A failed scenario prints the end of every role's log; FAULTS_KEEP_LOGS=1 keeps the whole
 * logs. Returns a getter: the stack exists once beforeAll ran.
 */
export function useFaultStack(opts: Parameters<typeof startFaultStack>[0] = {}): () => FaultStack {
  let stack: FaultStack | undefined;
  let failed = false;
  beforeAll(async () => {
    stack = await startFaultStack(opts);
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail' || !stack) return;
    failed = true;
    for (const r of stack.roles) console.error(`--- ${r.name} log (last lines) ---\n${r.logTail(30)}`);
  });
  afterAll(async () => {
    if (lines.length) console.log(`fault suite summary:\n${lines.map((l) => `  ${l}`).join('\n')}`);
    await stack?.close({ keepLogs: failed && process.env.FAULTS_KEEP_LOGS === '1' });
  });
  return () => stack!;
}

/** A scenario's polls, voters and load on a running stack. */
export interface ScenarioRun {
  stack: FaultStack;
  polls: LoadPoll[];
  book: VoterBook;
  /** Starts a load phase against the stack's API (all options but these have defaults). */
  load(opts?: Partial<Omit<LoadOptions, 'book' | 'polls'>>): Load;
  /** Waits for the queues to drain, compares, prints the scenario's line and returns the verdict. */
  verdict(extra?: string): Promise<Verdict>;
}

/** Brings the stack back to full health (a previous scenario may have failed half-way) and creates fresh polls. */
export async function beginScenario(stack: FaultStack, name: string): Promise<ScenarioRun> {
  await stack.ensureRunning();
  const polls = await createLoadPolls(stack);
  const book = createVoterBook();
  return {
    stack,
    polls,
    book,
    load: (opts = {}) => startLoad({ book, polls, target: () => stack.api.url, ...opts }),
    async verdict(extra) {
      const v = await settleAndJudge(stack, book, polls, name);
      report(formatVerdict(v) + (extra ? ` ${extra}` : ''));
      for (const e of v.examples) console.log(`  ${name}: ${e}`);
      return v;
    },
  };
}

/** The suite's pass criterion: no 202 lost, nothing doubled, and the fault ran under real load. */
export function expectNothingLostOrDoubled(v: Verdict): void {
  expect(v.accepted202, 'the load got 202s').toBeGreaterThan(0);
  expect({ lost: v.lost, doubled: v.doubled }, v.examples.join('\n')).toEqual({ lost: 0, doubled: 0 });
}
