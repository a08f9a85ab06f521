// GitHub tool on the key's own account: get_authenticated_user (with the token's
// scopes and the remaining rate limit, read from the response headers).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS } from '../../shared/annotations.js';
import type { HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { GhAuthenticatedUser } from '../upstream.js';

export function registerUserTools(server: McpServer, github: HttpClient): void {
  server.registerTool(
    'get_authenticated_user',
    {
      title: 'Get the authenticated user',
      description:
        'Returns the GitHub account the stored key belongs to, the OAuth scopes of a classic token (null for fine-grained tokens) and the remaining REST rate limit. Use it to check the key works.',
      inputSchema: {},
      outputSchema: {
        login: z.string(),
        name: z.string().nullable(),
        email: z.string().nullable(),
        company: z.string().nullable(),
        bio: z.string().nullable(),
        type: z.string().nullable(),
        html_url: z.string(),
        public_repos: z.number().nullable(),
        total_private_repos: z.number().nullable(),
        followers: z.number().nullable(),
        created_at: z.string().nullable(),
        scopes: z.array(z.string()).nullable(),
        rate_limit: z.object({
          limit: z.number().nullable(),
          remaining: z.number().nullable(),
          resets_at: z.string().nullable(),
        }),
      },
      annotations: READS,
    },
    async (_args, { signal }) => {
      const { data, headers } = await github.request(GhAuthenticatedUser, {
        method: 'GET',
        path: '/user',
        signal,
      });
      const scopes = headers.get('x-oauth-scopes');
      const numberHeader = (name: string): number | null => {
        const value = headers.get(name);
        return value === null || !Number.isFinite(Number(value)) ? null : Number(value);
      };
      const reset = numberHeader('x-ratelimit-reset');
      return toolResult({
        login: data.login,
        name: data.name ?? null,
        email: data.email ?? null,
        company: data.company ?? null,
        bio: data.bio ?? null,
        type: data.type ?? null,
        html_url: data.html_url,
        public_repos: data.public_repos ?? null,
        total_private_repos: data.total_private_repos ?? null,
        followers: data.followers ?? null,
        created_at: data.created_at ?? null,
        scopes:
          scopes === null
            ? null
            : scopes
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean),
        rate_limit: {
          limit: numberHeader('x-ratelimit-limit'),
          remaining: numberHeader('x-ratelimit-remaining'),
          resets_at: reset === null ? null : new Date(reset * 1000).toISOString(),
        },
      });
    },
  );
}
