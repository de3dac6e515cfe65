import { defineConfig } from 'vitest/config';

/**
 * The fault suite (`npm run test:faults`): private PostgreSQL and Redis servers, the roles as
 * OS processes, faults injected under load. One file at a time: each runs a whole service
 * and a load against it, and two at once on a small CI machine would only measure contention.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.fault.ts'],
    testTimeout: 300_000,
    hookTimeout: 240_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
