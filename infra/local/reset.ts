// `npm run reset`: start the local stack from scratch. Removes the data folder
// (MINIMCP_DATA_DIR, default .minimcp: secrets, certificates, agent state) and
// the PostgreSQL cluster that belongs to it, wherever the launcher put it
// (inside it, or the fallback folder used when the PostgreSQL account cannot
// reach it). Refuses while a server still runs on that cluster.
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { clusterDirsOf } from './local-database.js';

async function exists(target: string): Promise<boolean> {
  return stat(target).then(
    () => true,
    () => false,
  );
}

/** The pid in a cluster's postmaster.pid when that process is alive. */
async function runningServerPid(clusterDir: string): Promise<number | undefined> {
  const text = await readFile(path.join(clusterDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined; // a stale lock file: the server is gone
  }
}

const dataDir = path.resolve(process.env.MINIMCP_DATA_DIR ?? '.minimcp');
const targets = [dataDir, ...clusterDirsOf(dataDir).filter((dir) => !dir.startsWith(dataDir))];
for (const clusterDir of clusterDirsOf(dataDir)) {
  const pid = await runningServerPid(clusterDir);
  if (pid !== undefined) {
    console.error(
      `MiniMCP's PostgreSQL is still running on ${clusterDir} (pid ${pid}): stop \`npm start\` first, then run \`npm run reset\` again.`,
    );
    process.exit(1);
  }
}
let removed = 0;
for (const target of targets) {
  if (!(await exists(target))) continue;
  await rm(target, { recursive: true, force: true });
  console.log(`removed ${target}`);
  removed++;
}
console.log(
  removed
    ? 'The next `npm start` begins from scratch (a new database, master key and first user).'
    : `Nothing to remove: no data folder at ${dataDir}.`,
);
