// `minimcp keys set|ls|rm`: the user's third-party API keys. A key is read
// from a hidden prompt or stdin, never from the command line.
import type { Command } from 'commander';
import { KeyListSchema, KeySchema } from './api-schemas.js';
import { apiOf, wantsJson, type CliContext } from './context.js';
import { examples } from './help.js';
import { printResult, relativeTime, table } from './output.js';
import { readSecret } from './user-input.js';

export function registerKeyCommands(program: Command, ctx: CliContext): void {
  const keys = program
    .command('keys')
    .description('your third-party API keys, one per MCP type (envelope-encrypted by the API)');

  keys
    .command('set')
    .argument('<type>', 'the MCP type the key is for, e.g. github')
    .description('store or replace your key for a type (hidden prompt, or stdin when piped)')
    .option('--expires-at <time>', 'when the key stops being used (ISO 8601 with offset)')
    .addHelpText(
      'after',
      examples([
        'minimcp keys set github                        # prompts without echo',
        'printf %s "$GITHUB_TOKEN" | minimcp keys set github',
        'minimcp keys set figma < figma-token.txt',
      ]),
    )
    .action(async (type: string, options: { expiresAt?: string }, command: Command) => {
      const api = await apiOf(ctx);
      const key = await readSecret(ctx, `${type} key`);
      const { body } = await api.call('PUT', `/v1/keys/${encodeURIComponent(type)}`, KeySchema, {
        body: { key, ...(options.expiresAt ? { expires_at: options.expiresAt } : {}) },
      });
      printResult(
        ctx,
        wantsJson(command),
        body,
        () => `Stored your ${body.type} key (${body.hint ?? 'no hint'}).`,
      );
    });

  keys
    .command('ls')
    .description('your stored keys: type, hint (last characters), state')
    .addHelpText('after', examples(['minimcp keys ls', 'minimcp keys ls --json']))
    .action(async (_options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call('GET', '/v1/keys', KeyListSchema);
      printResult(ctx, wantsJson(command), body, () =>
        table(
          ['TYPE', 'HINT', 'ACTIVE', 'UPDATED', 'EXPIRES'],
          body.keys.map((k) => [
            k.type,
            k.hint ?? '-',
            k.active ? 'yes' : 'no',
            relativeTime(k.updated_at),
            k.expires_at ? relativeTime(k.expires_at) : 'never',
          ]),
          'No keys stored. `minimcp keys set <type>` stores one.',
        ),
      );
    });

  keys
    .command('rm')
    .argument('<type>', 'the MCP type whose key to delete')
    .description('delete your key for a type')
    .addHelpText('after', examples(['minimcp keys rm github']))
    .action(async (type: string, _options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      await api.send('DELETE', `/v1/keys/${encodeURIComponent(type)}`);
      printResult(
        ctx,
        wantsJson(command),
        { type, deleted: true },
        () => `Deleted your ${type} key.`,
      );
    });
}
