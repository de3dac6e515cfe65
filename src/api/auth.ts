import { jwtVerify } from 'jose';
import { invalidToken } from '../shared/errors.js';

/** A signed-in caller. */
export interface Principal {
  userId: number;
  orgId: number | null;
  isAdmin: boolean;
  /** When the token stops being valid (its `exp`, ms), if it has one: a long-lived watch ends there. */
  expiresAt?: number;
}

const positiveId = (v: unknown): number | null => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[1-9][0-9]{0,15}$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
};

/** Verifies an HS256 bearer token; a bad token is an error, never an anonymous caller. */
export function createAuthenticator(secret: string) {
  const key = new TextEncoder().encode(secret);
  return async function authenticate(authorization: string | undefined): Promise<Principal | null> {
    if (authorization === undefined || authorization === '') return null;
    const match = /^Bearer +([A-Za-z0-9_\-.]+)$/i.exec(authorization);
    if (!match) throw invalidToken('The Authorization header must be "Bearer <token>"');
    return verifyToken(match[1]);
  };
  async function verifyToken(token: string): Promise<Principal> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'] }));
    } catch {
      throw invalidToken();
    }
    const userId = positiveId(payload.sub);
    if (userId === null) throw invalidToken('The token has no valid "sub" claim');
    const org = payload.org === undefined || payload.org === null ? null : positiveId(payload.org);
    return { userId, orgId: org, isAdmin: payload.role === 'admin', ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {}) };
  }
}
export type Authenticate = ReturnType<typeof createAuthenticator>;

/** Verifies a raw token (WebSocket query parameter) the same way as a bearer header. */
export function createTokenVerifier(secret: string) {
  const authenticate = createAuthenticator(secret);
  return (token: string) => authenticate(`Bearer ${token}`);
}
