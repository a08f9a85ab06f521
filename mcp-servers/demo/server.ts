// The keyless `demo` MCP type: echo, arithmetic and time tools for a first try,
// plus diagnostics the gateway tests rely on (progress, cancellation, stderr).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { BaseConfigSchema } from '../shared/env.js';
import type { ServerDefinition } from '../shared/stdio-server.js';
import { registerBasicTools } from './tools/basic.js';
import { registerDiagnosticTools } from './tools/diagnostics.js';

export const demoServer: ServerDefinition<typeof BaseConfigSchema._output> = {
  name: 'demo',
  requiresKey: false,
  configSchema: BaseConfigSchema,
  create({ log }) {
    const server = new McpServer(
      { name: 'minimcp-demo', title: 'MiniMCP demo', version: '0.1.0' },
      {
        instructions:
          'A keyless demo server: echo text, add numbers, tell the time in any IANA time zone. slow_count and log_to_stderr exist to exercise progress, cancellation and log capture.',
      },
    );
    registerBasicTools(server);
    registerDiagnosticTools(server, log);
    return server;
  },
};
