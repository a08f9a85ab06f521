// GitHub tools on pull requests: list_pull_requests, and get_pull_request with
// its changed files, per-file patches and a diff summary.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { nextPageFromLink, paginationInput, paginationOutput, repoInput } from '../client.js';
import { MAX_BODY_CHARS, PullRequestSummary, toPullRequestSummary, trimBody } from '../results.js';
import { GhPullRequest, GhPullRequestFile } from '../upstream.js';

/** All patches of one result together stay under this, whatever the per-file limit. */
const TOTAL_PATCH_BUDGET_CHARS = 60_000;

const PullRequestFile = z.object({
  filename: z.string(),
  previous_filename: z.string().nullable(),
  status: z.string(),
  additions: z.number(),
  deletions: z.number(),
  changes: z.number(),
  patch: z.string().nullable().describe('Unified diff hunk; null for binary files or when omitted'),
  patch_truncated: z.boolean(),
});

export function registerPullRequestTools(server: McpServer, github: HttpClient): void {
  server.registerTool(
    'list_pull_requests',
    {
      title: 'List pull requests',
      description:
        'Lists pull requests of a repository, filtered by state, head ("user:branch") or base branch. Use get_pull_request for files and diff.',
      inputSchema: {
        ...repoInput,
        state: z.enum(['open', 'closed', 'all']).default('open'),
        head: z.string().optional().describe('Filter by head, "user:branch" or "org:branch"'),
        base: z.string().optional().describe('Filter by base branch name'),
        sort: z.enum(['created', 'updated', 'popularity', 'long-running']).default('created'),
        direction: z.enum(['asc', 'desc']).default('desc'),
        ...paginationInput,
      },
      outputSchema: { items: z.array(PullRequestSummary), ...paginationOutput },
      annotations: READS,
    },
    async (args, { signal }) => {
      const { data, headers } = await github.request(z.array(GhPullRequest), {
        method: 'GET',
        path: path`/repos/${args.owner}/${args.repo}/pulls`,
        query: {
          state: args.state,
          head: args.head,
          base: args.base,
          sort: args.sort,
          direction: args.direction,
          per_page: args.per_page,
          page: args.page,
        },
        signal,
      });
      return toolResult({
        items: data.map(toPullRequestSummary),
        page: args.page,
        per_page: args.per_page,
        next_page: nextPageFromLink(headers),
      });
    },
  );

  server.registerTool(
    'get_pull_request',
    {
      title: 'Get a pull request',
      description:
        'Gets one pull request: description, merge state, head/base, and its changed files (up to 100 per files_page) with additions, deletions and the patch of each file, plus a diff summary. Patches are trimmed to max_patch_chars per file; set include_patches false for just the file list.',
      inputSchema: {
        ...repoInput,
        pull_number: z.number().int().min(1),
        include_patches: z.boolean().default(true),
        max_patch_chars: z.number().int().min(100).max(20_000).default(4_000),
        files_page: z.number().int().min(1).default(1),
      },
      outputSchema: {
        ...PullRequestSummary.shape,
        body: z.string(),
        body_truncated: z.boolean(),
        head_sha: z.string(),
        mergeable: z.boolean().nullable(),
        mergeable_state: z.string().nullable(),
        commits: z.number().nullable(),
        diff_summary: z.object({
          changed_files: z.number(),
          additions: z.number(),
          deletions: z.number(),
          files_by_status: z.record(z.string(), z.number()),
        }),
        files: z.array(PullRequestFile),
        files_next_page: z.number().int().nullable(),
        note: z.string().optional(),
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const prPath = path`/repos/${args.owner}/${args.repo}/pulls/${args.pull_number}`;
      const { data: pr } = await github.request(GhPullRequest, {
        method: 'GET',
        path: prPath,
        signal,
      });
      const { data: files, headers } = await github.request(z.array(GhPullRequestFile), {
        method: 'GET',
        path: `${prPath}/files`,
        query: { per_page: 100, page: args.files_page },
        signal,
      });

      let budget = TOTAL_PATCH_BUDGET_CHARS;
      let trimmedPatches = 0;
      const fileList = files.map((f) => {
        let patch: string | null = null;
        let patchTruncated = false;
        if (args.include_patches && f.patch != null) {
          const limit = Math.min(args.max_patch_chars, budget);
          patch = f.patch.slice(0, limit);
          patchTruncated = patch.length < f.patch.length;
          if (patchTruncated) trimmedPatches++;
          budget -= patch.length;
        }
        return {
          filename: f.filename,
          previous_filename: f.previous_filename ?? null,
          status: f.status,
          additions: f.additions,
          deletions: f.deletions,
          changes: f.changes,
          patch,
          patch_truncated: patchTruncated,
        };
      });
      const filesByStatus: Record<string, number> = {};
      for (const f of files) filesByStatus[f.status] = (filesByStatus[f.status] ?? 0) + 1;
      const body = trimBody(pr.body, MAX_BODY_CHARS);
      const filesNextPage = nextPageFromLink(headers);

      return toolResult({
        ...toPullRequestSummary(pr),
        body: body.text,
        body_truncated: body.truncated,
        head_sha: pr.head.sha,
        mergeable: pr.mergeable ?? null,
        mergeable_state: pr.mergeable_state ?? null,
        commits: pr.commits ?? null,
        diff_summary: {
          changed_files: pr.changed_files ?? files.length,
          additions: pr.additions ?? files.reduce((n, f) => n + f.additions, 0),
          deletions: pr.deletions ?? files.reduce((n, f) => n + f.deletions, 0),
          files_by_status: filesByStatus,
        },
        files: fileList,
        files_next_page: filesNextPage,
        ...(trimmedPatches > 0 && {
          note: `${trimmedPatches} patch(es) trimmed (max_patch_chars ${args.max_patch_chars}, ${TOTAL_PATCH_BUDGET_CHARS} in total); use get_file_contents at head_sha to read a whole file.`,
        }),
      });
    },
  );
}
