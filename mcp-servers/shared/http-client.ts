// HTTP plumbing shared by the GitHub, Gmail and Figma servers: auth headers,
// per-attempt timeouts, retries with backoff on 429/5xx honouring Retry-After,
// response parsing with zod, and mapping of failures to UpstreamError.
import type { z } from 'zod';
import type { Logger } from './log.js';
import {
  UpstreamError,
  buildErrorMessage,
  type UpstreamErrorKind,
  type UpstreamErrorContext,
} from './upstream-error.js';

export type QueryValue = string | number | boolean | undefined | null | readonly string[];

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Path below the base URL, with every interpolated value already encoded. */
  path: string;
  query?: Record<string, QueryValue>;
  json?: unknown;
  form?: Record<string, string>;
  headers?: Record<string, string>;
  /** The tool call's abort signal: cancelling the call cancels the request and any wait. */
  signal?: AbortSignal;
  /** Safe to repeat after a 5xx or a lost connection; defaults to true for GET only. */
  idempotent?: boolean;
}

export interface HttpResponse<T> {
  status: number;
  headers: Headers;
  data: T;
}

/** What a service says about a failed response, read from its error body and headers. */
export interface UpstreamErrorInfo {
  message?: string;
  /** Overrides the status-based classification (e.g. Figma answers a bad token with 403). */
  kind?: UpstreamErrorKind;
  resetAt?: Date;
  hint?: string;
}

export interface HttpClientOptions {
  service: string;
  baseUrl: string;
  /** Headers for every request, auth included; called per attempt so renewed tokens apply. */
  headers: () => Record<string, string> | Promise<Record<string, string>>;
  timeoutMs: number;
  maxRetries: number;
  log: Logger;
  describeError?: (status: number, body: unknown, headers: Headers) => UpstreamErrorInfo;
  /** On a 401, renews the credentials once; resolves true when the request should be repeated. */
  renewCredentials?: () => Promise<boolean>;
  /** Longest Retry-After or rate-limit reset worth sleeping through; a longer one is reported. */
  maxRetryWaitMs?: number;
  retryBaseMs?: number;
}

export interface HttpClient {
  request<S extends z.ZodType>(schema: S, request: HttpRequest): Promise<HttpResponse<z.output<S>>>;
}

const DEFAULT_MAX_RETRY_WAIT_MS = 10_000;
const DEFAULT_RETRY_BASE_MS = 250;
const MAX_BACKOFF_MS = 8_000;

export function createHttpClient(options: HttpClientOptions): HttpClient {
  const maxRetryWaitMs = options.maxRetryWaitMs ?? DEFAULT_MAX_RETRY_WAIT_MS;
  const retryBaseMs = options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
  const backoff = (attempt: number): number =>
    Math.min(MAX_BACKOFF_MS, retryBaseMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);

  async function request<S extends z.ZodType>(
    schema: S,
    req: HttpRequest,
  ): Promise<HttpResponse<z.output<S>>> {
    const label = `${req.method} ${req.path}`;
    const context: UpstreamErrorContext = { service: options.service, request: label };
    const idempotent = req.idempotent ?? req.method === 'GET';
    const url = buildUrl(options.baseUrl, req.path, req.query);
    let renewed = false;

    for (let attempt = 1; ; attempt++) {
      if (req.signal?.aborted) throw cancelled(context);
      const headers: Record<string, string> = { ...(await options.headers()), ...req.headers };
      let body: string | undefined;
      if (req.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(req.json);
      } else if (req.form !== undefined) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        body = new URLSearchParams(req.form).toString();
      }

      const timeout = AbortSignal.timeout(options.timeoutMs);
      const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
      let response: Response;
      let data: unknown;
      try {
        response = await fetch(url, { method: req.method, headers, body, signal });
        data = await readBody(response);
      } catch (error) {
        if (req.signal?.aborted) throw cancelled(context, error);
        const kind: UpstreamErrorKind = timeout.aborted ? 'timeout' : 'network';
        options.log.warn('upstream request failed', { request: label, kind, attempt });
        if (idempotent && attempt <= options.maxRetries) {
          await sleep(backoff(attempt), req.signal, context);
          continue;
        }
        const hint = kind === 'network' ? networkCause(error) : undefined;
        throw new UpstreamError(
          kind,
          buildErrorMessage({ kind, ...context, attempts: attempt, hint }),
          context,
          { cause: error },
        );
      }

      if (response.ok) {
        const parsed = schema.safeParse(data);
        if (parsed.success)
          return { status: response.status, headers: response.headers, data: parsed.data };
        const issue = parsed.error.issues[0];
        const where = issue ? ` (${issue.path.join('.') || 'body'}: ${issue.message})` : '';
        options.log.error('unexpected upstream response', {
          request: label,
          status: response.status,
          where,
        });
        throw new UpstreamError(
          'bad_response',
          buildErrorMessage({
            kind: 'bad_response',
            ...context,
            hint: `Unexpected shape${where}.`,
          }),
          { ...context, status: response.status },
        );
      }

      const status = response.status;
      const info = options.describeError?.(status, data, response.headers) ?? {};
      const kind = info.kind ?? classifyStatus(status, response.headers);
      const resetAt = info.resetAt ?? readResetTime(response.headers);
      options.log.warn('upstream request failed', {
        request: label,
        status,
        kind,
        attempt,
        upstreamMessage: info.message,
        resetAt: resetAt?.toISOString(),
      });

      if (status === 401 && !renewed && options.renewCredentials) {
        renewed = true;
        if (await options.renewCredentials()) {
          // A renewal is not a retry: the repeated request gets the full retry budget.
          attempt--;
          continue;
        }
      }
      if (attempt <= options.maxRetries) {
        if (kind === 'rate_limited') {
          const waitMs = resetAt ? resetAt.getTime() - Date.now() : backoff(attempt);
          if (waitMs <= maxRetryWaitMs) {
            await sleep(Math.max(0, waitMs), req.signal, context);
            continue;
          }
        } else if (kind === 'server_error' && idempotent) {
          const retryAfter = readResetTime(response.headers);
          const waitMs = retryAfter ? retryAfter.getTime() - Date.now() : backoff(attempt);
          if (waitMs <= maxRetryWaitMs) {
            await sleep(Math.max(0, waitMs), req.signal, context);
            continue;
          }
        }
      }
      throw new UpstreamError(
        kind,
        buildErrorMessage({
          kind,
          ...context,
          status,
          upstreamMessage: info.message,
          resetAt,
          hint: info.hint,
          attempts: attempt,
        }),
        { ...context, status, resetAt },
      );
    }
  }

  return { request };
}

export function buildUrl(
  baseUrl: string,
  path: string,
  query?: Record<string, QueryValue>,
): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value))
      for (const item of value as readonly string[]) params.append(name, item);
    else params.append(name, String(value));
  }
  const search = params.toString();
  return `${baseUrl}${path}${search ? `?${search}` : ''}`;
}

/** Encodes each interpolated value as one path segment: `path\`/repos/${owner}/${repo}\``. */
export function path(strings: TemplateStringsArray, ...values: (string | number)[]): string {
  return strings.reduce(
    (out, part, index) =>
      out + part + (index < values.length ? encodeURIComponent(String(values[index])) : ''),
    '',
  );
}

export function classifyStatus(status: number, headers: Headers): UpstreamErrorKind {
  if (status === 401) return 'unauthorized';
  if (status === 429) return 'rate_limited';
  if (status === 403)
    return headers.get('x-ratelimit-remaining') === '0' || headers.has('retry-after')
      ? 'rate_limited'
      : 'forbidden';
  if (status === 404 || status === 410) return 'not_found';
  if (status === 409) return 'conflict';
  if (status >= 500) return 'server_error';
  return 'invalid_request';
}

/**
 * When a limit resets: `Retry-After` (seconds or an HTTP date), else an exhausted
 * `X-RateLimit-Reset` (epoch seconds, as GitHub sends it).
 */
export function readResetTime(headers: Headers, now: number = Date.now()): Date | undefined {
  const retryAfter = headers.get('retry-after');
  if (retryAfter !== null) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return new Date(now + Math.max(0, seconds) * 1000);
    const date = Date.parse(retryAfter);
    if (Number.isFinite(date)) return new Date(date);
  }
  const reset = Number(headers.get('x-ratelimit-reset') ?? NaN);
  if (headers.get('x-ratelimit-remaining') === '0' && Number.isFinite(reset))
    return new Date(reset > 1e9 ? reset * 1000 : now + reset * 1000);
  return undefined;
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return null;
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('json')) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // A JSON content type with a non-JSON body (a proxy's error page, say) is kept as
    // text: the status still classifies the failure and the schema rejects a success.
    return text;
  }
}

function cancelled(context: UpstreamErrorContext, cause?: unknown): UpstreamError {
  return new UpstreamError(
    'cancelled',
    buildErrorMessage({ kind: 'cancelled', ...context }),
    context,
    {
      cause,
    },
  );
}

function sleep(
  ms: number,
  signal: AbortSignal | undefined,
  context: UpstreamErrorContext,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(context));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelled(context));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function networkCause(error: unknown): string {
  // undici reports "fetch failed" and keeps the reason (ECONNREFUSED, a DNS failure, ...) in `cause`.
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const detail =
    typeof cause?.code === 'string'
      ? cause.code
      : typeof cause?.message === 'string'
        ? cause.message
        : (error as Error).message;
  return `Network error: ${detail}.`;
}
