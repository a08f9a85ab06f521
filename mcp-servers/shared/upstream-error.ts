// The one error type of the built-in servers: a failed upstream call, classified
// so the tool result tells a person and a model what went wrong and what to do.

export type UpstreamErrorKind =
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'rate_limited'
  | 'invalid_request'
  | 'conflict'
  | 'server_error'
  | 'timeout'
  | 'network'
  | 'cancelled'
  | 'bad_response';

export interface UpstreamErrorContext {
  service: string;
  /** `GET /repos/{owner}/{repo}`-style description of the request, without host or secrets. */
  request: string;
  status?: number;
  resetAt?: Date;
}

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    readonly context: UpstreamErrorContext,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `2026-11-25T10:42:00Z (in about 37 min)`: absolute for people, relative for models. */
export function describeReset(resetAt: Date, now: Date = new Date()): string {
  const iso = resetAt.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const seconds = Math.max(0, Math.round((resetAt.getTime() - now.getTime()) / 1000));
  const relative =
    seconds < 90
      ? `${seconds} s`
      : seconds < 90 * 60
        ? `about ${Math.round(seconds / 60)} min`
        : `about ${Math.round(seconds / 3600)} h`;
  return `${iso} (in ${relative})`;
}

export interface ErrorMessageInput {
  kind: UpstreamErrorKind;
  service: string;
  request: string;
  status?: number;
  /** The upstream's own message, e.g. GitHub's `Bad credentials`. */
  upstreamMessage?: string;
  resetAt?: Date;
  /** Service-specific advice, e.g. which OAuth scope is missing. */
  hint?: string;
  attempts?: number;
}

export function buildErrorMessage(input: ErrorMessageInput): string {
  const { service, request } = input;
  const said =
    input.status === undefined
      ? ''
      : ` (HTTP ${input.status}${input.upstreamMessage ? `: ${input.upstreamMessage}` : ''})`;
  const hint = input.hint ? ` ${input.hint}` : '';
  switch (input.kind) {
    case 'unauthorized':
      return `${service} rejected the credentials${said} for ${request}. The stored ${service} key is invalid, expired or revoked: store a new key and start a new instance.${hint}`;
    case 'forbidden':
      return `${service} refused ${request}${said}. The key lacks a permission or scope this request needs, or the resource is restricted.${hint}`;
    case 'not_found':
      return `Not found on ${service}${said}: ${request}. Check the identifiers; resources the key cannot see are also reported as not found.${hint}`;
    case 'rate_limited':
      return `Rate limited by ${service}${said} on ${request}. ${
        input.resetAt
          ? `The limit resets at ${describeReset(input.resetAt)}; retry after that.`
          : 'No reset time was given; wait a minute before retrying.'
      }${hint}`;
    case 'invalid_request':
      return `${service} rejected ${request} as invalid${said}. Fix the arguments and try again.${hint}`;
    case 'conflict':
      return `${service} reported a conflict on ${request}${said}.${hint}`;
    case 'server_error':
      return `${service} failed with a server error${said} on ${request}${
        input.attempts && input.attempts > 1 ? ` after ${input.attempts} attempts` : ''
      }. Try again later.${hint}`;
    case 'timeout':
      return `${service} did not answer ${request} in time${
        input.attempts && input.attempts > 1 ? ` (${input.attempts} attempts)` : ''
      }. Try again, or ask for less data.${hint}`;
    case 'network':
      return `Could not reach ${service} for ${request}${said}.${hint}`;
    case 'cancelled':
      return `The request ${request} to ${service} was cancelled.`;
    case 'bad_response':
      return `${service} answered ${request} with a response this server does not understand${said}.${hint}`;
  }
}
