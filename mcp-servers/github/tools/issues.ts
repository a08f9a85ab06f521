// GitHub tools on issues: list_issues, get_issue, create_issue, update_issue and
// add_issue_comment.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { ADDS, READS, UPDATES } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { nextPageFromLink, paginationInput, paginationOutput, repoInput } from '../client.js';
import {
  IssueComment,
  IssueSummary,
  MAX_BODY_CHARS,
  toIssueComment,
  toIssueSummary,
  trimBody,
} from '../results.js';
import { GhComment, GhIssue } from '../upstream.js';

const issueNumber = z.number().int().min(1).describe('Issue (or pull request) number');
const login = z.string().regex(/^[A-Za-z0-9-]{1,39}(\[bot\])?$/, 'a GitHub login');

export function registerIssueTools(server: McpServer, github: HttpClient): void {
  server.registerTool(
    'list_issues',
    {
      title: 'List issues',
      description:
        'Lists issues of a repository, newest first by default, filtered by state, labels, assignee, creator or update time. Pull requests are left out unless include_pull_requests is true, so a page can hold fewer than per_page items; follow next_page until it is null.',
      inputSchema: {
        ...repoInput,
        state: z.enum(['open', 'closed', 'all']).default('open'),
        labels: z.array(z.string().min(1)).optional().describe('Only issues with all these labels'),
        assignee: z.string().optional().describe('A login, "none" or "*"'),
        creator: login.optional(),
        sort: z.enum(['created', 'updated', 'comments']).default('created'),
        direction: z.enum(['asc', 'desc']).default('desc'),
        since: z.iso
          .datetime()
          .optional()
          .describe('Only issues updated at or after this ISO 8601 time'),
        include_pull_requests: z.boolean().default(false),
        ...paginationInput,
      },
      outputSchema: { items: z.array(IssueSummary), ...paginationOutput },
      annotations: READS,
    },
    async (args, { signal }) => {
      const { data, headers } = await github.request(z.array(GhIssue), {
        method: 'GET',
        path: path`/repos/${args.owner}/${args.repo}/issues`,
        query: {
          state: args.state,
          labels: args.labels?.join(','),
          assignee: args.assignee,
          creator: args.creator,
          sort: args.sort,
          direction: args.direction,
          since: args.since,
          per_page: args.per_page,
          page: args.page,
        },
        signal,
      });
      const items = data
        .map(toIssueSummary)
        .filter((issue) => args.include_pull_requests || !issue.is_pull_request);
      return toolResult({
        items,
        page: args.page,
        per_page: args.per_page,
        next_page: nextPageFromLink(headers),
      });
    },
  );

  server.registerTool(
    'get_issue',
    {
      title: 'Get an issue',
      description:
        'Gets one issue (or pull request conversation) with its body and, by default, its comments oldest first. Long bodies are trimmed with a marker; use comments_page to read further comments.',
      inputSchema: {
        ...repoInput,
        issue_number: issueNumber,
        include_comments: z.boolean().default(true),
        comments_per_page: z.number().int().min(1).max(100).default(30),
        comments_page: z.number().int().min(1).default(1),
      },
      outputSchema: {
        ...IssueSummary.shape,
        body: z.string(),
        body_truncated: z.boolean(),
        comment_list: z.array(IssueComment),
        comments_next_page: z.number().int().nullable(),
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const issuePath = path`/repos/${args.owner}/${args.repo}/issues/${args.issue_number}`;
      const { data: issue } = await github.request(GhIssue, {
        method: 'GET',
        path: issuePath,
        signal,
      });
      let commentList: z.infer<typeof IssueComment>[] = [];
      let commentsNextPage: number | null = null;
      if (args.include_comments && (issue.comments ?? 0) > 0) {
        const { data, headers } = await github.request(z.array(GhComment), {
          method: 'GET',
          path: `${issuePath}/comments`,
          query: { per_page: args.comments_per_page, page: args.comments_page },
          signal,
        });
        commentList = data.map((c) => toIssueComment(c, MAX_BODY_CHARS / 4));
        commentsNextPage = nextPageFromLink(headers);
      }
      const body = trimBody(issue.body, MAX_BODY_CHARS);
      return toolResult({
        ...toIssueSummary(issue),
        body: body.text,
        body_truncated: body.truncated,
        comment_list: commentList,
        comments_next_page: commentsNextPage,
      });
    },
  );

  server.registerTool(
    'create_issue',
    {
      title: 'Create an issue',
      description:
        'Opens a new issue in a repository. Labels, assignees and milestone are applied only if the key has push access; otherwise GitHub silently drops them.',
      inputSchema: {
        ...repoInput,
        title: z.string().min(1).max(256),
        body: z.string().max(65_536).optional().describe('Markdown body'),
        labels: z.array(z.string().min(1)).optional(),
        assignees: z.array(login).optional(),
        milestone: z.number().int().min(1).optional().describe('Milestone number'),
      },
      outputSchema: IssueSummary.shape,
      annotations: ADDS,
    },
    async ({ owner, repo, ...fields }, { signal }) => {
      const { data } = await github.request(GhIssue, {
        method: 'POST',
        path: path`/repos/${owner}/${repo}/issues`,
        json: fields,
        signal,
      });
      return toolResult(toIssueSummary(data));
    },
  );

  server.registerTool(
    'update_issue',
    {
      title: 'Update an issue',
      description:
        'Changes an issue: title, body, state (close with state_reason "completed" or "not_planned", reopen with "open"), and replaces its labels or assignees with the given lists. Only the fields you pass change.',
      inputSchema: {
        ...repoInput,
        issue_number: issueNumber,
        title: z.string().min(1).max(256).optional(),
        body: z.string().max(65_536).optional(),
        state: z.enum(['open', 'closed']).optional(),
        state_reason: z.enum(['completed', 'not_planned', 'reopened']).optional(),
        labels: z.array(z.string().min(1)).optional().describe('Replaces all labels'),
        assignees: z.array(login).optional().describe('Replaces all assignees'),
        milestone: z.number().int().min(1).nullable().optional().describe('null removes it'),
      },
      outputSchema: IssueSummary.shape,
      annotations: UPDATES,
    },
    async ({ owner, repo, issue_number, ...fields }, { signal }) => {
      const changes = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
      if (Object.keys(changes).length === 0)
        throw new Error(
          'Nothing to update: pass at least one of title, body, state, state_reason, labels, assignees or milestone.',
        );
      const { data } = await github.request(GhIssue, {
        method: 'PATCH',
        path: path`/repos/${owner}/${repo}/issues/${issue_number}`,
        json: changes,
        idempotent: true,
        signal,
      });
      return toolResult(toIssueSummary(data));
    },
  );

  server.registerTool(
    'add_issue_comment',
    {
      title: 'Comment on an issue',
      description:
        "Adds a comment to an issue or to a pull request's conversation. The body is Markdown.",
      inputSchema: {
        ...repoInput,
        issue_number: issueNumber,
        body: z.string().min(1).max(65_536),
      },
      outputSchema: IssueComment.shape,
      annotations: ADDS,
    },
    async ({ owner, repo, issue_number, body }, { signal }) => {
      const { data } = await github.request(GhComment, {
        method: 'POST',
        path: path`/repos/${owner}/${repo}/issues/${issue_number}/comments`,
        json: { body },
        signal,
      });
      return toolResult(toIssueComment(data, MAX_BODY_CHARS));
    },
  );
}
