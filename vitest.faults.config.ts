import { defineConfig } from 'vitest/config';

// Fault tests stop, restart and kill things (a private dockerd, berth itself), so they run one
// file at a time, after the built CLI exists (`npm run test:faults` builds first).
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
