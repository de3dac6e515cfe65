import { createHash, timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type Response } from 'express';
import { authRequired, invalidToken } from '../shared/errors.js';
import type { Authenticate } from '../shared/auth.js';

export const ADMIN_BOARD_PATH = '/admin/queues';

const BASIC_CHALLENGE = 'Basic realm="viral-polls admin", charset="UTF-8"';

// Digests have one length, so timingSafeEqual leaks neither the secret's content nor its length.
const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const sameSecret = (given: string, expected: string) => timingSafeEqual(digest(given), digest(expected));

/**
 * Bull Board for every queue, behind HTTP Basic (ADMIN_USER / ADMIN_PASSWORD) or an admin
 * bearer token. The guard sits in front of the whole board, so its API and static assets
 * are protected too. Read-only unless told otherwise: a click must not clean vote jobs.
 */
export function createAdminBoard(opts: { queues: Queue[]; user: string; password: string; authenticate: Authenticate; readOnly: boolean }): express.Router {
  const serverAdapter = new ExpressAdapter().setBasePath(ADMIN_BOARD_PATH);
  createBullBoard({
    queues: opts.queues.map((q) => new BullMQAdapter(q, { readOnlyMode: opts.readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'viral-polls' } },
  });

  async function requireAdmin(req: Request, res: Response, next: NextFunction) {
    const header = req.headers.authorization ?? '';
    if (/^Bearer /i.test(header)) {
      const caller = await opts.authenticate(header).catch(() => null);
      if (!caller) return next(invalidToken());
      // The contract: an admin token or the Basic credentials, 401 otherwise (a signed-in non-admin too).
      if (caller.isAdmin) return next();
    }
    if (/^Basic /i.test(header)) {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const sep = decoded.indexOf(':');
      // Both compared every time: a right user name must not answer faster than a wrong one.
      const userOk = sameSecret(sep < 0 ? '' : decoded.slice(0, sep), opts.user);
      const passwordOk = sameSecret(sep < 0 ? '' : decoded.slice(sep + 1), opts.password);
      if (sep >= 0 && userOk && passwordOk) return next();
    }
    res.set('WWW-Authenticate', BASIC_CHALLENGE);
    next(authRequired('Bull Board needs the admin user name and password or an admin token'));
  }

  const router = express.Router();
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  router.use(requireAdmin);
  router.use(serverAdapter.getRouter());
  return router;
}
