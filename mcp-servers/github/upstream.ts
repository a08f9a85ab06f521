// Schemas of the GitHub REST v3 responses the tools read: only the fields used,
// parsed at the boundary (unknown fields are dropped, missing ones fail loudly).
import { z } from 'zod';

export const GhUser = z.object({ login: z.string(), html_url: z.string().nullish() });

export const GhLabel = z.union([z.string(), z.object({ name: z.string().nullish() })]);

export const GhRepository = z.object({
  full_name: z.string(),
  description: z.string().nullish(),
  private: z.boolean(),
  fork: z.boolean().nullish(),
  archived: z.boolean().nullish(),
  html_url: z.string(),
  default_branch: z.string().nullish(),
  language: z.string().nullish(),
  stargazers_count: z.number().nullish(),
  forks_count: z.number().nullish(),
  open_issues_count: z.number().nullish(),
  topics: z.array(z.string()).nullish(),
  visibility: z.string().nullish(),
  homepage: z.string().nullish(),
  license: z.object({ spdx_id: z.string().nullish() }).nullish(),
  created_at: z.string().nullish(),
  updated_at: z.string().nullish(),
  pushed_at: z.string().nullish(),
});

export const GhRepositorySearch = z.object({
  total_count: z.number(),
  incomplete_results: z.boolean(),
  items: z.array(GhRepository),
});

export const GhIssue = z.object({
  number: z.number(),
  title: z.string(),
  state: z.string(),
  state_reason: z.string().nullish(),
  body: z.string().nullish(),
  user: GhUser.nullish(),
  labels: z.array(GhLabel).nullish(),
  assignees: z.array(GhUser).nullish(),
  milestone: z.object({ title: z.string() }).nullish(),
  comments: z.number().nullish(),
  created_at: z.string(),
  updated_at: z.string(),
  closed_at: z.string().nullish(),
  html_url: z.string(),
  pull_request: z.object({}).loose().nullish(),
});

export const GhComment = z.object({
  id: z.number(),
  user: GhUser.nullish(),
  body: z.string().nullish(),
  created_at: z.string(),
  html_url: z.string(),
});

const GhBranchRef = z.object({ ref: z.string(), sha: z.string(), label: z.string().nullish() });

export const GhPullRequest = z.object({
  number: z.number(),
  title: z.string(),
  state: z.string(),
  draft: z.boolean().nullish(),
  user: GhUser.nullish(),
  head: GhBranchRef,
  base: GhBranchRef,
  labels: z.array(GhLabel).nullish(),
  body: z.string().nullish(),
  created_at: z.string(),
  updated_at: z.string(),
  closed_at: z.string().nullish(),
  merged_at: z.string().nullish(),
  html_url: z.string(),
  // Present on the single-PR endpoint only.
  merged: z.boolean().nullish(),
  mergeable: z.boolean().nullish(),
  mergeable_state: z.string().nullish(),
  commits: z.number().nullish(),
  additions: z.number().nullish(),
  deletions: z.number().nullish(),
  changed_files: z.number().nullish(),
});

export const GhPullRequestFile = z.object({
  filename: z.string(),
  status: z.string(),
  additions: z.number(),
  deletions: z.number(),
  changes: z.number(),
  patch: z.string().nullish(),
  previous_filename: z.string().nullish(),
});

const GhContentEntry = z.object({
  type: z.string(),
  name: z.string(),
  path: z.string(),
  size: z.number().nullish(),
  sha: z.string(),
  html_url: z.string().nullish(),
});

export const GhContents = z.union([
  z.array(GhContentEntry),
  GhContentEntry.extend({
    content: z.string().nullish(),
    encoding: z.string().nullish(),
    target: z.string().nullish(),
    submodule_git_url: z.string().nullish(),
  }),
]);

export const GhCodeSearch = z.object({
  total_count: z.number(),
  incomplete_results: z.boolean(),
  items: z.array(
    z.object({
      name: z.string(),
      path: z.string(),
      sha: z.string(),
      html_url: z.string(),
      repository: z.object({ full_name: z.string() }),
      text_matches: z.array(z.object({ fragment: z.string().nullish() })).nullish(),
    }),
  ),
});

const GhGitActor = z.object({ name: z.string().nullish(), date: z.string().nullish() }).nullish();

export const GhCommit = z.object({
  sha: z.string(),
  html_url: z.string(),
  commit: z.object({ message: z.string(), author: GhGitActor, committer: GhGitActor }),
  author: GhUser.nullish(),
});

export const GhAuthenticatedUser = z.object({
  login: z.string(),
  name: z.string().nullish(),
  email: z.string().nullish(),
  company: z.string().nullish(),
  bio: z.string().nullish(),
  html_url: z.string(),
  type: z.string().nullish(),
  public_repos: z.number().nullish(),
  total_private_repos: z.number().nullish(),
  followers: z.number().nullish(),
  created_at: z.string().nullish(),
});

/** GitHub's error body: `{ message, errors?, documentation_url }`. */
export const GhErrorBody = z.object({
  message: z.string().optional(),
  errors: z
    .array(
      z.union([
        z.string(),
        z.object({
          message: z.string().optional(),
          field: z.string().optional(),
          code: z.string().optional(),
        }),
      ]),
    )
    .optional(),
});
