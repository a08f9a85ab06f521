// The one translation of errors to HTTP: RFC 9457 problem+json with a stable
// `type` URI per error, a human `detail`, and the request id. Nothing else
// (stack, SQL, driver message) ever reaches a client.
import { HTTPException } from 'hono/http-exception';
import type { z } from 'zod';
import { isDatabaseUnavailable, toDatabaseUnavailable } from '../core/db/unavailable.js';
import { isMiniMcpError, RateLimitedError, UnauthenticatedError } from '../core/errors.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const PROBLEM_TYPE_BASE = 'https://minimcp.dev/problems/';
/** Seconds a client should wait after a 503. */
const RETRY_AFTER_UNAVAILABLE = 5;

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  request_id: string;
  errors?: FieldError[];
}

export interface FieldError {
  /** Where: `body.email`, `path.id`, `query.limit`. */
  field: string;
  message: string;
}

/** Titles of the problem types; a `type` not listed gets the HTTP reason phrase. */
const TITLES: Record<string, string> = {
  'validation-failed': 'The request is not valid',
  'malformed-json': 'The request body is not valid JSON',
  'unsupported-media-type': 'Unsupported content type',
  'payload-too-large': 'The request body is too large',
  'header-too-large': 'The request headers are too large',
  'bad-request': 'Bad request',
  unauthenticated: 'Authentication required',
  forbidden: 'Not allowed',
  'not-found': 'Not found',
  'route-not-found': 'No such route',
  'method-not-allowed': 'Method not allowed',
  conflict: 'Conflict',
  'rate-limited': 'Too many requests',
  'instance-limit-reached': 'Instance limit reached',
  'key-missing': 'No usable API key for this type',
  'key-undecryptable': 'A stored key could not be decrypted',
  'port-pool-exhausted': 'No free port',
  'no-node-available': 'No compute node available',
  'database-unavailable': 'The database is unavailable',
  'agent-unavailable': 'The node agent is unavailable',
  'key-provider-unavailable': 'The key provider is unavailable',
  'instance-start-failed': 'The instance could not start',
  'mcp-server-start-failed': 'The MCP server could not start',
  'agent-timeout': 'The node agent did not answer in time',
  'agent-call-failed': 'The node agent answered with an error',
  'internal-error': 'Internal server error',
  'verification-token-invalid': 'The verification token cannot be used',
  'email-not-verified': 'Email address not verified',
};

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problemType(slug: string): string {
  return PROBLEM_TYPE_BASE + slug;
}

/** A problem raised by the HTTP layer itself (routing, body, content type), not by the domain. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
    readonly errors?: FieldError[],
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

/** Field names whose values are never echoed back. */
const SENSITIVE_FIELDS = new Set(['password', 'key', 'token', 'access_token', 'secret']);

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const TARGET_NAMES: Record<string, string> = {
  json: 'body',
  param: 'path',
  query: 'query',
  header: 'header',
  cookie: 'cookie',
};

/**
 * A zod failure on one part of the request as a 400: every issue with where
 * it is and, unless the field is sensitive, the value that was sent.
 */
export function validationProblem(target: string, error: z.ZodError, input: unknown): HttpProblem {
  const where = TARGET_NAMES[target] ?? target;
  const errors = error.issues.slice(0, 20).map((issue): FieldError => {
    const field = [where, ...issue.path.map(String)].join('.');
    const last = issue.path.at(-1);
    const sensitive = typeof last === 'string' && SENSITIVE_FIELDS.has(last);
    const value = valueAt(input, issue.path);
    const shown =
      issue.code === 'unrecognized_keys' || value === undefined || sensitive
        ? ''
        : ` (got ${describeValue(value)})`;
    return { field, message: `${issue.message}${shown}` };
  });
  const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return new HttpProblem(400, 'validation-failed', detail, {}, errors);
}

// The classifier lives with the database code; re-exported for the API's callers.
export { isDatabaseUnavailable };

export interface ProblemResponse {
  status: number;
  body: ProblemBody;
  headers: Record<string, string>;
  /** An error we did not expect: log it in full (server side only). */
  unexpected: boolean;
}

/** Maps anything thrown while serving a request to the problem the client sees. */
export function toProblem(
  error: unknown,
  request: { instance: string; requestId: string },
): ProblemResponse {
  const make = (
    status: number,
    slug: string,
    detail: string,
    headers: Record<string, string> = {},
    errors?: FieldError[],
    unexpected = false,
  ): ProblemResponse => ({
    status,
    headers,
    unexpected,
    body: {
      type: problemType(slug),
      title: TITLES[slug] ?? REASONS[status] ?? 'Error',
      status,
      detail,
      instance: request.instance,
      request_id: request.requestId,
      ...(errors ? { errors } : {}),
    },
  });

  if (error instanceof HttpProblem) {
    return make(error.status, error.slug, error.detail, error.headers, error.errors);
  }
  if (isMiniMcpError(error)) {
    const slug = error.code.toLowerCase().replaceAll('_', '-');
    const headers: Record<string, string> = {};
    if (error instanceof RateLimitedError) headers['Retry-After'] = String(error.retryAfterSeconds);
    if (error instanceof UnauthenticatedError)
      headers['WWW-Authenticate'] = 'Bearer realm="minimcp"';
    if (error.httpStatus === 503) headers['Retry-After'] ??= String(RETRY_AFTER_UNAVAILABLE);
    const detail = error.messageForClients
      ? error.message
      : (TITLES[slug] ?? 'Internal server error');
    return make(error.httpStatus, slug, detail, headers, undefined, error.httpStatus === 500);
  }
  if (error instanceof HTTPException) {
    switch (error.status) {
      case 400:
        // hono answers 400 only from its request validators, and the body is
        // the one thing they parse: our routes read JSON bodies only.
        return make(400, 'malformed-json', 'The request body could not be parsed as JSON.');
      case 413:
        return make(413, 'payload-too-large', 'The request body is larger than allowed.');
      case 415:
        return make(
          415,
          'unsupported-media-type',
          'Send the request body as application/json (Content-Type: application/json).',
        );
      default:
        if (error.status < 500) {
          return make(error.status, 'bad-request', REASONS[error.status] ?? 'Bad request');
        }
    }
  }
  if (isDatabaseUnavailable(error)) {
    // Still logged in full (unexpected): an outage's driver error is what operators need.
    return make(
      503,
      'database-unavailable',
      toDatabaseUnavailable(error).message,
      { 'Retry-After': String(RETRY_AFTER_UNAVAILABLE) },
      undefined,
      true,
    );
  }
  return make(
    500,
    'internal-error',
    `Something went wrong on our side. Quote request id ${request.requestId} when reporting it.`,
    {},
    undefined,
    true,
  );
}

export function problemResponse(problem: ProblemResponse, requestId: string): Response {
  return new Response(JSON.stringify(problem.body), {
    status: problem.status,
    headers: {
      'Content-Type': PROBLEM_CONTENT_TYPE,
      'Cache-Control': 'no-store',
      'x-request-id': requestId,
      ...problem.headers,
    },
  });
}
