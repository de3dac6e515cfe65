import type { Job, Queue } from 'bullmq';
import { findPoll } from '../db/polls.js';
import { closePoll, closeVoting, publishFinalResults, voteQueueMarks, voteQueuesDrained, type PollChangeDeps } from '../shared/poll-changes.js';
import type { LifecycleJob, VoteBatchJob } from '../shared/queues.js';

// The close is scheduled inside the transaction that activates the poll (and the finalize inside
// the one that closes it), so a job due at once can run before that commit: for this long after
// scheduling, a poll not (yet) in the state the job expects is retried.
const UNCOMMITTED_GRACE_MS = 30_000;
// How long one finalize attempt watches the vote queues before it lets the job retry.
const FINALIZE_ATTEMPT_MS = 10_000;

/**
 * The poll-lifecycle jobs: `close-at-end` closes a poll whose end time has come (a moved end time
 * has its own job, so this one does nothing); `finalize` publishes a closed poll's final results
 * once every vote accepted before the close is counted.
 */
export function createPollLifecycleProcessor(deps: PollChangeDeps & { voteQueues: Array<Queue<VoteBatchJob>> }) {
  async function closeAtEnd(job: Job<LifecycleJob>): Promise<{ closed: boolean }> {
    const found = await findPoll(deps.db, job.data.poll_id);
    if ((!found || found.poll.status === 'DRAFT') && Date.now() - job.timestamp < UNCOMMITTED_GRACE_MS) {
      throw new Error(`poll ${job.data.poll_id} is not active yet; its transaction may still be committing`);
    }
    if (found?.poll.status !== 'ACTIVE' || !found.poll.end_time) return { closed: false };
    if (found.poll.end_time.getTime() > Date.now()) return { closed: false };
    return { closed: (await closePoll(deps, found.poll, ['ACTIVE'])) !== null };
  }

  async function finalize(job: Job<LifecycleJob>): Promise<{ closed: boolean }> {
    const found = await findPoll(deps.db, job.data.poll_id);
    if (found?.poll.status !== 'CLOSED') {
      if (Date.now() - job.timestamp < UNCOMMITTED_GRACE_MS)
        throw new Error(`poll ${job.data.poll_id} is not closed yet; its transaction may still be committing`);
      return { closed: false };
    }
    if (found.poll.results_final_at) return { closed: true };
    let marks = job.data.marks;
    if (!marks) {
      // Every vote admitted before the close is in a queue (or refused) once none is still being queued.
      if ((await closeVoting(deps, found.poll.poll_id, found.poll.partitions)) > 0) throw new Error('votes of the closed poll are still being queued');
      marks = await voteQueueMarks(deps.redis, deps.voteQueues);
      await job.updateData({ ...job.data, marks });
    }
    const deadline = Date.now() + FINALIZE_ATTEMPT_MS;
    while (!(await voteQueuesDrained(deps.redis, deps.voteQueues, marks))) {
      if (Date.now() > deadline) throw new Error('votes accepted before the close are not all counted yet');
      await new Promise((r) => setTimeout(r, 50));
    }
    await publishFinalResults(deps, found.poll.poll_id);
    return { closed: true };
  }

  return (job: Job<LifecycleJob>): Promise<{ closed: boolean }> => (job.name === 'finalize' ? finalize(job) : closeAtEnd(job));
}
