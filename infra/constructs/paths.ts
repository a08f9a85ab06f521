// Where the repository is, for assets and bundling entries: the nearest folder
// above this module that holds package-lock.json (the source tree or dist/'s parent).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package-lock.json'))) return dir;
    if (path.dirname(dir) === dir)
      throw new Error(`no package-lock.json above ${start}: run the CDK app from the repository`);
  }
}

export const REPO_ROOT = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
