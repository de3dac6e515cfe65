import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * A view token proves when a client first saw a poll: `pollId.issuedAtMs.mac`. The vote
 * sends it back so the time from view to vote can be judged (too fast = a bot) and stored.
 */
export function createViewTokens(secret: string) {
  const key = createHmac('sha256', secret).update('view-token/v1').digest();
  const mac = (body: string) => createHmac('sha256', key).update(body).digest('base64url');
  return {
    /** Issues a token for a poll at the given time. */
    issue(pollId: number, now = Date.now()): string {
      const body = `${pollId}.${now}`;
      return `${body}.${mac(body)}`;
    },
    /** The token's issue time when it is genuine and for this poll, else null. */
    verify(token: string, pollId: number, now = Date.now()): number | null {
      const m = /^([0-9]{1,16})\.([0-9]{1,16})\.([A-Za-z0-9_-]{43})$/.exec(token);
      if (!m || Number(m[1]) !== pollId) return null;
      const expected = Buffer.from(mac(`${m[1]}.${m[2]}`));
      const given = Buffer.from(m[3]);
      if (!timingSafeEqual(expected, given)) return null;
      const issuedAt = Number(m[2]);
      return issuedAt <= now + 5000 ? issuedAt : null;
    },
  };
}
export type ViewTokens = ReturnType<typeof createViewTokens>;
