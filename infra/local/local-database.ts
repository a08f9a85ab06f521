// The local stack's database: the embedded PostgreSQL (or DATABASE_URL),
// migrated, with login passwords for the application roles so the API and
// the agent connect as minimcp_app / minimcp_agent (row-level security on).
import '../../core/polyfills.js';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import { migrate } from '../../lambdas/control/db/migrate.js';
import { fallbackDataDir, startPostgresServer, type PostgresServer } from './postgres-server.js';

const DATABASE_NAME = 'minimcp';

export interface LocalDatabase {
  /** Owner: migrations and admin tooling. */
  ownerUrl: string;
  /** The API's role. */
  appUrl: string;
  /** The host agent's role. */
  agentUrl: string;
  /** Set when we started the embedded server. */
  server?: PostgresServer;
  stop(): Promise<void>;
}

const RolePasswords = z.object({ app: z.string().min(16), agent: z.string().min(16) });

async function rolePasswords(dataDir: string): Promise<z.infer<typeof RolePasswords>> {
  const file = path.join(dataDir, 'db-role-passwords.json');
  try {
    return RolePasswords.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const generated = {
      app: randomBytes(18).toString('base64url'),
      agent: randomBytes(18).toString('base64url'),
    };
    await writeFile(file, JSON.stringify(generated) + '\n', { mode: 0o600 });
    return generated;
  }
}

function withCredentials(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password;
  return parsed.toString();
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The embedded cluster's folder for a data folder: where it is asked to be. */
function clusterDirOf(dataDir: string): string {
  return path.join(dataDir, 'pgdata');
}

/**
 * Every folder the embedded cluster of `dataDir` may be in: `<dataDir>/pgdata`,
 * or its fallback when the PostgreSQL account cannot reach the data folder.
 */
export function clusterDirsOf(dataDir: string): string[] {
  return [clusterDirOf(dataDir), fallbackDataDir(clusterDirOf(dataDir))];
}

export interface LocalDatabaseOptions {
  dataDir: string;
  /** An external PostgreSQL (owner credentials); the embedded one otherwise. */
  databaseUrl?: string;
  /** Embedded server port. */
  port: number;
  log: (message: string) => void;
}

export async function startLocalDatabase(options: LocalDatabaseOptions): Promise<LocalDatabase> {
  // 0711: the unprivileged PostgreSQL user must traverse it to reach pgdata/;
  // the secrets kept here are files of mode 0600.
  await mkdir(options.dataDir, { recursive: true, mode: 0o711 });
  let server: PostgresServer | undefined;
  let ownerUrl = options.databaseUrl;
  if (!ownerUrl) {
    server = await startPostgresServer({
      dataDir: clusterDirOf(options.dataDir),
      port: options.port,
    });
    const created = await withClient(server.url('postgres'), async (client) => {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
        DATABASE_NAME,
      ]);
      if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE_NAME}`);
      return exists.rowCount === 0;
    });
    ownerUrl = server.url(DATABASE_NAME);
    options.log(
      `embedded PostgreSQL on 127.0.0.1:${server.port} (data in ${server.dataDir})${created ? ', database created' : ''}`,
    );
  }
  try {
    const applied = await migrate({ databaseUrl: ownerUrl, direction: 'up' });
    if (applied.length > 0)
      options.log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
    const passwords = await rolePasswords(options.dataDir);
    await withClient(ownerUrl, async (client) => {
      // Role passwords are set on each start so a fresh external database works too.
      await client.query(
        `ALTER ROLE minimcp_app LOGIN PASSWORD ${pg.escapeLiteral(passwords.app)}`,
      );
      await client.query(
        `ALTER ROLE minimcp_agent LOGIN PASSWORD ${pg.escapeLiteral(passwords.agent)}`,
      );
    });
    return {
      ownerUrl,
      appUrl: withCredentials(ownerUrl, 'minimcp_app', passwords.app),
      agentUrl: withCredentials(ownerUrl, 'minimcp_agent', passwords.agent),
      ...(server ? { server } : {}),
      stop: async () => {
        await server?.stop();
      },
    };
  } catch (error) {
    await server?.stop();
    throw error;
  }
}
