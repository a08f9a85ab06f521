// The Figma REST v1 client: personal access token (X-Figma-Token) or OAuth
// bearer auth, Figma's error bodies, and the input forms shared by the tools
// (file keys or file URLs, node ids as 1:2 or 1-2).
import { z } from 'zod';
import { BaseConfigSchema, type ServerEnv } from '../shared/env.js';
import {
  createHttpClient,
  type HttpClient,
  type UpstreamErrorInfo,
} from '../shared/http-client.js';
import type { Logger } from '../shared/log.js';
import { FgErrorBody } from './upstream.js';

// `api_version` is accepted and not used: every endpoint these tools call is
// under /v1 (Figma's /v2 holds only webhooks), whatever the type's template says.
export const FigmaConfigSchema = BaseConfigSchema;
export type FigmaConfig = z.infer<typeof FigmaConfigSchema>;

export const FIGMA_API_URL = 'https://api.figma.com';

export function createFigmaClient(env: ServerEnv<FigmaConfig>, log: Logger): HttpClient {
  const token = env.apiKey ?? '';
  // Personal access tokens (figd_...) go in X-Figma-Token; OAuth access tokens are bearer tokens.
  const auth: Record<string, string> = token.startsWith('figd_')
    ? { 'x-figma-token': token }
    : { authorization: `Bearer ${token}` };
  return createHttpClient({
    service: 'Figma',
    baseUrl: env.upstreamUrl ?? FIGMA_API_URL,
    headers: () => ({ ...auth, accept: 'application/json' }),
    timeoutMs: env.config.timeout_ms ?? 60_000,
    maxRetries: env.config.max_retries ?? 2,
    log,
    describeError: describeFigmaError,
  });
}

export function describeFigmaError(
  status: number,
  body: unknown,
  headers: Headers,
): UpstreamErrorInfo {
  const parsed = FgErrorBody.safeParse(body);
  const message =
    (parsed.success ? (parsed.data.err ?? parsed.data.message) : undefined) ??
    (typeof body === 'string' ? body.slice(0, 200) : undefined);
  const info: UpstreamErrorInfo = { message };
  // Figma answers a bad or expired token with 403, not 401.
  if (status === 403 && /invalid token|expired/i.test(message ?? '')) info.kind = 'unauthorized';
  else if (status === 403)
    info.hint =
      'The token may lack a scope (file_content:read, file_comments:write, projects:read) or access to this file or team.';
  else if (status === 429) {
    const type = headers.get('x-figma-rate-limit-type');
    const tier = headers.get('x-figma-plan-tier');
    if (type || tier)
      info.hint = `Figma limit type: ${type ?? 'unknown'}, plan tier: ${tier ?? 'unknown'}.`;
  }
  return info;
}

const FILE_URL =
  /figma\.com\/(?:file|design|proto|board|slides|deck)\/([A-Za-z0-9]+)(?:\/branch\/([A-Za-z0-9]+))?/;
const FILE_KEY = /^[A-Za-z0-9]{6,128}$/;

export const fileKeyInput = z
  .string()
  .min(1)
  .max(2000)
  .describe("File key (the part after /design/ or /file/ in the URL) or the file's URL");

/** The file key of a key or a Figma URL (a branch URL gives the branch's key). */
export function fileKeyOf(input: string): string {
  const trimmed = input.trim();
  const url = FILE_URL.exec(trimmed);
  if (url) return url[2] ?? (url[1] as string);
  if (FILE_KEY.test(trimmed)) return trimmed;
  throw new Error(
    `file_key must be a Figma file key such as "FaKeFiLeKeY123" or a figma.com/design/... URL, got ${JSON.stringify(input.slice(0, 100))}.`,
  );
}

export const nodeIdsInput = z
  .array(
    z
      .string()
      .regex(/^[A-Za-z0-9:;-]{1,200}$/, 'a node id such as "1:2" (URLs write it "1-2")')
      .transform((id) => id.replaceAll('-', ':')),
  )
  .min(1)
  .max(50);

export const listWindowInput = {
  limit: z.number().int().min(1).max(500).default(100),
  offset: z.number().int().min(0).default(0).describe('Items to skip; pass next_offset for more'),
};

export const listWindowOutput = {
  total: z.number().int(),
  next_offset: z.number().int().nullable().describe('Pass as offset for more; null at the end'),
};

/** Figma returns these lists whole; the tools hand them out a window at a time. */
export function window<T>(
  items: T[],
  offset: number,
  limit: number,
): { items: T[]; total: number; next_offset: number | null } {
  const end = offset + limit;
  return {
    items: items.slice(offset, end),
    total: items.length,
    next_offset: end < items.length ? end : null,
  };
}
