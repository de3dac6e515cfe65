import { Router } from 'express';
import { z } from 'zod';
import { signDevToken } from '../../shared/auth.js';

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** POST /api/v1/dev/token */
export const devTokenSchema = z.strictObject({
  sub: id,
  org: id.optional(),
  admin: z.boolean().default(false),
});

/**
 * The development sign-in: mints an HS256 token for any user, org and role, exactly what
 * `npm run token` prints. Mounted only where DEV_SIGN_IN allows it (never in production): the
 * pages cannot sign a token themselves without the secret.
 */
export function devRouter({ secret }: { secret: string }) {
  const r = Router();
  r.post('/token', async (req, res) => {
    const body = devTokenSchema.parse(req.body ?? {});
    const { token, expiresAt } = await signDevToken(secret, { sub: body.sub, org: body.org ?? null, admin: body.admin });
    res.set('Cache-Control', 'no-store').json({ token, expires_at: expiresAt.toISOString() });
  });
  return r;
}
