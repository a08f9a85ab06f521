// `minimcp connect <id> --client …`: writes one instance into an MCP client's
// configuration (merged, with a backup) or prints it. The access token comes
// from --token, else from what `create` / `rotate-token` saved for that id.
import { Option, type Command } from 'commander';
import { InstanceSchema } from './api-schemas.js';
import {
  CLIENTS,
  clientConfigPath,
  configSnippet,
  genericForm,
  inspectorCommand,
  isFileClient,
  shellLine,
  writeClientConfig,
  type ClientName,
  type Connection,
} from './client-configs.js';
import { apiOf, wantsJson, type CliContext } from './context.js';
import { CliError, EXIT } from './errors.js';
import { examples } from './help.js';
import { note, printResult } from './output.js';

interface ConnectOptions {
  client: ClientName;
  print?: boolean;
  token?: string;
  name?: string;
}

export function registerConnectCommand(program: Command, ctx: CliContext): void {
  program
    .command('connect')
    .argument('<id>', 'instance id')
    .description("add an instance to an MCP client's configuration, or print it")
    .addOption(
      new Option('--client <client>', 'the MCP client').choices(CLIENTS).makeOptionMandatory(),
    )
    .option('--print', 'print the configuration instead of writing the file')
    .option('--token <token>', 'the access token (default: the one create / rotate-token saved)')
    .option('--name <name>', 'the server name in the client (default: minimcp-<type>-<id prefix>)')
    .addHelpText(
      'after',
      [
        '\nFiles written (merged: other servers are kept, the previous file is copied to <file>.bak):',
        '  claude-desktop  ~/.config/Claude/claude_desktop_config.json (Linux),',
        '                  ~/Library/Application Support/Claude/claude_desktop_config.json (macOS)',
        '  cursor          ~/.cursor/mcp.json',
        '  vscode          ~/.config/Code/User/mcp.json (Linux), ~/Library/Application Support/Code/User/mcp.json (macOS)',
        '  inspector, json print only',
        examples([
          'minimcp connect 6f1c… --client claude-desktop',
          'minimcp connect 6f1c… --client cursor --print',
          'minimcp connect 6f1c… --client inspector | sh',
          'minimcp connect 6f1c… --client json --token "$MCP_TOKEN"',
        ]),
      ].join('\n'),
    )
    .action((id: string, options: ConnectOptions, command: Command) =>
      connect(ctx, id, options, wantsJson(command)),
    );
}

async function connect(
  ctx: CliContext,
  id: string,
  options: ConnectOptions,
  json: boolean,
): Promise<void> {
  const api = await apiOf(ctx);
  const { body: instance } = await api.call(
    'GET',
    `/v1/instances/${encodeURIComponent(id)}`,
    InstanceSchema,
  );
  const token = options.token ?? (await ctx.store.instanceToken(instance.id));
  if (!token) {
    throw new CliError(`no access token known for instance ${instance.id}`, EXIT.failed, {
      hint: `the API shows it only at creation and rotation: pass --token, or run \`minimcp rotate-token ${instance.id}\` (the old token stops working)`,
    });
  }
  if (instance.status !== 'running')
    note(
      ctx,
      `note: instance ${instance.id} is ${instance.status}; the client will not reach it until it runs`,
    );
  const connection: Connection = {
    name: options.name ?? `minimcp-${instance.type}-${instance.id.slice(0, 8)}`,
    url: instance.access_url,
    token,
  };
  const client = options.client;
  if (client === 'json') return printResult(ctx, true, genericForm(connection), () => '');
  if (client === 'inspector') {
    const argv = inspectorCommand(connection);
    return printResult(ctx, json, { command: argv }, () => shellLine(argv));
  }
  if (!isFileClient(client)) return;
  const file = clientConfigPath(client, {
    platform: ctx.platform,
    homeDir: ctx.homeDir,
    env: ctx.env,
  });
  if (options.print) {
    return printResult(ctx, true, configSnippet(client, connection), () => '');
  }
  const written = await writeClientConfig(file, client, connection);
  printResult(ctx, json, { ...written, name: connection.name, client }, () =>
    [
      `${written.replaced ? 'Updated' : 'Added'} "${connection.name}" in ${written.file}` +
        (written.backup ? ` (previous file: ${written.backup})` : ''),
      restartHint(client),
    ].join('\n'),
  );
}

function restartHint(client: ClientName): string {
  if (client === 'claude-desktop')
    return 'Restart Claude Desktop to load it (it runs `npx -y mcp-remote`, which needs Node.js).';
  if (client === 'cursor')
    return 'Cursor picks it up in Settings → MCP (reload the window if it does not).';
  return 'VS Code lists it under "MCP: List Servers"; start it from there.';
}
