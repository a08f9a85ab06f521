// `npm test`: jest with everything a run makes in one folder of its own, removed
// when the run ends, passed or failed. TMPDIR points there (every mkdtemp, the
// children's stdio FIFOs, the PostgreSQL binaries' copy) and so does the
// embedded PostgreSQL's fallback for data folders its account cannot reach
// (MINIMCP_PG_FALLBACK_DIR, /var/tmp otherwise). Arguments go to jest.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const runDir = mkdtempSync(path.join(os.tmpdir(), 'minimcp-test-run-'));
// Like /tmp itself: children run as OS users of their own, and PostgreSQL as its own.
chmodSync(runDir, 0o1777);

const jest = spawn(process.execPath, ['node_modules/jest/bin/jest.js', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: {
    ...process.env,
    // jest 30 runs our ESM test files through Node's VM modules (docs/decisions/0001).
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules`.trim(),
    TMPDIR: runDir,
    MINIMCP_PG_FALLBACK_DIR: runDir,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  },
});
// Ctrl-C reaches jest through the terminal's process group; a signal sent to
// this process alone is passed on, and the folder is removed once jest is gone.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => jest.kill(signal));

const code = await new Promise((resolve) =>
  jest.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))),
);
const left = readdirSync(runDir);
rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
if (left.length > 0 && process.env.MINIMCP_TEST_RUN_VERBOSE)
  console.log(`removed ${runDir} (${left.length} entries)`);
process.exit(code);
