// Entry point of the keyless demo MCP server over stdio (`node dist/mcp-servers/demo-mcp-server.js`).
import { demoServer } from './demo/server.js';
import { runStdioServer } from './shared/stdio-server.js';

await runStdioServer(demoServer);
