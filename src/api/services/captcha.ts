import { createHmac } from 'node:crypto';
import type { RedisClient } from '../../shared/redis.js';
import { createChallenge, extractParams, verifySolution } from 'altcha-lib/v1';
import type { Payload } from 'altcha-lib/v1/types';

/**
 * Self-hosted proof-of-work CAPTCHA (ALTCHA): no third party is called. A solution is the
 * base64 JSON payload the ALTCHA widget posts ({algorithm, challenge, number, salt,
 * signature}); it must be genuine, unexpired and never used before.
 */
export function createCaptcha({
  secret,
  redis,
  usedKey,
  maxNumber,
  ttlSeconds,
}: {
  secret: string;
  redis: RedisClient;
  usedKey: (signature: string) => string;
  maxNumber: number;
  ttlSeconds: number;
}) {
  const hmacKey = createHmac('sha256', secret).update('altcha/v1').digest('hex');

  function decode(raw: string): Payload | null {
    try {
      const text = raw.trimStart().startsWith('{') ? raw : Buffer.from(raw, 'base64').toString('utf8');
      const p = JSON.parse(text) as Payload;
      return typeof p?.signature === 'string' && typeof p.salt === 'string' ? p : null;
    } catch {
      return null;
    }
  }

  return {
    /** A fresh challenge for the client to solve. */
    challenge() {
      return createChallenge({ hmacKey, maxNumber, expires: new Date(Date.now() + ttlSeconds * 1000) });
    },
    /**
     * True once per genuine, unexpired solution: the SET NX on its signature makes a
     * replay fail even when two requests race with the same solution. Any malformed payload is
     * false; only Redis failing rejects.
     */
    async redeem(raw: string): Promise<boolean> {
      const payload = decode(raw);
      if (!payload) return false;
      let expires: number;
      try {
        // A payload the library cannot even check (an unknown algorithm, fields of the wrong
        // type) is a wrong answer from the client, not a failure of ours: "not solved".
        if (!(await verifySolution(payload, hmacKey, true))) return false;
        expires = Number(extractParams(payload).expires) * 1000 || Date.now() + ttlSeconds * 1000;
      } catch {
        return false;
      }
      const ttlMs = Math.max(1000, expires - Date.now() + 60_000);
      return (await redis.set(usedKey(payload.signature), '1', 'PX', ttlMs, 'NX')) === 'OK';
    },
  };
}
export type Captcha = ReturnType<typeof createCaptcha>;
