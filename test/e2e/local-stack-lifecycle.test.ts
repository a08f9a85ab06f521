// `npm start` as a newcomer runs it: stopped by Ctrl-C (SIGINT to the whole
// process group, as a terminal sends it), it records the stop before its
// database goes and exits 0; a data folder deleted under a living cluster
// ends in a clear message, and `npm run reset` starts it over.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import {
  fallbackDataDir,
  findFreePort,
  hasCluster,
  startPostgresServer,
} from '../../infra/local/postgres-server.js';
import { clusterDirsOf } from '../../infra/local/local-database.js';
import { randomPortRange } from '../support/agent-harness.js';
import { REPO_ROOT } from '../support/agent-helpers.js';
import { waitFor } from '../support/wait.js';

interface NpmRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** `npm <args>` in a process group of its own (like a terminal's foreground job). */
function npm(args: string[], env: NodeJS.ProcessEnv): NpmRun {
  const child = spawn('npm', args, {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

async function stackEnv(dataDir: string): Promise<NodeJS.ProcessEnv> {
  const range = randomPortRange(5);
  return {
    ...process.env,
    MINIMCP_DATA_DIR: dataDir,
    MINIMCP_PG_PORT: String(await findFreePort()),
    MINIMCP_API_PORT: String(await findFreePort()),
    MINIMCP_GRPC_LISTEN: `127.0.0.1:${await findFreePort()}`,
    MINIMCP_METRICS_LISTEN: '127.0.0.1:0',
    MINIMCP_PORT_RANGE: `${range.start}-${range.end}`,
    LOG_LEVEL: 'warn',
  };
}

/** Starts `npm start` and waits for its banner; returns the run and the first user's API token. */
async function startStack(
  env: NodeJS.ProcessEnv,
): Promise<{ run: NpmRun; token: string; api: string }> {
  const run = npm(['start'], env);
  await waitFor(
    'the banner of npm start',
    () => run.output().includes('Ctrl-C stops everything') || run.child.exitCode !== null,
    120_000,
  );
  const token = /export MINIMCP_TOKEN=(\S+)/.exec(run.output())?.[1];
  const api = /API (http:\/\/\S+)/.exec(run.output())?.[1];
  if (!token || !api) throw new Error(`npm start printed no banner:\n${run.output()}`);
  return { run, token, api };
}

describe('npm start and npm run reset', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dataDir = path.join(await mkdtemp(path.join(os.tmpdir(), 'minimcp-ctrl-c-')), 'data');
    env = await stackEnv(dataDir);
  });

  afterAll(async () => {
    await rm(path.dirname(dataDir), { recursive: true, force: true });
    for (const dir of clusterDirsOf(dataDir)) await rm(dir, { recursive: true, force: true });
  });

  it('records the stop of its instances and node on SIGINT to its process group, then exits 0', async () => {
    const { run, token, api } = await startStack(env);
    const created = await fetch(`${api}/v1/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'demo' }),
    });
    expect(created.status).toBe(201);
    const instance = (await created.json()) as { id: string; status: string };
    expect(instance.status).toBe('running');

    process.kill(-run.child.pid!, 'SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.output()).not.toMatch(/connection lost|ECONNREFUSED|shutting down/);

    // The stop is in the database: read it with the stack down.
    const server = await startPostgresServer({ dataDir: path.join(dataDir, 'pgdata') });
    const client = new pg.Client({ connectionString: server.url('minimcp') });
    await client.connect();
    try {
      const row = await client.query<{ status: string; node_status: string; events: string[] }>(
        `SELECT i.status, n.status AS node_status,
                array(SELECT event_type FROM mcp_events e WHERE e.mcp_instance_id = i.id ORDER BY e.created_at, e.id) AS events
           FROM mcp_instances i JOIN nodes n ON n.id = i.node_id WHERE i.id = $1`,
        [instance.id],
      );
      expect(row.rows[0]).toEqual({
        status: 'disconnected',
        node_status: 'down',
        events: ['created', 'started', 'disconnected'],
      });
    } finally {
      await client.end();
      await server.stop();
    }
  });

  it('refuses a cluster whose data folder is gone with the fix, and npm run reset starts over', async () => {
    // A newcomer deletes the data folder to start over. Where the PostgreSQL
    // account cannot reach it (as root, a private folder: CI's case), the
    // cluster lives outside it and stays behind.
    await rm(dataDir, { recursive: true, force: true });
    if (await hasCluster(fallbackDataDir(path.join(dataDir, 'pgdata')))) {
      const refused = npm(['start'], env);
      expect(await refused.exited).toBe(1);
      expect(refused.output()).toContain('npm run reset');
      expect(refused.output()).not.toMatch(/^\s+at /m); // no stack trace
    }

    const reset = npm(['run', 'reset'], env);
    expect(await reset.exited).toBe(0);
    expect(await existing([dataDir, ...clusterDirsOf(dataDir)])).toEqual([]);

    const { run } = await startStack(env);
    process.kill(-run.child.pid!, 'SIGINT');
    expect(await run.exited).toBe(0);
  });
});

async function existing(paths: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const p of paths)
    if (
      await stat(p).then(
        () => true,
        () => false,
      )
    )
      found.push(p);
  return found;
}
