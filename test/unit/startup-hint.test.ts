import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startHint } from '../../src/shared/startup.js';

const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true });

describe('the "cannot reach" hints match docker-compose.yml', () => {
  it('inside compose, they name the compose services the roles connect to', () => {
    const env = compose.services.api.environment;
    expect(new URL(env.DATABASE_URL).hostname).toBe('postgres');
    expect(new URL(env.REDIS_URL).hostname).toBe('redis');
    expect(startHint('PostgreSQL', env.DATABASE_URL)).toMatch(
      /^Start PostgreSQL: under docker compose this is the `postgres` service \(`docker compose ps postgres`/,
    );
    expect(startHint('Redis', env.REDIS_URL)).toMatch(/`docker compose logs redis`/);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'redis']));
  });

  it('outside compose, they do not send anyone to a service it does not publish', () => {
    // Neither is published on the host: `docker compose up -d postgres` alone would not help.
    expect(compose.services.postgres.ports).toBeUndefined();
    expect(compose.services.redis.ports).toBeUndefined();
    const hint = startHint('PostgreSQL', 'postgres://postgres@localhost:5432/polls');
    expect(hint).toMatch(/^Start PostgreSQL there or set DATABASE_URL/);
    expect(hint).toContain('`docker compose up --build` runs the whole stack');
    expect(hint).not.toContain('docker compose up -d');
    expect(startHint('Redis', 'redis://localhost:6379')).toMatch(/^Start Redis there or set REDIS_URL/);
  });

  it('serves the pages, live results included, on the one published API port', () => {
    expect(compose.services.api.ports).toEqual(['3000:3000']);
    expect(compose.services.api.environment.REALTIME_UPSTREAM_URL).toBe(`http://realtime:${compose.services.realtime.environment.REALTIME_PORT}`);
    expect(compose.services.realtime.ports).toBeUndefined();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a compose variable, not a template.
    expect(compose.services.api.environment.DEV_SIGN_IN).toBe('${DEV_SIGN_IN:-true}');
  });
});
