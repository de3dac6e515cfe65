import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { invalidToken } from './errors.js';

/** A signed-in caller. */
export interface Principal {
  userId: number;
  orgId: number | null;
  isAdmin: boolean;
  /** When the token stops being valid (its `exp`, ms), if it has one: a long-lived watch ends there. */
  expiresAt?: number;
}

/** How bearer tokens are verified: HS256 with the shared secret, and RS256 / ES256 from an identity provider's JWKS where configured. */
export interface AuthOptions {
  secret: string;
  /** The identity provider's JSON Web Key Set (e.g. https://id.example/.well-known/jwks.json); unset = HS256 only. */
  jwksUrl?: string;
  /** Required `iss` of provider tokens. */
  issuer?: string;
  /** Required `aud` of provider tokens. */
  audience?: string;
  /** How far in the future an `iat` may lie (clocks of issuers drift a little), in seconds. */
  clockSkewSeconds?: number;
}

// Asymmetric algorithms only for provider keys: an HS256 token must never be checked against a public key.
const PROVIDER_ALGORITHMS = ['RS256', 'ES256'];
const DEFAULT_SKEW_SECONDS = 60;

const positiveId = (v: unknown): number | null => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[1-9][0-9]{0,15}$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
};

/** The auth settings of the environment (JWT_SECRET, JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE, JWT_CLOCK_SKEW_SECONDS). */
export function authOptionsOf(config: {
  JWT_SECRET: string;
  JWT_JWKS_URL?: string;
  JWT_ISSUER?: string;
  JWT_AUDIENCE?: string;
  JWT_CLOCK_SKEW_SECONDS?: number;
}): AuthOptions {
  return {
    secret: config.JWT_SECRET,
    jwksUrl: config.JWT_JWKS_URL || undefined,
    issuer: config.JWT_ISSUER || undefined,
    audience: config.JWT_AUDIENCE || undefined,
    clockSkewSeconds: config.JWT_CLOCK_SKEW_SECONDS,
  };
}

/** Verifies a bearer token (HS256, or the provider's RS256 / ES256); a bad token is an error, never an anonymous caller. */
export function createAuthenticator(options: AuthOptions | string) {
  const opts = typeof options === 'string' ? { secret: options } : options;
  const key = new TextEncoder().encode(opts.secret);
  // jose caches the key set and refetches it (rate limited) when a token names an unknown key id.
  const jwks = opts.jwksUrl ? createRemoteJWKSet(new URL(opts.jwksUrl)) : null;
  const skew = opts.clockSkewSeconds ?? DEFAULT_SKEW_SECONDS;

  return async function authenticate(authorization: string | undefined): Promise<Principal | null> {
    if (authorization === undefined || authorization === '') return null;
    const match = /^Bearer +([A-Za-z0-9_\-.]+)$/i.exec(authorization);
    if (!match) throw invalidToken('The Authorization header must be "Bearer <token>"');
    return verifyToken(match[1]);
  };

  async function verifyToken(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      const { alg } = decodeProtectedHeader(token);
      if (alg === 'HS256') ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'] }));
      else if (jwks && alg && PROVIDER_ALGORITHMS.includes(alg)) {
        ({ payload } = await jwtVerify(token, jwks, { algorithms: PROVIDER_ALGORITHMS, issuer: opts.issuer, audience: opts.audience }));
      } else throw new Error('unsupported algorithm');
    } catch {
      throw invalidToken();
    }
    // A token "issued" in the future was minted by a skewed or forged clock: its exp says nothing.
    if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + skew) throw invalidToken('The token was issued in the future');
    const userId = positiveId(payload.sub);
    if (userId === null) throw invalidToken('The token has no valid "sub" claim');
    const org = payload.org === undefined || payload.org === null ? null : positiveId(payload.org);
    return { userId, orgId: org, isAdmin: payload.role === 'admin', ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {}) };
  }
}
export type Authenticate = ReturnType<typeof createAuthenticator>;

/** Verifies a raw token (WebSocket query parameter) the same way as a bearer header. */
export function createTokenVerifier(options: AuthOptions | string | Authenticate) {
  const authenticate = typeof options === 'function' ? options : createAuthenticator(options);
  return (token: string) => authenticate(`Bearer ${token}`);
}

/** The claims of a development token: who, which organization, whether a moderator. */
export interface DevTokenClaims {
  sub: number;
  org?: number | null;
  admin?: boolean;
  /** Lifetime in seconds. */
  ttlSeconds?: number;
}

/** Signs an HS256 token with JWT_SECRET (`npm run token`, the pages' development sign-in). */
export async function signDevToken(secret: string, claims: DevTokenClaims): Promise<{ token: string; expiresAt: Date }> {
  const ttl = claims.ttlSeconds ?? 12 * 3600;
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ ...(claims.org ? { org: claims.org } : {}), ...(claims.admin ? { role: 'admin' } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(String(claims.sub))
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .sign(new TextEncoder().encode(secret));
  return { token, expiresAt: new Date((now + ttl) * 1000) };
}
