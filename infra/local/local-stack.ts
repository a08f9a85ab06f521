// The whole stack on one machine: the embedded PostgreSQL (or DATABASE_URL),
// migrated; the local key provider; the API on a local port; one host agent
// registered as node `local`; the maintenance job on a timer; and a first
// admin user with an API token so the first curl calls work.
import '../../core/polyfills.js';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../../agent/agent.js';
import { AgentConfigSchema, ApiConfigSchema, parseConfig, type Env } from '../../core/config.js';
import { asUser } from '../../lambdas/control/db/user-context.js';
import { insertUser, listUsers } from '../../lambdas/control/db/users.js';
import { insertUserToken } from '../../lambdas/control/db/user-tokens.js';
import { createDatabasePool } from '../../core/db/pool.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { runMaintenance } from '../../lambdas/control/maintenance.js';
import { hashPassword } from '../../lambdas/control/passwords.js';
import { issueToken } from '../../core/tokens.js';
import { ensureLocalCertificates } from '../../core/tls.js';
import { createApp } from '../../lambdas/app.js';
import { nodeClientIp, startApiServer, type ApiServer } from '../../lambdas/local-server.js';
import { createRuntime } from '../../lambdas/runtime.js';
import { createPrometheusRequestMetrics } from '../../lambdas/request-metrics-prometheus.js';
import { startLocalDatabase, type LocalDatabase } from './local-database.js';

export interface LocalStackOptions {
  env: Env;
  logger?: Logger;
  /** Where built-in server scripts resolve (dist/). */
  serversRoot?: string;
}

export interface LocalStack {
  apiUrl: string;
  adminToken: string;
  /** The first user's API token, when this start created the user. */
  firstUser: { email: string; token: string; password: string } | undefined;
  database: LocalDatabase;
  agent: RunningAgent;
  dataDir: string;
  close(): Promise<void>;
}

const FIRST_USER_EMAIL = 'admin@minimcp.local';
const MAINTENANCE_INTERVAL_MS = 30_000;

/** A value kept in a 0600 file of the data folder, created on first use. */
async function persistentSecret(file: string, make: () => string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const value = make();
    await writeFile(file, value + '\n', { mode: 0o600 });
    return value;
  }
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const env = options.env;
  const logger =
    options.logger ?? createLogger({ level: (env.LOG_LEVEL as 'info') ?? 'info', name: 'minimcp' });
  const dataDir = path.resolve(env.MINIMCP_DATA_DIR ?? '.minimcp');
  const steps: Array<() => Promise<void>> = [];
  const unwind = async () => {
    for (const step of steps.reverse())
      await step().catch((error: unknown) =>
        logger.error({ err: String(error) }, 'stop step failed'),
      );
  };

  try {
    const database = await startLocalDatabase({
      dataDir,
      ...(env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : {}),
      port: Number(env.MINIMCP_PG_PORT ?? 54329),
      log: (m) => logger.info(`[db] ${m}`),
    });
    steps.push(() => database.stop());

    const tlsDir = env.MINIMCP_TLS_DIR ?? path.join(dataDir, 'tls');
    await ensureLocalCertificates(tlsDir);
    const masterKeyFile = env.MINIMCP_MASTER_KEY
      ? undefined
      : (env.MINIMCP_MASTER_KEY_FILE ?? path.join(dataDir, 'master.key'));
    const adminToken =
      env.MINIMCP_ADMIN_TOKEN ??
      (await persistentSecret(
        path.join(dataDir, 'admin-token'),
        () => 'mma_' + randomBytes(32).toString('base64url'),
      ));

    const shared: Env = {
      ...env,
      MINIMCP_DATA_DIR: dataDir,
      MINIMCP_TLS_DIR: tlsDir,
      ...(masterKeyFile ? { MINIMCP_MASTER_KEY_FILE: masterKeyFile } : {}),
    };

    const agentConfig = parseConfig(AgentConfigSchema, {
      ...shared,
      DATABASE_URL: database.agentUrl,
      MINIMCP_NODE_NAME: env.MINIMCP_NODE_NAME ?? 'local',
    });
    const agent = await startAgent({
      config: agentConfig,
      logger: logger.child({ part: 'agent' }),
      env: shared,
      ...(options.serversRoot ? { serversRoot: options.serversRoot } : {}),
    });
    steps.push(() => agent.close());

    const apiConfig = parseConfig(ApiConfigSchema, {
      ...shared,
      DATABASE_URL: database.appUrl,
      MINIMCP_ADMIN_TOKEN: adminToken,
    });
    const requestMetrics = createPrometheusRequestMetrics();
    const runtime = await createRuntime(apiConfig, {
      clientIp: nodeClientIp,
      logger: logger.child({ part: 'api' }),
      requestMetrics,
    });
    steps.push(() => runtime.close());
    const api: ApiServer = await startApiServer(createApp(runtime.deps), {
      host: apiConfig.MINIMCP_API_HOST,
      port: apiConfig.MINIMCP_API_PORT,
      metrics: requestMetrics.registry,
    });
    steps.push(() => api.close());

    // The maintenance job, as the scheduled Lambda runs it on AWS.
    const maintenance = setInterval(() => {
      runMaintenance({
        pool: runtime.deps.pool,
        agents: runtime.agents,
        config: { nodeStaleSeconds: apiConfig.MINIMCP_NODE_STALE_SECONDS },
        logger,
      }).catch((error: unknown) => logger.warn({ err: String(error) }, 'maintenance run failed'));
    }, MAINTENANCE_INTERVAL_MS);
    maintenance.unref();
    steps.push(async () => clearInterval(maintenance));

    const firstUser = await ensureFirstUser(database.ownerUrl);
    return {
      apiUrl: api.url,
      adminToken,
      firstUser,
      database,
      agent,
      dataDir,
      close: unwind,
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}

/** Creates the first admin user and an API token for them when no user exists. */
async function ensureFirstUser(ownerUrl: string): Promise<LocalStack['firstUser']> {
  const pool = await createDatabasePool(ownerUrl, { maximumPoolSize: 1 });
  try {
    if ((await listUsers(pool)).length > 0) return undefined;
    const password = randomBytes(12).toString('base64url');
    const user = await insertUser(pool, {
      email: FIRST_USER_EMAIL,
      passwordHash: await hashPassword(password),
      name: 'Local admin',
      role: 'admin',
    });
    const token = issueToken('user');
    await asUser(pool, user.id, (tx) =>
      insertUserToken(tx, {
        userId: user.id,
        name: 'first token (npm start)',
        hash: token.hash,
        prefix: token.displayPrefix,
        expiresAt: null,
      }),
    );
    return { email: FIRST_USER_EMAIL, token: token.token, password };
  } finally {
    await pool.end();
  }
}
