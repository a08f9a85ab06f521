// The one answer to "is the database unreachable right now?": by error class
// and code, through the `cause` chain. The API answers 503 on it, the log
// shipper spools instead of dropping; both ask here.
import {
  BackendTerminatedError,
  BackendTerminatedUnexpectedlyError,
  ConnectionError,
  IdleTransactionTimeoutError,
} from 'slonik';
import { DatabaseUnavailableError } from '../errors.js';

/** Node's socket and DNS failures on the way to the server. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/** SQLSTATE 53300 too_many_connections: the server is up but takes no one now. */
const TOO_MANY_CONNECTIONS = '53300';

/**
 * Failures that carry no code at all, as their upstream sources word them
 * (exact prefixes, never a pattern). slonik turns pg's "Connection terminated…"
 * into its BackendTerminated classes on pooled connections, but slonik's
 * createPool runs its type-override query on a bare pg Client (pg
 * lib/client.js), so a pool built during an outage sees pg's plain Error; and
 * pg-pool (pg-pool/index.js) rejects a connect that waited too long with
 * "timeout exceeded when trying to connect". Nothing else here reads messages.
 */
const CODELESS_MESSAGES = ['Connection terminated', 'timeout exceeded when trying to connect'];

const MESSAGE = 'The database cannot be reached right now; retry later.';

/** One link of a cause chain: connection-level by class, code or codeless message. */
function isUnavailableLink(error: object): boolean {
  if (
    error instanceof DatabaseUnavailableError ||
    error instanceof ConnectionError ||
    error instanceof BackendTerminatedError ||
    error instanceof BackendTerminatedUnexpectedlyError ||
    // The server ended a session idle inside a transaction (SQLSTATE 25P03).
    error instanceof IdleTransactionTimeoutError
  )
    return true;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    // SQLSTATE class 08 (connection exception) and 57P (operator intervention: shutdown, crash).
    const sqlstateClass = code.length === 5 && (code.startsWith('08') || code.startsWith('57P'));
    if (sqlstateClass || code === TOO_MANY_CONNECTIONS || NETWORK_CODES.has(code)) return true;
    return false;
  }
  return (
    typeof message === 'string' && CODELESS_MESSAGES.some((prefix) => message.startsWith(prefix))
  );
}

/** Whether the error, or one it wraps, says the database cannot be reached right now. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    if (isUnavailableLink(current)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** The typed error for a failure isDatabaseUnavailable accepted, with the original as its cause. */
export function toDatabaseUnavailable(error: unknown): DatabaseUnavailableError {
  if (error instanceof DatabaseUnavailableError) return error;
  return new DatabaseUnavailableError(MESSAGE, {}, { cause: error });
}
