// The environment of a host agent started as its own process (the benchmarks'
// agents, the bundled agent's test): what the systemd unit gives it
// (agent/node/node-flags.ts) plus the settings of a local node. Callers add their own
// settings on top.
import { AGENT_ENVIRONMENT } from '../../agent/node/node-flags.js';

export interface AgentProcessSettings {
  databaseUrl: string;
  dataDir: string;
  tlsDir: string;
  nodeName: string;
  portRange: { start: number; end: number };
  grpcPort: number;
  masterKeyBase64: string;
}

export function agentProcessEnv(
  settings: AgentProcessSettings,
): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    ...AGENT_ENVIRONMENT,
    DATABASE_URL: settings.databaseUrl,
    MINIMCP_DATA_DIR: settings.dataDir,
    MINIMCP_TLS_DIR: settings.tlsDir,
    MINIMCP_NODE_NAME: settings.nodeName,
    MINIMCP_PORT_RANGE: `${settings.portRange.start}-${settings.portRange.end}`,
    MINIMCP_GRPC_LISTEN: `127.0.0.1:${settings.grpcPort}`,
    MINIMCP_METRICS_LISTEN: '127.0.0.1:0',
    MINIMCP_MASTER_KEY: settings.masterKeyBase64,
    LOG_LEVEL: 'warn',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}
