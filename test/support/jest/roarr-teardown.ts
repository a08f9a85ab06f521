// slonik's logger (roarr) adds an 'error' listener to the worker's real
// process.stdout when it loads, and removes it only when a later load finds its
// global state; jest gives each test file fresh globals but the same
// process.stdout, so a worker collected one listener per file (Node warned at
// 11). Each file removes its own when it ends.
import { afterAll } from '@jest/globals';

interface RoarrGlobal {
  teardown?: () => void;
}

afterAll(() => {
  (globalThis as { ROARR?: RoarrGlobal }).ROARR?.teardown?.();
});
