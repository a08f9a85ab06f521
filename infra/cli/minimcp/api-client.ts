// A small HTTP client for the MiniMCP API: bearer token, JSON bodies, answers
// parsed by a zod schema, and problem+json answers turned into ApiError whose
// message is the problem's `detail`.
import type { z } from 'zod';
import { ProblemSchema } from './api-schemas.js';
import { ApiError, CliError, EXIT } from './errors.js';

export interface ApiRequest {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

export interface ApiClient {
  readonly url: string;
  /** The parsed body of a 2xx answer; throws ApiError otherwise. */
  call<S extends z.ZodType>(
    method: string,
    route: string,
    schema: S,
    request?: ApiRequest,
  ): Promise<ApiResponse<z.infer<S>>>;
  /** For answers without a body (204). */
  send(method: string, route: string, request?: ApiRequest): Promise<number>;
}

export interface ApiClientOptions {
  url: string;
  token?: string;
  fetch?: typeof fetch;
  userAgent?: string;
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;

  async function request(method: string, route: string, req: ApiRequest): Promise<Response> {
    const url = new URL(base + route);
    for (const [name, value] of Object.entries(req.query ?? {}))
      if (value !== undefined) url.searchParams.set(name, String(value));
    const headers: Record<string, string> = {
      accept: 'application/json, application/problem+json',
      'user-agent': options.userAgent ?? 'minimcp-cli',
    };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await doFetch(url, {
        method,
        headers,
        ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
      });
    } catch (error) {
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      throw new CliError(
        `cannot reach the MiniMCP API at ${base} (${reason instanceof Error ? reason.message : String(reason)})`,
        EXIT.failed,
        {
          hint: 'is it running? (`npm start` runs it locally); the URL comes from MINIMCP_URL or `minimcp login`',
          cause: error,
        },
      );
    }
  }

  return {
    url: base,
    async call(method, route, schema, req = {}) {
      const response = await request(method, route, req);
      if (!response.ok) throw await problemOf(response, method, route);
      const text = await response.text();
      const parsed = schema.safeParse(text ? safeJson(text) : undefined);
      if (!parsed.success) {
        throw new CliError(
          `unexpected answer from ${method} ${route} (${response.status}): ${parsed.error.message}`,
          EXIT.failed,
        );
      }
      return { status: response.status, body: parsed.data };
    },
    async send(method, route, req = {}) {
      const response = await request(method, route, req);
      if (!response.ok) throw await problemOf(response, method, route);
      await response.body?.cancel();
      return response.status;
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON: the schema's parse reports it with the answer's shape.
    return text;
  }
}

async function problemOf(response: Response, method: string, route: string): Promise<ApiError> {
  const text = await response.text();
  const problem = ProblemSchema.safeParse(safeJson(text));
  const detail = problem.success ? (problem.data.detail ?? problem.data.title) : undefined;
  const message = detail ?? `${method} ${route} answered ${response.status} ${response.statusText}`;
  const retryAfter = response.headers.get('retry-after');
  return new ApiError(message, {
    status: response.status,
    ...(problem.success && problem.data.type ? { problemType: problem.data.type } : {}),
    ...(problem.success && problem.data.request_id ? { requestId: problem.data.request_id } : {}),
    ...(hintOf(response.status, retryAfter) ? { hint: hintOf(response.status, retryAfter) } : {}),
  });
}

function hintOf(status: number, retryAfter: string | null): string | undefined {
  if (status === 401) return 'run `minimcp login` again (the token is wrong, expired or revoked)';
  if (status === 403) return 'this needs an admin account';
  if ((status === 429 || status === 503) && retryAfter) return `retry in ${retryAfter} s`;
  return undefined;
}
