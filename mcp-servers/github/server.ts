// The GitHub MCP server (REST v3, token auth): repositories, issues, pull
// requests, contents, code search, commits and the authenticated user.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerDefinition } from '../shared/stdio-server.js';
import { GithubConfigSchema, createGithubClient, type GithubConfig } from './client.js';
import { registerCommitTools } from './tools/commits.js';
import { registerContentTools } from './tools/contents.js';
import { registerIssueTools } from './tools/issues.js';
import { registerPullRequestTools } from './tools/pull-requests.js';
import { registerRepositoryTools } from './tools/repositories.js';
import { registerUserTools } from './tools/users.js';

export const githubServer: ServerDefinition<GithubConfig> = {
  name: 'github',
  requiresKey: true,
  configSchema: GithubConfigSchema,
  create({ env, log }) {
    const github = createGithubClient(env, log);
    const server = new McpServer(
      { name: 'minimcp-github', title: 'GitHub (MiniMCP)', version: '0.1.0' },
      {
        instructions:
          'GitHub REST v3 as the owner of the stored token. Repositories are named by owner and repo ("octocat", "hello-world"). List and search tools return one page and a next_page (null on the last page). Errors name the cause: bad credentials, missing scope, not found (also for private resources the token cannot see), or a rate limit with its reset time.',
      },
    );
    registerRepositoryTools(server, github);
    registerIssueTools(server, github);
    registerPullRequestTools(server, github);
    registerContentTools(server, github);
    registerCommitTools(server, github);
    registerUserTools(server, github);
    return server;
  },
};
