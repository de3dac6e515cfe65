import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** How a vote's view token fared; stored with the vote for reviewers and analytics. */
export type ViewTokenState = 'valid' | 'missing' | 'expired' | 'reused' | 'foreign';

/** A genuine token for the poll: when it was issued, its one-vote nonce, and whether it still admits a vote. */
export interface ViewTokenCheck {
  state: 'valid' | 'expired' | 'foreign';
  issuedAt: number;
  nonce: string;
}

// Issued a little in the future means another server's clock: tolerated up to this much.
const CLOCK_SKEW_MS = 5000;

/** Which client a token was issued to: a short hash of its address and browser. */
export function clientTagOf(ip: string, userAgent: string): string {
  return hash('sha256', `${ip}\n${userAgent}`, 'base64url').slice(0, 11);
}

/**
 * A view token proves when a client first saw a poll: `pollId.issuedAtMs.nonce.client.mac`.
 * The vote sends it back so the time from view to vote can be judged (too fast = a bot). A
 * token admits one vote (its nonce is spent at admission), expires after `ttlMs`, and counts
 * only for the client (address and browser) it was issued to.
 */
export function createViewTokens(secret: string, ttlMs: number) {
  const key = createHmac('sha256', secret).update('view-token/v2').digest();
  const mac = (body: string) => createHmac('sha256', key).update(body).digest('base64url');
  return {
    ttlMs,
    /** Issues a token for a poll to the client of `clientTag` at the given time. */
    issue(pollId: number, clientTag: string, now = Date.now()): string {
      const body = `${pollId}.${now}.${randomBytes(9).toString('base64url')}.${clientTag}`;
      return `${body}.${mac(body)}`;
    },
    /** The token's facts when it is genuine and for this poll, else null (a forgery or another poll's token). */
    verify(token: string, pollId: number, clientTag: string, now = Date.now()): ViewTokenCheck | null {
      const m = /^([0-9]{1,16})\.([0-9]{1,16})\.([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{11})\.([A-Za-z0-9_-]{43})$/.exec(token);
      if (!m || Number(m[1]) !== pollId) return null;
      const expected = Buffer.from(mac(`${m[1]}.${m[2]}.${m[3]}.${m[4]}`));
      if (!timingSafeEqual(expected, Buffer.from(m[5]))) return null;
      const issuedAt = Number(m[2]);
      if (issuedAt > now + CLOCK_SKEW_MS) return null;
      const state = now - issuedAt > ttlMs ? 'expired' : m[4] !== clientTag ? 'foreign' : 'valid';
      return { state, issuedAt, nonce: m[3] };
    },
  };
}
export type ViewTokens = ReturnType<typeof createViewTokens>;
