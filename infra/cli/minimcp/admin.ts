// `minimcp admin users|types|nodes …`: what the admin API routes offer
// (POST/GET /v1/users, deactivate; POST /v1/types, PATCH /v1/types/{name};
// GET /v1/nodes, drain, activate). They need an admin account's token.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import {
  DrainResultSchema,
  NodeListSchema,
  NodeSchema,
  TypeListSchema,
  TypeSchema,
  UserListSchema,
  UserSchema,
} from './api-schemas.js';
import { apiOf, wantsJson, type CliContext } from './context.js';
import { CliError, EXIT, UsageError } from './errors.js';
import { examples } from './help.js';
import { parseConfigPair, parsePositiveInt, type ConfigPairs } from './option-parsers.js';
import { printResult, table } from './output.js';
import { readAll, readSecret } from './user-input.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function registerAdminCommands(program: Command, ctx: CliContext): void {
  const admin = program
    .command('admin')
    .description('administration: users, MCP types, nodes (admin accounts only)');
  registerUserCommands(admin.command('users').description('user accounts'), ctx);
  registerTypeAdminCommands(
    admin.command('types').description('register and change MCP types'),
    ctx,
  );
  registerNodeCommands(admin.command('nodes').description('compute nodes and their agents'), ctx);
}

function registerUserCommands(users: Command, ctx: CliContext): void {
  users
    .command('ls')
    .description('all users, oldest first')
    .addHelpText('after', examples(['minimcp admin users ls']))
    .action(async (_options: unknown, command: Command) => {
      const { body } = await (await apiOf(ctx)).call('GET', '/v1/users', UserListSchema);
      printResult(ctx, wantsJson(command), body, () =>
        table(
          ['ID', 'EMAIL', 'NAME', 'ROLE', 'ACTIVE'],
          body.users.map((u) => [u.id, u.email, u.name, u.role, u.active ? 'yes' : 'no']),
        ),
      );
    });

  users
    .command('create')
    .description('create a user; the password is prompted without echo, or read from stdin')
    .requiredOption('--email <email>', 'their email, the login')
    .requiredOption('--name <name>', 'their name')
    .option('--role <role>', 'user or admin', 'user')
    .addHelpText(
      'after',
      examples([
        'minimcp admin users create --email ana@example.com --name Ana',
        'printf %s "$PASSWORD" | minimcp admin users create --email ops@example.com --name Ops --role admin',
      ]),
    )
    .action(async (options: { email: string; name: string; role: string }, command: Command) => {
      const api = await apiOf(ctx);
      const password = await readSecret(ctx, 'password for the new user (12 characters at least)');
      const { body } = await api.call('POST', '/v1/users', UserSchema, {
        body: { email: options.email, name: options.name, role: options.role, password },
      });
      printResult(
        ctx,
        wantsJson(command),
        body,
        () => `Created ${body.role} ${body.email} (${body.id}).`,
      );
    });

  users
    .command('deactivate')
    .argument('<user>', 'user id or email')
    .description('deactivate a user and revoke all their API tokens')
    .addHelpText('after', examples(['minimcp admin users deactivate ana@example.com']))
    .action(async (user: string, _options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      const id = UUID.test(user) ? user : await userIdByEmail(api, user);
      const { body } = await api.call('POST', `/v1/users/${id}/deactivate`, UserSchema);
      printResult(ctx, wantsJson(command), body, () => `Deactivated ${body.email}.`);
    });
}

async function userIdByEmail(api: ApiClient, email: string): Promise<string> {
  const { body } = await api.call('GET', '/v1/users', UserListSchema);
  const found = body.users.find((u) => u.email.toLowerCase() === email.toLowerCase());
  if (!found) throw new CliError(`no user with email ${email}`, EXIT.notFound);
  return found.id;
}

interface TypeOptions {
  file?: string;
  command?: string;
  arg?: string[];
  displayName?: string;
  description?: string;
  env?: ConfigPairs;
  config?: ConfigPairs;
  requiresKey?: boolean;
  keyPattern?: string;
  maxMinutes?: number;
  active?: boolean;
}

function typeOptions(command: Command): Command {
  return command
    .option(
      '--file <path>',
      'the JSON body (POST /v1/types fields); "-" for stdin; flags override it',
    )
    .option('--command <command>', 'executable of the stdio MCP server, e.g. npx')
    .option(
      '--arg <arg>',
      'an argument of the command; repeatable, in order',
      (v: string, all: string[] = []) => [...all, v],
    )
    .option('--display-name <name>', 'the name people see')
    .option('--description <text>', 'what it does')
    .option(
      '--env <NAME=value>',
      'environment of the child; "{{key}}" becomes the API key; repeatable',
      parseConfigPair,
    )
    .option(
      '--config <key=value>',
      'config_template entry; key:=json for a non-string; repeatable',
      parseConfigPair,
    )
    .option('--requires-key', 'instances need a stored key')
    .option('--no-requires-key', 'instances need no key')
    .option('--key-pattern <regex>', 'regular expression a stored key must match')
    .option('--max-minutes <n>', 'the longest lifetime an instance may have', parsePositiveInt)
    .option('--active', 'users may create instances of it')
    .option('--inactive', 'hide it from users', false);
}

async function typeBody(
  ctx: CliContext,
  options: TypeOptions & { inactive?: boolean },
): Promise<Record<string, unknown>> {
  const base = options.file ? await readJsonBody(ctx, options.file) : {};
  const flags: Record<string, unknown> = {
    command: options.command,
    args: options.arg,
    display_name: options.displayName,
    description: options.description,
    env_mapping: options.env,
    config_template: options.config,
    requires_key: options.requiresKey,
    key_pattern: options.keyPattern,
    max_duration_minutes: options.maxMinutes,
    is_active: options.inactive ? false : options.active,
  };
  return {
    ...base,
    ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
  };
}

async function readJsonBody(ctx: CliContext, file: string): Promise<Record<string, unknown>> {
  const text = file === '-' ? await readAll(ctx.stdin) : await readFile(file, 'utf8');
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(
      `${file === '-' ? 'stdin' : file} is not valid JSON: ${(error as Error).message}`,
    );
  }
  throw new UsageError(`${file === '-' ? 'stdin' : file} does not hold a JSON object`);
}

function registerTypeAdminCommands(types: Command, ctx: CliContext): void {
  types
    .command('ls')
    .description('every type, inactive ones too')
    .addHelpText('after', examples(['minimcp admin types ls --json']))
    .action(async (_options: unknown, command: Command) => {
      const { body } = await (await apiOf(ctx)).call('GET', '/v1/types', TypeListSchema);
      printResult(ctx, wantsJson(command), body, () =>
        table(
          ['NAME', 'ACTIVE', 'KEY', 'MAX MIN', 'DISPLAY NAME'],
          body.types.map((t) => [
            t.name,
            t.is_active ? 'yes' : 'no',
            t.requires_key ? 'required' : 'none',
            String(t.max_duration_minutes ?? '-'),
            t.display_name,
          ]),
        ),
      );
    });

  typeOptions(
    types.command('register').argument('<name>', 'the type name users create instances of'),
  )
    .description('register any stdio MCP server command as a type')
    .addHelpText(
      'after',
      examples([
        'minimcp admin types register everything --display-name Everything --command npx --arg -y --arg @modelcontextprotocol/server-everything --arg stdio --no-requires-key',
        'minimcp admin types register linear --display-name Linear --command npx --arg -y --arg linear-mcp --env LINEAR_API_KEY={{key}}',
        'minimcp admin types register mine --file type.json',
      ]),
    )
    .action(async (name: string, options: TypeOptions, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call('POST', '/v1/types', TypeSchema, {
        body: { name, ...(await typeBody(ctx, options)) },
      });
      printResult(ctx, wantsJson(command), body, () => `Registered type ${body.name}.`);
    });

  typeOptions(types.command('update').argument('<name>', 'the type to change'))
    .description('change fields of a type (only those given)')
    .addHelpText(
      'after',
      examples([
        'minimcp admin types update github --max-minutes 240',
        'minimcp admin types update mine --inactive',
      ]),
    )
    .action(async (name: string, options: TypeOptions, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call(
        'PATCH',
        `/v1/types/${encodeURIComponent(name)}`,
        TypeSchema,
        {
          body: await typeBody(ctx, options),
        },
      );
      printResult(ctx, wantsJson(command), body, () => `Updated type ${body.name}.`);
    });
}

function registerNodeCommands(nodes: Command, ctx: CliContext): void {
  nodes
    .command('ls')
    .description('nodes with status, heartbeat age and port use')
    .addHelpText('after', examples(['minimcp admin nodes ls']))
    .action(async (_options: unknown, command: Command) => {
      const { body } = await (await apiOf(ctx)).call('GET', '/v1/nodes', NodeListSchema);
      printResult(ctx, wantsJson(command), body, () =>
        table(
          ['ID', 'NAME', 'STATUS', 'HOST', 'HEARTBEAT', 'PORTS USED/FREE'],
          body.nodes.map((n) => [
            n.id,
            n.name,
            n.status,
            n.public_host,
            n.heartbeat_age_seconds === null ? 'never' : `${n.heartbeat_age_seconds} s ago`,
            `${n.ports.used}/${n.ports.free}`,
          ]),
        ),
      );
    });

  nodes
    .command('drain')
    .argument('<node>', 'node id or name')
    .description('take no new instances on a node; --move also moves its instances elsewhere now')
    .option('--move', 'move its running instances to other nodes (same id and token)')
    .addHelpText(
      'after',
      examples(['minimcp admin nodes drain node-a', 'minimcp admin nodes drain node-a --move']),
    )
    .action(async (node: string, options: { move?: boolean }, command: Command) => {
      const api = await apiOf(ctx);
      const id = await nodeId(api, node);
      const { body } = await api.call('POST', `/v1/nodes/${id}/drain`, DrainResultSchema, {
        body: { move: options.move === true },
      });
      printResult(ctx, wantsJson(command), body, () =>
        [
          `Node ${body.node.name} is ${body.node.status}.`,
          ...body.moved.map((m) => `  moved ${m.instance_id} to ${m.to_node}:${m.port}`),
          ...body.not_moved.map((m) => `  not moved ${m.instance_id}: ${m.reason}`),
        ].join('\n'),
      );
    });

  nodes
    .command('activate')
    .argument('<node>', 'node id or name')
    .description('let a drained node take new instances again')
    .addHelpText('after', examples(['minimcp admin nodes activate node-a']))
    .action(async (node: string, _options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call(
        'POST',
        `/v1/nodes/${await nodeId(api, node)}/activate`,
        NodeSchema,
      );
      printResult(ctx, wantsJson(command), body, () => `Node ${body.name} is ${body.status}.`);
    });
}

async function nodeId(api: ApiClient, node: string): Promise<string> {
  if (UUID.test(node)) return node;
  const { body } = await api.call('GET', '/v1/nodes', NodeListSchema);
  const found = body.nodes.find((n) => n.name === node);
  if (!found) throw new CliError(`no node named ${node}`, EXIT.notFound);
  return found.id;
}
