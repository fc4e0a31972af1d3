import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The machine has two cores; big transfers run in workers of their own.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2 } },
  },
});
