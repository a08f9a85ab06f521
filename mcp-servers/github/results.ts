// Shapes the GitHub tools return (also their output schemas), and the mappers
// from GitHub's responses to them: compact, stable, with long texts trimmed.
import { z } from 'zod';
import { trimText } from '../shared/tool-result.js';
import type { GhComment, GhIssue, GhLabel, GhPullRequest, GhRepository } from './upstream.js';

/** Longest issue/PR/comment body returned before trimming. */
export const MAX_BODY_CHARS = 20_000;

export const RepositorySummary = z.object({
  full_name: z.string(),
  description: z.string().nullable(),
  private: z.boolean(),
  fork: z.boolean(),
  archived: z.boolean(),
  html_url: z.string(),
  default_branch: z.string().nullable(),
  language: z.string().nullable(),
  stars: z.number(),
  forks: z.number(),
  open_issues: z.number(),
  topics: z.array(z.string()),
  updated_at: z.string().nullable(),
  pushed_at: z.string().nullable(),
});

export const RepositoryDetail = RepositorySummary.extend({
  visibility: z.string().nullable(),
  homepage: z.string().nullable(),
  license: z.string().nullable(),
  created_at: z.string().nullable(),
});

export const IssueSummary = z.object({
  number: z.number(),
  title: z.string(),
  state: z.string(),
  state_reason: z.string().nullable(),
  author: z.string().nullable(),
  labels: z.array(z.string()),
  assignees: z.array(z.string()),
  milestone: z.string().nullable(),
  comments: z.number(),
  is_pull_request: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
  closed_at: z.string().nullable(),
  html_url: z.string(),
});

export const IssueComment = z.object({
  id: z.number(),
  author: z.string().nullable(),
  body: z.string(),
  created_at: z.string(),
  html_url: z.string(),
});

export const PullRequestSummary = z.object({
  number: z.number(),
  title: z.string(),
  state: z.string(),
  draft: z.boolean(),
  merged: z.boolean(),
  author: z.string().nullable(),
  head: z.string(),
  base: z.string(),
  labels: z.array(z.string()),
  created_at: z.string(),
  updated_at: z.string(),
  closed_at: z.string().nullable(),
  merged_at: z.string().nullable(),
  html_url: z.string(),
});

type Out<T extends z.ZodType> = z.infer<T>;

const labelNames = (labels: z.infer<typeof GhLabel>[] | null | undefined): string[] =>
  (labels ?? []).flatMap((l) => (typeof l === 'string' ? [l] : l.name ? [l.name] : []));

export function toRepositorySummary(
  r: z.infer<typeof GhRepository>,
): Out<typeof RepositorySummary> {
  return {
    full_name: r.full_name,
    description: r.description ?? null,
    private: r.private,
    fork: r.fork ?? false,
    archived: r.archived ?? false,
    html_url: r.html_url,
    default_branch: r.default_branch ?? null,
    language: r.language ?? null,
    stars: r.stargazers_count ?? 0,
    forks: r.forks_count ?? 0,
    open_issues: r.open_issues_count ?? 0,
    topics: r.topics ?? [],
    updated_at: r.updated_at ?? null,
    pushed_at: r.pushed_at ?? null,
  };
}

export function toRepositoryDetail(r: z.infer<typeof GhRepository>): Out<typeof RepositoryDetail> {
  return {
    ...toRepositorySummary(r),
    visibility: r.visibility ?? null,
    homepage: r.homepage || null,
    license: r.license?.spdx_id ?? null,
    created_at: r.created_at ?? null,
  };
}

export function toIssueSummary(i: z.infer<typeof GhIssue>): Out<typeof IssueSummary> {
  return {
    number: i.number,
    title: i.title,
    state: i.state,
    state_reason: i.state_reason ?? null,
    author: i.user?.login ?? null,
    labels: labelNames(i.labels),
    assignees: (i.assignees ?? []).map((a) => a.login),
    milestone: i.milestone?.title ?? null,
    comments: i.comments ?? 0,
    is_pull_request: i.pull_request != null,
    created_at: i.created_at,
    updated_at: i.updated_at,
    closed_at: i.closed_at ?? null,
    html_url: i.html_url,
  };
}

export function toIssueComment(
  c: z.infer<typeof GhComment>,
  maxChars: number,
): Out<typeof IssueComment> {
  return {
    id: c.id,
    author: c.user?.login ?? null,
    body: trimBody(c.body, maxChars).text,
    created_at: c.created_at,
    html_url: c.html_url,
  };
}

export function toPullRequestSummary(
  p: z.infer<typeof GhPullRequest>,
): Out<typeof PullRequestSummary> {
  return {
    number: p.number,
    title: p.title,
    state: p.state,
    draft: p.draft ?? false,
    merged: p.merged ?? p.merged_at != null,
    author: p.user?.login ?? null,
    head: p.head.label ?? p.head.ref,
    base: p.base.ref,
    labels: labelNames(p.labels),
    created_at: p.created_at,
    updated_at: p.updated_at,
    closed_at: p.closed_at ?? null,
    merged_at: p.merged_at ?? null,
    html_url: p.html_url,
  };
}

/** A body trimmed to `maxChars`, with a marker at the cut so a reader sees it is partial. */
export function trimBody(
  body: string | null | undefined,
  maxChars: number,
): { text: string; truncated: boolean } {
  const trimmed = trimText(body ?? '', maxChars);
  return trimmed.truncated
    ? {
        text: `${trimmed.text}\n… [trimmed: ${trimmed.length - maxChars} more characters]`,
        truncated: true,
      }
    : { text: trimmed.text, truncated: false };
}
