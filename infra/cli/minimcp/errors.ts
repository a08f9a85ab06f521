// The command line's failures and the exit codes they end with. Every command
// throws a CliError (or lets an ApiError through); program.ts turns it into a
// message on stderr and the exit code, once.

/** Exit codes, documented in the README ("The minimcp command line"). */
export const EXIT = {
  ok: 0,
  /** The API refused the request or could not be reached; a local file could not be used. */
  failed: 1,
  /** Wrong arguments or options, or missing input (no key on stdin). */
  usage: 2,
  /** No API token (run `minimcp login`), or the API answered 401. */
  notLoggedIn: 3,
  /** The instance, key, type, user or node does not exist (404). */
  notFound: 4,
  /** Interrupted at a prompt (Ctrl-C). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** A line on what to do next, printed after the message. */
  readonly hint: string | undefined;

  constructor(
    message: string,
    exitCode: ExitCode,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.hint = options.hint;
  }
}

export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.usage, hint === undefined ? {} : { hint });
    this.name = 'UsageError';
  }
}

export class NotLoggedInError extends CliError {
  constructor(message = 'not logged in') {
    super(message, EXIT.notLoggedIn, {
      hint: 'run `minimcp login`, or set MINIMCP_URL and MINIMCP_TOKEN',
    });
    this.name = 'NotLoggedInError';
  }
}

/** An answer of the API that was not a success: `message` is the problem's `detail`. */
export class ApiError extends CliError {
  readonly status: number;
  readonly problemType: string | undefined;
  readonly requestId: string | undefined;

  constructor(
    message: string,
    context: { status: number; problemType?: string; requestId?: string; hint?: string },
  ) {
    super(message, exitCodeOfStatus(context.status), context.hint ? { hint: context.hint } : {});
    this.name = 'ApiError';
    this.status = context.status;
    this.problemType = context.problemType;
    this.requestId = context.requestId;
  }
}

function exitCodeOfStatus(status: number): ExitCode {
  if (status === 401) return EXIT.notLoggedIn;
  if (status === 404) return EXIT.notFound;
  return EXIT.failed;
}
