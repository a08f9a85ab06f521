// Entry point of the GitHub MCP server over stdio (`node dist/mcp-servers/github-mcp-server.js`).
import { githubServer } from './github/server.js';
import { runStdioServer } from './shared/stdio-server.js';

await runStdioServer(githubServer);
