import { Router, type Request } from 'express';
import { pollNotFound } from '../../shared/errors.js';
import { clientTagOf, type ViewTokens } from '../../domain/view-token.js';
import type { Principal } from '../../shared/auth.js';
import { clientIp, parseId } from '../../shared/request.js';
import { toPollResponse, type PollService } from '../services/polls.js';
import { createPollSchema, listPollsSchema, patchPollSchema } from './polls.schema.js';

/** The caller set by the authentication middleware. */
export const callerOf = (req: Request): Principal | null => req.res?.locals.caller ?? null;

/** The poll id of the path, or 404. */
export function pollIdOf(req: Request): number {
  const id = parseId(req.params.id as string);
  if (id === null) throw pollNotFound();
  return id;
}

/** The ?key= access key of PRIVATE polls. */
export const accessKeyOf = (req: Request) => (typeof req.query.key === 'string' ? req.query.key : undefined);

export function pollsRouter({ polls, viewTokens, onView }: { polls: PollService; viewTokens: ViewTokens; onView?: (pollId: number, req: Request) => void }) {
  const r = Router();

  r.post('/', async (req, res) => {
    const body = createPollSchema.parse(req.body ?? {});
    res.status(201).json(await polls.create(callerOf(req), body));
  });

  r.get('/', async (req, res) => {
    const q = listPollsSchema.parse(req.query);
    res.json(await polls.list(callerOf(req), q));
  });

  r.get('/:id', async (req, res) => {
    const pollId = pollIdOf(req);
    const caller = callerOf(req);
    const found = await polls.get(pollId, caller, accessKeyOf(req));
    onView?.(pollId, req);
    // Bound to this client (address and browser), as the vote path will see it.
    const client = clientTagOf(clientIp(req, req.app.get('trust proxy fn')), req.headers['user-agent'] ?? '');
    res.json({ ...toPollResponse(found, caller), view_token: viewTokens.issue(pollId, client) });
  });

  r.patch('/:id', async (req, res) => {
    const pollId = pollIdOf(req);
    const body = patchPollSchema.parse(req.body ?? {});
    res.json(await polls.patch(pollId, callerOf(req), body));
  });

  r.post('/:id/publish', async (req, res) => {
    res.json(await polls.publish(pollIdOf(req), callerOf(req)));
  });

  r.post('/:id/close', async (req, res) => {
    res.json(await polls.close(pollIdOf(req), callerOf(req)));
  });

  return r;
}
