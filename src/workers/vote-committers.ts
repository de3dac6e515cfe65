import { randomBytes } from 'node:crypto';
import type { Worker } from 'bullmq';
import { within } from '../shared/deadline.js';
import type { Logger } from '../shared/logger.js';
import type { RedisClient } from '../shared/redis.js';

/** Keeps this process in the live set (KEYS live; ARGV id, now, lease ms) and returns how many processes are alive. */
const HEARTBEAT = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3] * 10)
return redis.call('ZCARD', KEYS[1])
`;
/**
 * Extends a lease we hold (KEYS lease; ARGV id, ms): 1, or 0 when someone else holds it. A lease
 * that lapsed meanwhile (a failover longer than the lease, whose replica never saw the last
 * renewal) and that nobody took is ours again: the worker keeps its queue instead of stopping.
 */
const RENEW = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
`;
/** Gives a lease back if we still hold it (KEYS lease; ARGV id). */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface LeaseCommands {
  committerHeartbeat(live: string, id: string, now: number, ms: number): Promise<number>;
  renewCommitterLease(lease: string, id: string, ms: number): Promise<number>;
  releaseCommitterLease(lease: string, id: string): Promise<number>;
}

/** One vote queue as the committers see it: the key of its lease and how to start its worker. */
export interface CommittedQueue {
  name: string;
  lease: string;
  startWorker: () => Worker;
}

/**
 * Shares the vote queues among the worker processes: each queue is committed by one process at
 * a time (the holder of its lease), and each process holds about its share (queues / live
 * processes), so adding a worker process adds committers instead of contention. A process that
 * dies stops renewing: its leases lapse within `leaseMs` and others take them, while BullMQ's
 * stall check hands its jobs on. Two holders at once (a lease lost under a long pause) stay
 * correct: the shard locks in PostgreSQL serialise them.
 */
export function startVoteCommitters(opts: { redis: RedisClient; live: string; queues: CommittedQueue[]; leaseMs: number; log: Logger }) {
  const { redis, queues, leaseMs, log } = opts;
  redis.defineCommand('committerHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
  redis.defineCommand('renewCommitterLease', { numberOfKeys: 1, lua: RENEW });
  redis.defineCommand('releaseCommitterLease', { numberOfKeys: 1, lua: RELEASE });
  const cmd = redis as unknown as LeaseCommands;
  const id = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const held = new Map<number, Worker>();
  // Where this process starts looking for a free queue: processes spread their picks.
  const start = randomBytes(2).readUInt16BE() % Math.max(1, queues.length);
  let stopped = false;
  let ticking: Promise<void> = Promise.resolve();

  async function letGo(q: number): Promise<void> {
    const worker = held.get(q);
    held.delete(q);
    // The lease is given back only once the jobs in hand are done: the next holder starts clean.
    // Bounded: a worker whose connection hangs (a node gone mid-command) must not stall every
    // other lease of this process; forced, its jobs in hand go to the stall check.
    if (worker) {
      const settled = worker.close().then(
        () => true,
        () => true,
      );
      if (!(await within(settled, leaseMs * 2, false))) void worker.close(true).catch(() => {});
    }
    await cmd.releaseCommitterLease(queues[q].lease, id).catch(() => 0);
  }

  async function tick(): Promise<void> {
    const alive = await cmd.committerHeartbeat(opts.live, id, Date.now(), leaseMs);
    const share = Math.ceil(queues.length / Math.max(1, alive));
    for (const q of [...held.keys()]) {
      if ((await cmd.renewCommitterLease(queues[q].lease, id, leaseMs)) === 1) continue;
      log.warn({ queue: queues[q].name }, 'lost the commit lease of a vote queue; another worker has it');
      await letGo(q);
    }
    // A process that joined takes its share: the others give back what is over theirs.
    for (const q of [...held.keys()].slice(share)) await letGo(q);
    for (let i = 0; i < queues.length && held.size < share && !stopped; i++) {
      const q = (start + i) % queues.length;
      if (held.has(q)) continue;
      if ((await redis.set(queues[q].lease, id, 'PX', leaseMs, 'NX')) !== 'OK') continue;
      held.set(q, queues[q].startWorker());
    }
  }

  const timer = setInterval(
    () => {
      ticking = ticking.then(tick).catch((err: Error) => log.warn({ err: err.message }, 'vote queue leases: Redis unreachable, retrying'));
    },
    Math.max(50, Math.floor(leaseMs / 3)),
  );
  ticking = tick().catch((err: Error) => log.warn({ err: err.message }, 'vote queue leases: Redis unreachable, retrying'));

  return {
    /** The vote queues this process commits now. */
    held: () => [...held.keys()].map((q) => queues[q].name),
    /** Finishes the jobs in hand and gives every lease back. */
    async close(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await ticking;
      await Promise.all([...held.keys()].map(letGo));
      await redis.zrem(opts.live, id).catch(() => 0);
    },
  };
}
