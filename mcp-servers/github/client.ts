// The GitHub REST v3 client: token auth and headers, GitHub's error bodies and
// rate-limit headers, scope hints, and `Link`-header pagination.
import { z } from 'zod';
import { BaseConfigSchema, type ServerEnv } from '../shared/env.js';
import {
  createHttpClient,
  type HttpClient,
  type UpstreamErrorInfo,
} from '../shared/http-client.js';
import type { Logger } from '../shared/log.js';
import { GhErrorBody } from './upstream.js';

export const GithubConfigSchema = BaseConfigSchema.extend({
  /** Value of X-GitHub-Api-Version, GitHub's dated REST version. */
  rest_api_version: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/)
    .optional(),
});
export type GithubConfig = z.infer<typeof GithubConfigSchema>;

export const GITHUB_API_URL = 'https://api.github.com';
const DEFAULT_REST_API_VERSION = '2022-11-28';

export function createGithubClient(env: ServerEnv<GithubConfig>, log: Logger): HttpClient {
  const token = env.apiKey ?? '';
  const headers = {
    authorization: `Bearer ${token}`,
    accept: 'application/vnd.github+json',
    'x-github-api-version': env.config.rest_api_version ?? DEFAULT_REST_API_VERSION,
    // GitHub rejects requests without a User-Agent.
    'user-agent': 'MiniMCP-GitHub-MCP/0.1',
  };
  return createHttpClient({
    service: 'GitHub',
    baseUrl: env.upstreamUrl ?? GITHUB_API_URL,
    headers: () => headers,
    timeoutMs: env.config.timeout_ms ?? 30_000,
    maxRetries: env.config.max_retries ?? 2,
    log,
    describeError: describeGithubError,
  });
}

export function describeGithubError(
  status: number,
  body: unknown,
  headers: Headers,
): UpstreamErrorInfo {
  const parsed = GhErrorBody.safeParse(body);
  const base = parsed.success
    ? parsed.data.message
    : typeof body === 'string'
      ? body.slice(0, 200)
      : undefined;
  const details = parsed.success
    ? (parsed.data.errors ?? [])
        .map((e) =>
          typeof e === 'string' ? e : (e.message ?? [e.field, e.code].filter(Boolean).join(' ')),
        )
        .filter(Boolean)
    : [];
  const message = details.length > 0 ? `${base ?? 'Error'}: ${details.join('; ')}` : base;

  const info: UpstreamErrorInfo = { message };
  // Secondary rate limits come as a 403 whose only mark may be the message.
  if ((status === 403 || status === 429) && /rate limit/i.test(message ?? ''))
    info.kind = 'rate_limited';
  const accepted = headers.get('x-accepted-oauth-scopes');
  if ((status === 403 || status === 404) && accepted)
    info.hint = `This endpoint accepts the OAuth scopes: ${accepted}; the key has: ${headers.get('x-oauth-scopes') || 'none'}.`;
  return info;
}

/** The page number of `rel="next"` in a `Link` header, or null on the last page. */
export function nextPageFromLink(headers: Headers): number | null {
  const link = headers.get('link');
  if (!link) return null;
  for (const part of link.split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="next"/.exec(part);
    if (!match?.[1]) continue;
    const page = new URL(match[1]).searchParams.get('page');
    return page === null ? null : Number(page);
  }
  return null;
}

/** Inputs shared by the list tools. */
export const paginationInput = {
  page: z.number().int().min(1).default(1).describe('Page number, starting at 1'),
  per_page: z.number().int().min(1).max(100).default(30).describe('Items per page (max 100)'),
};

export const paginationOutput = {
  page: z.number().int(),
  per_page: z.number().int(),
  next_page: z.number().int().nullable().describe('Pass as `page` for more; null on the last page'),
};

// `.` and `..` would be resolved away by URL parsing and reach another endpoint.
const segment = (what: string) =>
  z
    .string()
    .regex(
      /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,100}$/,
      `${what} may contain only letters, digits, '-', '_' and '.'`,
    );

export const repoInput = {
  owner: segment('owner').describe('Repository owner (user or organization), e.g. "octocat"'),
  repo: segment('repo').describe('Repository name, e.g. "hello-world"'),
};
