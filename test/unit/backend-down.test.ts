import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createRedis } from '../../src/shared/redis.js';
import { isBackendDown, toAppError } from '../../src/api/http.js';
import { createLogger } from '../../src/shared/logger.js';
import { freePort } from '../helpers/stack.js';

describe('errors of an unreachable PostgreSQL or Redis', () => {
  it('become UNAVAILABLE, while a plain bug stays INTERNAL', async () => {
    const port = await freePort();
    const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${port}/none`, connectionTimeoutMillis: 2000 });
    const pgErr = await pool.query('SELECT 1').catch((e: unknown) => e);
    await pool.end();
    const redis = createRedis(`redis://127.0.0.1:${port}`, { failFast: true, redisOptions: { retryStrategy: () => null } });
    const redisErr = await redis.get('k').catch((e: unknown) => e);
    redis.disconnect();

    const log = createLogger('silent', 'test');
    for (const err of [pgErr, redisErr]) {
      expect(isBackendDown(err)).toBe(true);
      expect(toAppError(err, log)).toMatchObject({ code: 'UNAVAILABLE' });
    }
    expect(toAppError(new TypeError('x is undefined'), log)).toMatchObject({ code: 'INTERNAL' });
  });
});
