// Shared by the agent's integration tests: fixture paths, polling with an
// upper bound (never a timing assertion), and process liveness from /proc.
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/children');
export const EVERYTHING_SERVER = path.join(
  REPO_ROOT,
  'node_modules/@modelcontextprotocol/server-everything/dist/index.js',
);

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `minimcp-${prefix}-`));
}

export { processGone, waitFor } from './wait.js';

/** The process group of a live process, from /proc/<pid>/stat. */
export function processGroupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}
