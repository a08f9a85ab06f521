// `npm start`: the whole MiniMCP stack on this machine until Ctrl-C.
import '../../core/polyfills.js';
import { startLocalStack, type LocalStack } from './local-stack.js';
import { LocalDataError } from './postgres-server.js';

function banner(stack: LocalStack): string {
  const api = stack.apiUrl;
  const token = stack.firstUser?.token ?? '<your API token>';
  const cluster = stack.database.server?.dataDir;
  const lines = [
    '',
    `MiniMCP is running: API ${api} · agent node "local" (gRPC ${stack.agent.grpcAddress}) · data in ${stack.dataDir}`,
    ...(cluster && !cluster.startsWith(stack.dataDir)
      ? [
          `PostgreSQL's cluster is in ${cluster} (its account cannot reach ${stack.dataDir}); \`npm run reset\` removes both.`,
        ]
      : []),
    '',
  ];
  if (stack.firstUser) {
    lines.push(
      `First user created: ${stack.firstUser.email} (password ${stack.firstUser.password}).`,
      `Their API token, shown once — keep it:`,
      `  export MINIMCP_TOKEN=${token}`,
      '',
    );
  } else {
    lines.push(
      'Get an API token for your user:',
      `  curl -s -X POST ${api}/v1/auth/token -H 'content-type: application/json' -d '{"email":"admin@minimcp.local","password":"…"}'`,
      '',
    );
  }
  lines.push(
    `Admin token (bootstrap, from MINIMCP_ADMIN_TOKEN or ${stack.dataDir}/admin-token): ${stack.adminToken.slice(0, 8)}…`,
    '',
    'Try it:',
    `  # 1. store a key for a type that needs one (the demo type needs none)`,
    `  curl -s -X PUT ${api}/v1/keys/github -H "authorization: Bearer $MINIMCP_TOKEN" -H 'content-type: application/json' -d "{\\"key\\":\\"$GITHUB_TOKEN\\"}"`,
    `  # 2. create an instance`,
    `  curl -s -X POST ${api}/v1/instances -H "authorization: Bearer $MINIMCP_TOKEN" -H 'content-type: application/json' -d '{"type":"demo"}'`,
    `  # 3. call it with any MCP client (access_url and access_token from step 2)`,
    `  curl -s -X POST <access_url> -H "authorization: Bearer <access_token>" -H 'content-type: application/json' \\`,
    `       -H 'accept: application/json, text/event-stream' \\`,
    `       -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'`,
    '',
    'Cursor, VS Code and other clients that take a URL with headers (mcpServers):',
    `  { "mcpServers": { "minimcp-demo": { "url": "<access_url>", "headers": { "Authorization": "Bearer <access_token>" } } } }`,
    'Claude Desktop starts local commands: bridge with mcp-remote (README, "Point an MCP client at it"):',
    `  { "mcpServers": { "minimcp-demo": { "command": "npx", "args": ["-y", "mcp-remote", "<access_url>", "--header", "Authorization: Bearer <access_token>"] } } }`,
    '',
    'Ctrl-C stops everything.',
  );
  return lines.join('\n');
}

const starting = startLocalStack({ env: process.env });

// The stack owns the order of the stop (agent and API first, PostgreSQL last:
// it runs in a process group of its own), whichever signal arrives, however
// often, and also while it is still starting: Ctrl-C signals npm, this process
// and the agent's children together.
let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping MiniMCP…`);
  // A start that fails unwinds by itself (and says why below); one that succeeds is closed.
  const stack = await starting.catch(() => undefined);
  await stack?.close();
  process.exit(0);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(signal, () => void stop(signal));

let stack: LocalStack;
try {
  stack = await starting;
} catch (error) {
  // A state the user can fix gets its message and the fix, not a stack trace.
  if (!(error instanceof LocalDataError)) throw error;
  console.error(`\nMiniMCP did not start: ${error.message}`);
  process.exit(1);
}
if (!stopping) console.log(banner(stack));
