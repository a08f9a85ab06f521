// Entry point of the Gmail MCP server over stdio (`node dist/mcp-servers/gmail-mcp-server.js`).
import { gmailServer } from './gmail/server.js';
import { runStdioServer } from './shared/stdio-server.js';

await runStdioServer(gmailServer);
