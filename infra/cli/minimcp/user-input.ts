// Input from the person at the terminal (prompts on stderr, secrets without
// echo) or, when stdin is not a terminal, from stdin: secrets never come from
// the command line, where other users' `ps` and the shell history would see them.
// The prompt library is loaded only when a prompt is shown (start-up time).
import type { CliContext } from './context.js';
import { CliError, EXIT, UsageError } from './errors.js';

export function interactive(ctx: CliContext): boolean {
  return ctx.stdin.isTTY === true;
}

/** A secret: a hidden prompt on a terminal, else all of stdin without its final newline. */
export async function readSecret(ctx: CliContext, what: string): Promise<string> {
  const value = interactive(ctx)
    ? await prompted(async () =>
        (await import('@inquirer/prompts')).password(
          { message: `${what}:`, validate: (v) => v.length > 0 || `${what} is empty` },
          { input: ctx.stdin, output: ctx.stderr },
        ),
      )
    : (await readAll(ctx.stdin)).replace(/\r?\n$/, '');
  if (value.length === 0) {
    throw new UsageError(
      `no ${what} on stdin`,
      `pipe it in, e.g. \`printf %s "$SECRET" | minimcp …\`, or run the command in a terminal to be prompted`,
    );
  }
  return value;
}

/** A visible answer: prompted on a terminal (with a default), else the default or a usage error. */
export async function readText(
  ctx: CliContext,
  what: string,
  options: { defaultValue?: string; flag: string },
): Promise<string> {
  if (!interactive(ctx)) {
    if (options.defaultValue) return options.defaultValue;
    throw new UsageError(`${what} is required when stdin is not a terminal: pass ${options.flag}`);
  }
  return prompted(async () =>
    (await import('@inquirer/prompts')).input(
      {
        message: `${what}:`,
        ...(options.defaultValue ? { default: options.defaultValue } : {}),
        validate: (v) => v.trim().length > 0 || `${what} is empty`,
      },
      { input: ctx.stdin, output: ctx.stderr },
    ),
  ).then((v) => v.trim());
}

async function prompted(ask: () => Promise<string>): Promise<string> {
  try {
    return await ask();
  } catch (error) {
    // @inquirer/prompts rejects with ExitPromptError on Ctrl-C.
    if (error instanceof Error && error.name === 'ExitPromptError')
      throw new CliError('cancelled', EXIT.interrupted, { cause: error });
    throw error;
  }
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
