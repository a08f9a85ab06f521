// The `minimcp` program: commander with shared settings (--json everywhere,
// output through the context's streams, errors thrown instead of exiting),
// every command group registered, and the one place where a failure becomes a
// message on stderr and an exit code.
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from './admin.js';
import { registerAuthCommands } from './auth.js';
import { registerConnectCommand } from './connect.js';
import type { CliContext } from './context.js';
import { ApiError, CliError, EXIT } from './errors.js';
import { registerInstanceCommands } from './instances.js';
import { registerKeyCommands } from './keys.js';
import { registerLogCommands } from './logs.js';
import { registerTypeCommands } from './types.js';
import { examples } from './help.js';

const EXIT_CODES = `
Exit codes: 0 ok · 1 the API refused or could not be reached · 2 bad usage ·
3 not logged in (or the token was refused) · 4 not found · 130 interrupted.
Environment: MINIMCP_URL and MINIMCP_TOKEN override what \`minimcp login\` stored
($XDG_CONFIG_HOME/minimcp/config.json, else ~/.config/minimcp/config.json).`;

export function createProgram(ctx: CliContext, version: string): Command {
  const program = new Command('minimcp')
    .description('MiniMCP from the command line: keys, instances, logs, and MCP client setup')
    .version(version)
    .option('--json', 'print results as JSON (for scripts)')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => ctx.stdout.write(text),
      writeErr: (text) => ctx.stderr.write(text),
    })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      EXIT_CODES +
        '\n' +
        examples([
          'minimcp login',
          'minimcp create demo',
          'minimcp connect <id> --client claude-desktop',
          'minimcp logs <id> --follow',
        ]),
    );
  registerAuthCommands(program, ctx);
  registerKeyCommands(program, ctx);
  registerTypeCommands(program, ctx);
  registerInstanceCommands(program, ctx);
  registerLogCommands(program, ctx);
  registerConnectCommand(program, ctx);
  registerAdminCommands(program, ctx);
  return program;
}

/** Runs one command line (argv as process.argv has it) and returns the exit code. */
export async function runCli(argv: string[], ctx: CliContext, version: string): Promise<number> {
  try {
    await createProgram(ctx, version).parseAsync(argv);
    return EXIT.ok;
  } catch (error) {
    return report(ctx, error);
  }
}

function report(ctx: CliContext, error: unknown): number {
  if (error instanceof CommanderError) {
    // commander has printed its message (or the help) already.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
      return EXIT.ok;
    return EXIT.usage;
  }
  if (error instanceof CliError) {
    const lines = [`minimcp: ${error.message}`];
    if (error.hint) lines.push(`  ${error.hint}`);
    if (error instanceof ApiError && error.status >= 500 && error.requestId)
      lines.push(`  request id ${error.requestId}`);
    ctx.stderr.write(lines.join('\n') + '\n');
    return error.exitCode;
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  ctx.stderr.write(`minimcp: unexpected error: ${detail}\n`);
  return EXIT.failed;
}
