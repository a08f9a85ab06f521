// A fresh database per test file, cloned from the migrated template, with
// pools for the owner (migrations, fixtures), the API role and the agent role.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDatabasePool, type DatabasePool } from '../../core/db/pool.js';
import {
  AGENT_ROLE_PASSWORD,
  APP_ROLE_PASSWORD,
  TEMPLATE_DATABASE,
  readTestPostgres,
  urlFor,
} from './postgres-env.js';

export interface TestDatabase {
  name: string;
  ownerUrl: string;
  appUrl: string;
  agentUrl: string;
  /** Owner pool: fixtures and catalog checks. Superuser, so it bypasses RLS. */
  owner: DatabasePool;
  /** The API's role: subject to row-level security. */
  app: DatabasePool;
  drop(): Promise<void>;
}

async function adminQuery(sqlText: string): Promise<void> {
  const pgInfo = readTestPostgres();
  const client = new pg.Client({ connectionString: urlFor(pgInfo, 'postgres') });
  await client.connect();
  try {
    await client.query(sqlText);
  } finally {
    await client.end();
  }
}

export async function createEmptyDatabase(): Promise<{
  name: string;
  url: string;
  drop(): Promise<void>;
}> {
  const pgInfo = readTestPostgres();
  const name = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  return {
    name,
    url: urlFor(pgInfo, name),
    drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

export async function createTestDatabase(
  options: { poolSize?: number } = {},
): Promise<TestDatabase> {
  const pgInfo = readTestPostgres();
  const name = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`);
  const ownerUrl = urlFor(pgInfo, name);
  const appUrl = urlFor(pgInfo, name, 'minimcp_app', APP_ROLE_PASSWORD);
  const agentUrl = urlFor(pgInfo, name, 'minimcp_agent', AGENT_ROLE_PASSWORD);
  const owner = await createDatabasePool(ownerUrl, { maximumPoolSize: options.poolSize ?? 10 });
  const app = await createDatabasePool(appUrl, { maximumPoolSize: options.poolSize ?? 10 });
  return {
    name,
    ownerUrl,
    appUrl,
    agentUrl,
    owner,
    app,
    async drop() {
      try {
        await Promise.all([owner.end(), app.end()]);
      } finally {
        await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }
    },
  };
}
