// `minimcp types ls|get`: the MCP types an instance can be created from.
import type { Command } from 'commander';
import { TypeListSchema, TypeSchema } from './api-schemas.js';
import { apiOf, wantsJson, type CliContext } from './context.js';
import { examples } from './help.js';
import { printResult, table } from './output.js';

export function registerTypeCommands(program: Command, ctx: CliContext): void {
  const types = program.command('types').description('MCP types you can create instances of');

  types
    .command('ls')
    .description('the available types')
    .addHelpText('after', examples(['minimcp types ls', 'minimcp types ls --json']))
    .action(async (_options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call('GET', '/v1/types', TypeListSchema);
      printResult(ctx, wantsJson(command), body, () =>
        table(
          ['NAME', 'KEY', 'MAX MIN', 'DESCRIPTION'],
          body.types.map((t) => [
            t.name + (t.is_active ? '' : ' (inactive)'),
            t.requires_key ? 'required' : 'none',
            t.max_duration_minutes === null ? '-' : String(t.max_duration_minutes),
            t.description ?? t.display_name,
          ]),
        ),
      );
    });

  types
    .command('get')
    .argument('<name>', 'the type, e.g. github')
    .description('one type with its key pattern, config template and schema')
    .addHelpText('after', examples(['minimcp types get github --json']))
    .action(async (name: string, _options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call('GET', `/v1/types/${encodeURIComponent(name)}`, TypeSchema);
      printResult(ctx, wantsJson(command), body, () =>
        Object.entries(body)
          .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join('\n'),
      );
    });
}
