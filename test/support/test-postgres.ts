// Starts the test run's PostgreSQL server and its migrated template database.
import '../../core/polyfills.js';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrate } from '../../lambdas/control/db/migrate.js';
import { startPostgresServer } from '../../infra/local/postgres-server.js';
import {
  AGENT_ROLE_PASSWORD,
  APP_ROLE_PASSWORD,
  TEMPLATE_DATABASE,
  TEST_PG_ENV,
  urlFor,
} from './postgres-env.js';

export interface TestPostgresHandle {
  stop(): Promise<void>;
}

async function run(url: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

export async function startTestPostgres(): Promise<TestPostgresHandle> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-test-pg-'));
  // As root the server runs as the postgres user, who must traverse this folder.
  await chmod(workDir, 0o711);
  const server = await startPostgresServer({
    dataDir: path.join(workDir, 'data'),
    ephemeral: true,
    password: 'test-superuser',
  });
  const stop = async () => {
    await server.stop();
    // The data folder may sit outside workDir (the launcher's fallback for unreachable paths).
    await rm(server.dataDir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    const info = { host: '127.0.0.1', port: server.port, password: server.password };
    process.env[TEST_PG_ENV] = JSON.stringify(info);
    await run(server.url('postgres'), [`CREATE DATABASE ${TEMPLATE_DATABASE}`]);
    await migrate({ databaseUrl: urlFor(info, TEMPLATE_DATABASE), direction: 'up' });
    await run(urlFor(info, TEMPLATE_DATABASE), [
      `ALTER ROLE minimcp_app LOGIN PASSWORD '${APP_ROLE_PASSWORD}'`,
      `ALTER ROLE minimcp_agent LOGIN PASSWORD '${AGENT_ROLE_PASSWORD}'`,
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}
