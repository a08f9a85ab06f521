// Starts a real host agent in-process against a test database: a local key
// provider, test certificates, a private port range and data folder.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgent, type RunningAgent } from '../../agent/agent.js';
import { createAgentClient, type AgentClient } from '../../lambdas/control/agent-client.js';
import { AgentConfigSchema, parseConfig } from '../../core/config.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { createTestCertificates, type TestCertificates } from './fake-agent.js';

export interface AgentHarness {
  agent: RunningAgent;
  client: AgentClient;
  certificates: TestCertificates;
  masterKeyBase64: string;
  portRange: { start: number; end: number };
  dataDir: string;
  stop(): Promise<void>;
}

/** Built MCP servers (npm test builds first): the agent runs them from dist/. */
export const DIST_ROOT = fileURLToPath(new URL('../../dist/', import.meta.url));

/**
 * Where agents under test get their port ranges: below Linux's ephemeral range
 * (32768-60999), from which every outgoing connection (PostgreSQL, gRPC, MCP
 * clients) takes its local port; a range up there can find a port taken.
 */
const TEST_PORTS = { first: 20_000, last: 32_767 };

/** A port range unlikely to collide with other test files running in parallel. */
export function randomPortRange(size: number): { start: number; end: number } {
  const slots = Math.floor((TEST_PORTS.last - TEST_PORTS.first + 1 - size) / 10);
  const start = TEST_PORTS.first + Math.floor(Math.random() * slots) * 10;
  return { start, end: start + size - 1 };
}

export async function startAgentHarness(options: {
  databaseUrl: string;
  nodeName?: string;
  portCount?: number;
  masterKeyBase64?: string;
  env?: Record<string, string>;
  /** Where built-in server scripts resolve (default: dist/). */
  serversRoot?: string;
  /** The agent's logger (default: warnings and errors to stdout). */
  logger?: Logger;
}): Promise<AgentHarness> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-agent-'));
  const certificates = await createTestCertificates();
  const masterKeyBase64 = options.masterKeyBase64 ?? randomBytes(32).toString('base64');
  const portRange = randomPortRange(options.portCount ?? 10);
  const grpcPort = await findFreePort();
  const config = parseConfig(AgentConfigSchema, {
    DATABASE_URL: options.databaseUrl,
    LOG_LEVEL: 'warn',
    MINIMCP_DATA_DIR: dataDir,
    MINIMCP_NODE_NAME: options.nodeName ?? `node-${randomBytes(3).toString('hex')}`,
    MINIMCP_PORT_RANGE: `${portRange.start}-${portRange.end}`,
    MINIMCP_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
    // Agents of parallel test files each get a free port.
    MINIMCP_METRICS_LISTEN: '127.0.0.1:0',
    MINIMCP_HEARTBEAT_SECONDS: '1',
    MINIMCP_RECONCILE_SECONDS: '1',
    MINIMCP_USAGE_SECONDS: '1',
    MINIMCP_STOP_GRACE_MS: '2000',
    ...options.env,
  });
  const agent = await startAgent({
    config,
    logger: options.logger ?? createLogger({ level: 'warn', name: 'test-agent' }),
    env: { MINIMCP_MASTER_KEY: masterKeyBase64 },
    tls: certificates.agent,
    serversRoot: options.serversRoot ?? DIST_ROOT,
  });
  const client = createAgentClient({
    address: agent.grpcAddress,
    tls: certificates.controlPlane,
    defaultDeadlineMs: 20_000,
  });
  return {
    agent,
    client,
    certificates,
    masterKeyBase64,
    portRange,
    dataDir,
    async stop() {
      client.close();
      await agent.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
