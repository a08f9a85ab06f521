// GitHub tools on repositories: search_repositories and get_repository.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { nextPageFromLink, paginationInput, paginationOutput, repoInput } from '../client.js';
import {
  RepositoryDetail,
  RepositorySummary,
  toRepositoryDetail,
  toRepositorySummary,
} from '../results.js';
import { GhRepository, GhRepositorySearch } from '../upstream.js';

export function registerRepositoryTools(server: McpServer, github: HttpClient): void {
  server.registerTool(
    'search_repositories',
    {
      title: 'Search repositories',
      description:
        'Searches GitHub repositories with GitHub search syntax, e.g. "mcp language:typescript stars:>100" or "org:github topic:cli". Returns one page of matches with stars, language and last push; use `page` for more.',
      inputSchema: {
        query: z.string().min(1).max(256).describe('GitHub repository search query'),
        sort: z.enum(['stars', 'forks', 'help-wanted-issues', 'updated']).optional(),
        order: z.enum(['asc', 'desc']).optional(),
        ...paginationInput,
      },
      outputSchema: {
        total_count: z.number(),
        incomplete_results: z.boolean(),
        items: z.array(RepositorySummary),
        ...paginationOutput,
      },
      annotations: READS,
    },
    async ({ query, sort, order, page, per_page }, { signal }) => {
      const { data, headers } = await github.request(GhRepositorySearch, {
        method: 'GET',
        path: '/search/repositories',
        query: { q: query, sort, order, per_page, page },
        signal,
      });
      return toolResult({
        total_count: data.total_count,
        incomplete_results: data.incomplete_results,
        items: data.items.map(toRepositorySummary),
        page,
        per_page,
        next_page: nextPageFromLink(headers),
      });
    },
  );

  server.registerTool(
    'get_repository',
    {
      title: 'Get a repository',
      description:
        'Gets one repository: description, visibility, default branch, language, stars, forks, open issue count, topics, license and dates.',
      inputSchema: repoInput,
      outputSchema: RepositoryDetail.shape,
      annotations: READS,
    },
    async ({ owner, repo }, { signal }) => {
      const { data } = await github.request(GhRepository, {
        method: 'GET',
        path: path`/repos/${owner}/${repo}`,
        signal,
      });
      return toolResult(toRepositoryDetail(data));
    },
  );
}
