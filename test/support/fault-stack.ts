// The API (real app over HTTP, with the instance service) and one real host
// agent, wired as lambdas/runtime.ts wires them, against databases the caller
// names, for the fault suites: both loggers and every API answer are captured
// so a suite can search them afterwards.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startAgent, type RunningAgent } from '../../agent/agent.js';
import { createAgentRegistry } from '../../lambdas/control/agent-registry.js';
import {
  AgentConfigSchema,
  ApiConfigSchema,
  parseConfig,
  type ApiConfig,
} from '../../core/config.js';
import { createEnvelopeCipher } from '../../core/crypto/envelope.js';
import { createLocalKeyProvider } from '../../core/crypto/local-provider.js';
import { createDatabasePool, type DatabasePool } from '../../core/db/pool.js';
import { createInstanceService } from '../../lambdas/control/instance-service.js';
import { createLogger, type LogLevelName } from '../../core/logger.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { createApp, type App } from '../../lambdas/app.js';
import { nodeClientIp, startApiServer, type ApiServer } from '../../lambdas/local-server.js';
import { instanceServiceConfig } from '../../lambdas/runtime.js';
import { DIST_ROOT, randomPortRange } from './agent-harness.js';
import { send, type ApiResponse, type RequestOptions } from './api.js';
import { createTestCertificates } from './fake-agent.js';
import { connectMcpClient } from './mcp-client.js';

export interface FaultStackOptions {
  /** The API's role (row-level security applies). */
  appUrl: string;
  /** The agent's role. */
  agentUrl: string;
  /** Extra API settings, as environment variables. */
  apiEnv?: Record<string, string>;
  /** Extra agent settings, as environment variables. */
  agentEnv?: Record<string, string>;
  /** Level of both captured loggers (default debug: the more is logged, the more a sweep sees). */
  logLevel?: LogLevelName;
  portCount?: number;
}

export interface FaultUser {
  id: string;
  email: string;
  token: string;
  tokenId: string;
}

export interface FaultStack {
  apiUrl: string;
  app: App;
  apiConfig: ApiConfig;
  adminToken: string;
  agent: RunningAgent;
  nodeName: string;
  /** The agent's data folder (its state, spool and instance work folders are under it). */
  agentDataDir: string;
  /** The API's pool (the app role). */
  appPool: DatabasePool;
  /** Every line the API's logger wrote. */
  apiLogs: string[];
  /** Every line the agent's logger wrote. */
  agentLogs: string[];
  /** The text of every answer `request` received, in order. */
  responses: { method: string; path: string; status: number; text: string }[];
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  /** Creates a user through the admin API and mints an API token with its password. */
  createUser(role?: 'user' | 'admin'): Promise<FaultUser>;
  /** An MCP SDK client connected to an instance through its gateway. */
  connectMcp(accessUrl: string, accessToken: string): Promise<Client>;
  /** Stops the agent (children stopped, logs flushed); idempotent. */
  stopAgent(): Promise<void>;
  close(): Promise<void>;
}

function capture(lines: string[]) {
  return { write: (line: string) => void lines.push(line) };
}

export async function startFaultStack(options: FaultStackOptions): Promise<FaultStack> {
  const level = options.logLevel ?? 'debug';
  const apiLogs: string[] = [];
  const agentLogs: string[] = [];
  const responses: FaultStack['responses'] = [];
  const cleanup: Array<() => Promise<void> | void> = [];
  const unwind = async () => {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined);
  };

  try {
    const agentDataDir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-fault-agent-'));
    cleanup.push(() => rm(agentDataDir, { recursive: true, force: true }));
    const certificates = await createTestCertificates();
    const masterKeyBase64 = randomBytes(32).toString('base64');
    const range = randomPortRange(options.portCount ?? 10);
    const nodeName = `fault-${randomBytes(3).toString('hex')}`;
    const agentConfig = parseConfig(AgentConfigSchema, {
      DATABASE_URL: options.agentUrl,
      LOG_LEVEL: level,
      MINIMCP_DATA_DIR: agentDataDir,
      MINIMCP_NODE_NAME: nodeName,
      MINIMCP_PORT_RANGE: `${range.start}-${range.end}`,
      MINIMCP_GRPC_LISTEN: `127.0.0.1:${await findFreePort()}`,
      MINIMCP_METRICS_LISTEN: '127.0.0.1:0',
      MINIMCP_HEARTBEAT_SECONDS: '1',
      MINIMCP_RECONCILE_SECONDS: '1',
      MINIMCP_USAGE_SECONDS: '1',
      MINIMCP_STOP_GRACE_MS: '1000',
      ...options.agentEnv,
    });
    const agent = await startAgent({
      config: agentConfig,
      logger: createLogger({ level, name: 'fault-agent', destination: capture(agentLogs) }),
      env: { MINIMCP_MASTER_KEY: masterKeyBase64 },
      tls: certificates.agent,
      serversRoot: DIST_ROOT,
    });
    let agentStopped: Promise<void> | undefined;
    const stopAgent = () => (agentStopped ??= agent.close());
    cleanup.push(stopAgent);

    const adminToken = `mma_${randomBytes(24).toString('base64url')}`;
    const apiConfig = parseConfig(ApiConfigSchema, {
      DATABASE_URL: options.appUrl,
      MINIMCP_ADMIN_TOKEN: adminToken,
      LOG_LEVEL: level,
      MINIMCP_START_WAIT_MS: '15000',
      MINIMCP_AGENT_STOP_WAIT_MS: '5000',
      // Every test user logs in once; the limiter is not under test here.
      MINIMCP_AUTH_RATE_BURST: '100',
      // Account mail is not under test here: no outbox files under the working folder.
      MINIMCP_MAILER: 'none',
      // No test reaches a real upstream; a scope check's test turns it on with a fake.
      MINIMCP_SCOPE_CHECK_TIMEOUT_MS: '0',
      ...options.apiEnv,
    });
    const appPool = await createDatabasePool(options.appUrl, {
      maximumPoolSize: apiConfig.MINIMCP_DB_POOL_SIZE,
    });
    cleanup.push(() => appPool.end());
    const logger = createLogger({ level, name: 'fault-api', destination: capture(apiLogs) });
    const registry = createAgentRegistry({
      tls: certificates.controlPlane,
      defaultDeadlineMs: apiConfig.MINIMCP_START_WAIT_MS + 2_000,
    });
    cleanup.push(() => registry.close());
    const instances = createInstanceService({
      pool: appPool,
      agents: registry.forNode,
      logger,
      config: instanceServiceConfig(apiConfig),
    });
    const app = createApp({
      pool: appPool,
      config: apiConfig,
      cipher: createEnvelopeCipher({ provider: await createLocalKeyProvider({ masterKeyBase64 }) }),
      logger,
      clientIp: nodeClientIp,
      instances,
      agents: registry.forNode,
    });
    const server: ApiServer = await startApiServer(app, { host: '127.0.0.1', port: 0 });
    cleanup.push(() => server.close());

    const mcpClients = new Set<Client>();
    cleanup.push(async () => {
      for (const client of mcpClients) await client.close().catch(() => undefined);
    });

    const request: FaultStack['request'] = async (method, route, requestOptions) => {
      const response = await send(server.url, method, route, requestOptions);
      responses.push({ method, path: route, status: response.status, text: response.text });
      return response;
    };

    return {
      apiUrl: server.url,
      app,
      apiConfig,
      adminToken,
      agent,
      nodeName,
      agentDataDir,
      appPool,
      apiLogs,
      agentLogs,
      responses,
      request,
      async createUser(role = 'user') {
        const email = `fault-${randomUUID().slice(0, 8)}@example.test`;
        const password = `pw-${randomBytes(12).toString('hex')}`;
        const created = await request('POST', '/v1/users', {
          token: adminToken,
          json: { email, password, name: `Fault ${email}`, role },
        });
        if (created.status !== 201) throw new Error(`POST /v1/users: ${created.text}`);
        const minted = await request('POST', '/v1/auth/token', { json: { email, password } });
        if (minted.status !== 201) throw new Error(`POST /v1/auth/token: ${minted.status}`);
        const body = minted.json<{ id: string; token: string }>();
        return {
          id: created.json<{ id: string }>().id,
          email,
          token: body.token,
          tokenId: body.id,
        };
      },
      async connectMcp(accessUrl, accessToken) {
        const client = await connectMcpClient(accessUrl, accessToken, 'fault-suite');
        mcpClients.add(client);
        return client;
      },
      stopAgent,
      close: unwind,
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}
