// Entry point of the Figma MCP server over stdio (`node dist/mcp-servers/figma-mcp-server.js`).
import { figmaServer } from './figma/server.js';
import { runStdioServer } from './shared/stdio-server.js';

await runStdioServer(figmaServer);
