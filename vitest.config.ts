import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` needs no server at all (no PostgreSQL, no Redis, no global setup), so
 * `npm run test:unit` works on a bare checkout; `integration` gets the migrated template
 * database and the Redis Cluster seeds from the global setup. `npm test` runs both.
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
        },
      },
    ],
  },
});
