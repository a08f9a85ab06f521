// Gmail credentials: the stored key is a bare OAuth access token or a JSON object
// with a refresh token and client; this module parses it and keeps a valid
// access token, refreshing it before expiry and after a 401.
import { z } from 'zod';
import { createHttpClient } from '../shared/http-client.js';
import type { Logger } from '../shared/log.js';
import type { Redactor } from '../shared/redact.js';
import { OAuthErrorBody, OAuthTokenResponse } from './upstream.js';

export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Refresh this long before the reported expiry, so a token never dies mid-request. */
const EXPIRY_MARGIN_MS = 60_000;

const RefreshableKey = z.object({
  refresh_token: z.string().min(1),
  client_id: z.string().min(1),
  client_secret: z.string().min(1),
  access_token: z.string().min(1).optional(),
  /** Epoch milliseconds, as google-auth-library stores it. */
  expiry_date: z.number().optional(),
});

export type GmailCredentials =
  | { kind: 'access_token'; accessToken: string }
  | ({ kind: 'refreshable' } & z.infer<typeof RefreshableKey>);

export type CredentialsResult =
  { ok: true; value: GmailCredentials } | { ok: false; message: string };

export function parseGmailKey(key: string): CredentialsResult {
  if (!key.startsWith('{')) return { ok: true, value: { kind: 'access_token', accessToken: key } };
  let json: unknown;
  try {
    json = JSON.parse(key);
  } catch {
    // The parser's message can quote the key; say only what is wrong with it.
    return { ok: false, message: 'The Gmail key starts with "{" but is not valid JSON.' };
  }
  const refreshable = RefreshableKey.safeParse(json);
  if (refreshable.success) return { ok: true, value: { kind: 'refreshable', ...refreshable.data } };
  const bare = z.object({ access_token: z.string().min(1) }).safeParse(json);
  if (bare.success)
    return { ok: true, value: { kind: 'access_token', accessToken: bare.data.access_token } };
  return {
    ok: false,
    message:
      'The Gmail key JSON needs refresh_token, client_id and client_secret (and optionally access_token), or at least access_token.',
  };
}

export interface TokenProvider {
  /** The Authorization header value, refreshing first when the token is missing or about to expire. */
  authorization(): Promise<string>;
  /** Refreshes after a 401; resolves false when the key cannot be refreshed (a bare access token). */
  renew(): Promise<boolean>;
  readonly refreshable: boolean;
}

export function createTokenProvider(options: {
  credentials: GmailCredentials;
  tokenUrl: string;
  redactor: Redactor;
  log: Logger;
  timeoutMs: number;
  maxRetries: number;
}): TokenProvider {
  const { credentials, redactor, log } = options;
  if (credentials.kind === 'access_token') {
    redactor.add(credentials.accessToken);
    return {
      authorization: () => Promise.resolve(`Bearer ${credentials.accessToken}`),
      renew: () => Promise.resolve(false),
      refreshable: false,
    };
  }

  for (const secret of [
    credentials.refresh_token,
    credentials.client_secret,
    credentials.access_token,
  ])
    if (secret) redactor.add(secret);
  let accessToken = credentials.access_token;
  // Without a recorded expiry, trust a given access token until Gmail answers 401.
  let expiresAt = credentials.expiry_date ?? Number.POSITIVE_INFINITY;
  let inFlight: Promise<void> | undefined;

  const tokenUrl = new URL(options.tokenUrl);
  const oauth = createHttpClient({
    service: 'Google OAuth',
    baseUrl: tokenUrl.origin,
    headers: () => ({ accept: 'application/json' }),
    timeoutMs: options.timeoutMs,
    maxRetries: options.maxRetries,
    log,
    describeError: (_status, body) => {
      const parsed = OAuthErrorBody.safeParse(body);
      if (!parsed.success) return {};
      const { error, error_description } = parsed.data;
      const message = error_description ? `${error}: ${error_description}` : error;
      if (error === 'invalid_grant')
        return {
          message,
          kind: 'unauthorized',
          hint: 'The refresh token was revoked or has expired: authorize again and store the new refresh token.',
        };
      if (error === 'invalid_client' || error === 'unauthorized_client')
        return {
          message,
          kind: 'unauthorized',
          hint: 'client_id or client_secret in the stored Gmail key is wrong.',
        };
      return { message };
    },
  });

  const refresh = async (): Promise<void> => {
    const { data } = await oauth.request(OAuthTokenResponse, {
      method: 'POST',
      path: tokenUrl.pathname,
      form: {
        grant_type: 'refresh_token',
        refresh_token: credentials.refresh_token,
        client_id: credentials.client_id,
        client_secret: credentials.client_secret,
      },
      // A refresh grant can be repeated safely.
      idempotent: true,
    });
    redactor.add(data.access_token);
    accessToken = data.access_token;
    expiresAt = Date.now() + (data.expires_in ?? 3600) * 1000;
    log.info('refreshed the Gmail access token', { expires_at: new Date(expiresAt).toISOString() });
  };
  // Concurrent tool calls share one refresh.
  const refreshOnce = (): Promise<void> => {
    inFlight ??= refresh().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  return {
    refreshable: true,
    async authorization() {
      if (accessToken === undefined || Date.now() > expiresAt - EXPIRY_MARGIN_MS)
        await refreshOnce();
      return `Bearer ${accessToken}`;
    },
    async renew() {
      await refreshOnce();
      return true;
    },
  };
}
