import { defineConfig } from 'vitest/config';

// Unit and machine tests run in parallel; tests that drive real Docker or spawn berth live in
// test/e2e and test/integration and run in their own files (each file uses its own labels,
// folders and ports, so files may still run side by side).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    exclude: ['test/faults/**', 'node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
