// The Gmail API v1 client: OAuth bearer auth with refresh, Google's error bodies
// (rate-limit reasons, missing scopes) and the `users/me` base path.
import { z } from 'zod';
import { BaseConfigSchema, type ServerEnv } from '../shared/env.js';
import {
  createHttpClient,
  type HttpClient,
  type UpstreamErrorInfo,
} from '../shared/http-client.js';
import type { Logger } from '../shared/log.js';
import type { Redactor } from '../shared/redact.js';
import { GOOGLE_TOKEN_URL, createTokenProvider, parseGmailKey } from './oauth.js';
import { GoogleErrorBody } from './upstream.js';

export const GmailConfigSchema = BaseConfigSchema.extend({
  api_version: z
    .string()
    .regex(/^v\d+$/)
    .default('v1'),
});
export type GmailConfig = z.infer<typeof GmailConfigSchema>;

export const GMAIL_API_URL = 'https://gmail.googleapis.com';

export interface GmailApi {
  http: HttpClient;
  /** `/gmail/v1/users/me`: every Gmail path starts here. */
  basePath: string;
}

export function createGmailApi(
  env: ServerEnv<GmailConfig>,
  log: Logger,
  redactor: Redactor,
  tokenUrl: string = process.env.MINIMCP_OAUTH_TOKEN_URL || GOOGLE_TOKEN_URL,
): GmailApi {
  const credentials = parseGmailKey(env.apiKey ?? '');
  if (!credentials.ok) throw new Error(credentials.message);
  const timeoutMs = env.config.timeout_ms ?? 30_000;
  const maxRetries = env.config.max_retries ?? 2;
  const tokens = createTokenProvider({
    credentials: credentials.value,
    tokenUrl,
    redactor,
    log,
    timeoutMs,
    maxRetries,
  });
  const http = createHttpClient({
    service: 'Gmail',
    baseUrl: env.upstreamUrl ?? GMAIL_API_URL,
    headers: async () => ({
      authorization: await tokens.authorization(),
      accept: 'application/json',
    }),
    timeoutMs,
    maxRetries,
    log,
    describeError: (status, body) => describeGoogleError(status, body, tokens.refreshable),
    renewCredentials: () => tokens.renew(),
  });
  return { http, basePath: `/gmail/${env.config.api_version}/users/me` };
}

const RATE_LIMIT_REASONS = new Set([
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'RATE_LIMIT_EXCEEDED',
]);

export function describeGoogleError(
  status: number,
  body: unknown,
  refreshable: boolean,
): UpstreamErrorInfo {
  const parsed = GoogleErrorBody.safeParse(body);
  const error = parsed.success ? parsed.data.error : undefined;
  const info: UpstreamErrorInfo = {
    message: error?.message ?? (typeof body === 'string' ? body.slice(0, 200) : undefined),
  };
  const reasons = (error?.errors ?? []).map((e) => e.reason ?? '');
  if (error?.status === 'RESOURCE_EXHAUSTED' || reasons.some((r) => RATE_LIMIT_REASONS.has(r)))
    info.kind = 'rate_limited';
  else if (status === 401 && !refreshable)
    info.hint =
      'Gmail access tokens expire after about an hour: store the key as JSON {"refresh_token","client_id","client_secret"} so the server can refresh it.';
  else if (
    status === 403 &&
    (reasons.includes('insufficientPermissions') || /scope/i.test(info.message ?? ''))
  )
    info.hint =
      'This server needs the scopes https://www.googleapis.com/auth/gmail.modify (read, label, trash) and https://www.googleapis.com/auth/gmail.compose (drafts, send).';
  return info;
}
