// GitHub tool on history: list_commits.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { nextPageFromLink, paginationInput, paginationOutput, repoInput } from '../client.js';
import { trimBody } from '../results.js';
import { GhCommit } from '../upstream.js';

const MAX_MESSAGE_CHARS = 4_000;

export function registerCommitTools(server: McpServer, github: HttpClient): void {
  server.registerTool(
    'list_commits',
    {
      title: 'List commits',
      description:
        'Lists commits of a repository newest first, on a branch, tag or from a SHA (default branch if omitted), optionally only those touching a path, by an author, or in a time range.',
      inputSchema: {
        ...repoInput,
        sha: z.string().max(255).optional().describe('Branch, tag or SHA to start from'),
        path: z
          .string()
          .max(1000)
          .optional()
          .describe('Only commits touching this file or directory'),
        author: z.string().max(255).optional().describe('GitHub login or email address'),
        since: z.iso.datetime().optional(),
        until: z.iso.datetime().optional(),
        ...paginationInput,
      },
      outputSchema: {
        items: z.array(
          z.object({
            sha: z.string(),
            message: z.string(),
            author_name: z.string().nullable(),
            author_login: z.string().nullable(),
            date: z.string().nullable(),
            html_url: z.string(),
          }),
        ),
        ...paginationOutput,
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const { data, headers } = await github.request(z.array(GhCommit), {
        method: 'GET',
        path: path`/repos/${args.owner}/${args.repo}/commits`,
        query: {
          sha: args.sha,
          path: args.path,
          author: args.author,
          since: args.since,
          until: args.until,
          per_page: args.per_page,
          page: args.page,
        },
        signal,
      });
      return toolResult({
        items: data.map((c) => ({
          sha: c.sha,
          message: trimBody(c.commit.message, MAX_MESSAGE_CHARS).text,
          author_name: c.commit.author?.name ?? null,
          author_login: c.author?.login ?? null,
          date: c.commit.author?.date ?? c.commit.committer?.date ?? null,
          html_url: c.html_url,
        })),
        page: args.page,
        per_page: args.per_page,
        next_page: nextPageFromLink(headers),
      });
    },
  );
}
