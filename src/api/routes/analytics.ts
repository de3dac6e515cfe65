import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { Router, type Request, type Response } from 'express';
import { clientIp } from '../../shared/request.js';
import type { AnalyticsService } from '../services/analytics.js';
import { anonymousVoterKey } from '../../domain/voter.js';
import { accessKeyOf, callerOf, pollIdOf } from './polls.js';

/**
 * Ends a response whose client has read nothing for `idleMs` (it cannot drain what we wrote):
 * a stalled reader must not hold an export connection until the statement timeout.
 */
function endWhenStalled(res: Response, idleMs: number): () => void {
  let progressAt = Date.now();
  const onDrain = () => (progressAt = Date.now());
  res.on('drain', onDrain);
  const timer = setInterval(
    () => {
      if (!res.writableNeedDrain) progressAt = Date.now();
      else if (Date.now() - progressAt >= idleMs) res.destroy();
    },
    Math.max(10, Math.min(1000, idleMs / 4)),
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    res.off('drain', onDrain);
  };
}

/** GET /:id/analytics and GET /:id/votes.csv, for the poll's creator and admins. */
export function analyticsRouter({ analytics, exportIdleMs = 30_000 }: { analytics: AnalyticsService; exportIdleMs?: number }) {
  const r = Router();

  r.get('/:id/analytics', async (req, res) => {
    res.json(await analytics.get(pollIdOf(req), callerOf(req), accessKeyOf(req)));
  });

  r.get('/:id/votes.csv', async (req, res) => {
    const { filename, columns, records, release } = await analytics.exportVotes(pollIdOf(req), callerOf(req), accessKeyOf(req));
    res.once('close', release);
    res.status(200).type('text/csv; charset=utf-8').attachment(filename).set('Cache-Control', 'no-store');
    // escape_formulas: a User-Agent like "=HYPERLINK(...)" must stay text in a spreadsheet.
    const csv = stringify({ header: true, columns, escape_formulas: true });
    const stopWatching = endWhenStalled(res, exportIdleMs);
    // Once rows are out an error can only cut the download short; pipeline has closed the response by then.
    await pipeline(Readable.from(records), csv, res).catch(() => {});
    stopWatching();
  });

  return r;
}

/**
 * The `onView` hook of the polls router: the viewer is the signed-in user, or the same
 * anonymous hash a vote uses (without the body's fingerprint, which a GET does not have).
 */
export function pollViewRecorder(analytics: AnalyticsService) {
  return (pollId: number, req: Request): void => {
    try {
      const caller = callerOf(req);
      const viewer = caller ? `u:${caller.userId}` : anonymousVoterKey(pollId, clientIp(req, req.app.get('trust proxy fn')), req.headers['user-agent'] ?? '');
      analytics.recordView(pollId, viewer);
    } catch {
      // A view that cannot be counted must never fail the page.
    }
  };
}
