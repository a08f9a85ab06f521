// `minimcp create|ls|get|rm|extend|restore|rotate-token`: instances of MCP
// types. create and restore wait for `running` (polling GET while the API
// answers 202); the access token, shown once, is saved for `minimcp connect`.
import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import {
  InstanceListSchema,
  InstanceSchema,
  InstanceWithTokenSchema,
  type Instance,
} from './api-schemas.js';
import { apiOf, wantsJson, type CliContext } from './context.js';
import { CliError, EXIT } from './errors.js';
import { examples } from './help.js';
import { parseConfigPair, parsePositiveInt, type ConfigPairs } from './option-parsers.js';
import { note, printResult, relativeTime, table } from './output.js';
import { INSTANCE_STATUSES } from '../../../core/domain.js';

const POLL_MS = 500;

const route = (id: string, tail = '') => `/v1/instances/${encodeURIComponent(id)}${tail}`;

interface CreateOptions {
  minutes?: number;
  config?: ConfigPairs;
  wait: boolean;
  timeout: number;
}

export function registerInstanceCommands(program: Command, ctx: CliContext): void {
  program
    .command('create')
    .argument('<type>', 'the MCP type (see `minimcp types ls`)')
    .description('create an instance, wait until it runs, print its URL and access token')
    .option(
      '--minutes <n>',
      "lifetime in minutes (default: the API's, at most the type's maximum)",
      parsePositiveInt,
    )
    .option(
      '--config <key=value>',
      'config override; repeatable; key:=json for a non-string value',
      parseConfigPair,
    )
    .option('--no-wait', 'return as soon as the API answers, even while pending')
    .option('--timeout <seconds>', 'how long to wait for running', parsePositiveInt, 120)
    .addHelpText(
      'after',
      examples([
        'minimcp create demo',
        'minimcp create github --minutes 120 --config api_version=v3',
        'minimcp create demo --json | jq -r .access_token',
      ]),
    )
    .action((type: string, options: CreateOptions, command: Command) =>
      create(ctx, type, options, wantsJson(command)),
    );

  program
    .command('ls')
    .description('your instances, newest first')
    .option('--status <status>', `only this status (${INSTANCE_STATUSES.join(', ')})`)
    .option('--type <type>', 'only this MCP type')
    .option('--limit <n>', 'at most this many (1-100)', parsePositiveInt, 50)
    .option('--all', 'every page, not just the first')
    .addHelpText(
      'after',
      examples([
        'minimcp ls',
        'minimcp ls --status running --type github',
        'minimcp ls --all --json',
      ]),
    )
    .action((options: ListOptions, command: Command) => list(ctx, options, wantsJson(command)));

  program
    .command('get')
    .argument('<id>', 'instance id')
    .description('one instance: status, URL, node and port, expiry, last access, error')
    .addHelpText('after', examples(['minimcp get 6f1c…', 'minimcp get 6f1c… --json']))
    .action(async (id: string, _options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call('GET', route(id), InstanceSchema);
      printResult(ctx, wantsJson(command), body, () => describeInstance(body));
    });

  program
    .command('rm')
    .argument('<id>', 'instance id')
    .description('stop an instance now and delete it (its logs and events stay)')
    .addHelpText('after', examples(['minimcp rm 6f1c…']))
    .action(async (id: string, _options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      await api.send('DELETE', route(id));
      await ctx.store.forgetInstanceToken(id);
      printResult(ctx, wantsJson(command), { id, deleted: true }, () => `Deleted instance ${id}.`);
    });

  program
    .command('extend')
    .argument('<id>', 'instance id')
    .description("push an instance's expiry back, within its type's maximum")
    .requiredOption('--minutes <n>', 'minutes to add', parsePositiveInt)
    .addHelpText('after', examples(['minimcp extend 6f1c… --minutes 30']))
    .action(async (id: string, options: { minutes: number }, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call('POST', route(id, '/extend'), InstanceSchema, {
        body: { minutes: options.minutes },
      });
      printResult(
        ctx,
        wantsJson(command),
        body,
        () => `Instance ${id} now expires ${relativeTime(body.expires_at)} (${body.expires_at}).`,
      );
    });

  registerRestartCommands(program, ctx);
}

function registerRestartCommands(program: Command, ctx: CliContext): void {
  program
    .command('restore')
    .argument('<id>', 'instance id')
    .description('run an expired, disconnected or failed instance again (same id and token)')
    .option('--timeout <seconds>', 'how long to wait for running', parsePositiveInt, 120)
    .addHelpText('after', examples(['minimcp restore 6f1c…']))
    .action(async (id: string, options: { timeout: number }, command: Command) => {
      const json = wantsJson(command);
      const api = await apiOf(ctx);
      const { body } = await api.call('POST', route(id, '/restore'), InstanceSchema);
      const instance = await waitForRunning(ctx, api, body, {
        timeoutSeconds: options.timeout,
        json,
      });
      printResult(
        ctx,
        json,
        instance,
        () => `Instance ${id} is running again at ${instance.access_url} (same token).`,
      );
    });

  program
    .command('rotate-token')
    .argument('<id>', 'instance id')
    .description(
      'replace the access token (the old one stops working); prints and saves the new one',
    )
    .addHelpText(
      'after',
      examples([
        'minimcp rotate-token 6f1c…',
        'minimcp rotate-token 6f1c… && minimcp connect 6f1c… --client cursor',
      ]),
    )
    .action(async (id: string, _options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call('POST', route(id, '/token'), InstanceWithTokenSchema);
      await ctx.store.saveInstanceToken(id, body.access_token, body.access_url);
      printResult(ctx, wantsJson(command), body, () =>
        [
          `New access token for ${id} (the old one no longer works):`,
          `  ${body.access_token}`,
          `Saved for \`minimcp connect\` in ${ctx.store.instanceTokensFile}`,
        ].join('\n'),
      );
    });
}

async function create(
  ctx: CliContext,
  type: string,
  options: CreateOptions,
  json: boolean,
): Promise<void> {
  const api = await apiOf(ctx);
  const { body: created } = await api.call('POST', '/v1/instances', InstanceWithTokenSchema, {
    body: {
      type,
      ...(options.minutes ? { duration_minutes: options.minutes } : {}),
      ...(options.config ? { config: options.config } : {}),
    },
  });
  // Saved first: the token is shown once, and a wait that fails must not lose it.
  await ctx.store.saveInstanceToken(created.id, created.access_token, created.access_url);
  const instance = options.wait
    ? await waitForRunning(ctx, api, created, { timeoutSeconds: options.timeout, json })
    : created;
  const result = { ...instance, access_token: created.access_token };
  printResult(ctx, json, result, () =>
    [
      `Instance ${instance.id} (${instance.type}) is ${instance.status}${instance.node ? ` on node ${instance.node}` : ''}, expires ${relativeTime(instance.expires_at)}.`,
      `  URL:    ${instance.access_url}`,
      `  Token:  ${created.access_token}`,
      `The token is shown once; it is saved for \`minimcp connect\` in ${ctx.store.instanceTokensFile}.`,
      `Next: minimcp connect ${instance.id} --client claude-desktop|cursor|vscode|inspector|json`,
    ].join('\n'),
  );
}

/** Polls GET while the instance is pending; a spinner on a terminal. */
export async function waitForRunning(
  ctx: CliContext,
  api: ApiClient,
  instance: Instance,
  options: { timeoutSeconds: number; json: boolean },
): Promise<Instance> {
  if (instance.status === 'running') return instance;
  // ora is loaded only for a terminal (start-up time of every other command).
  const spinner =
    !options.json && ctx.stderr.isTTY
      ? (await import('ora'))
          .default({
            text: `starting ${instance.type} instance ${instance.id}`,
            stream: ctx.stderr,
            discardStdin: false,
          })
          .start()
      : undefined;
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  let current = instance;
  try {
    while (current.status === 'pending') {
      if (Date.now() > deadline) {
        throw new CliError(
          `instance ${instance.id} is still pending after ${options.timeoutSeconds} s`,
          EXIT.failed,
          {
            hint: `\`minimcp get ${instance.id}\` shows when it runs`,
          },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      current = (await api.call('GET', route(instance.id), InstanceSchema)).body;
    }
    if (current.status !== 'running') {
      throw new CliError(
        `instance ${instance.id} did not start: it is ${current.status}${current.error_message ? ` (${current.error_message})` : ''}`,
        EXIT.failed,
        {
          hint: `\`minimcp logs ${instance.id}\` shows why; \`minimcp restore ${instance.id}\` tries again`,
        },
      );
    }
    spinner?.succeed(`${instance.type} instance ${instance.id} is running`);
    return current;
  } finally {
    if (spinner?.isSpinning) spinner.fail();
  }
}

interface ListOptions {
  status?: string;
  type?: string;
  limit: number;
  all?: boolean;
}

async function list(ctx: CliContext, options: ListOptions, json: boolean): Promise<void> {
  const api = await apiOf(ctx);
  const instances: Instance[] = [];
  let cursor: string | undefined;
  let nextCursor: string | null;
  do {
    const { body } = await api.call('GET', '/v1/instances', InstanceListSchema, {
      query: { status: options.status, type: options.type, limit: options.limit, cursor },
    });
    instances.push(...body.instances);
    nextCursor = body.next_cursor;
    cursor = nextCursor ?? undefined;
  } while (options.all && cursor);
  printResult(ctx, json, { instances, next_cursor: options.all ? null : nextCursor }, () =>
    table(
      ['ID', 'TYPE', 'STATUS', 'URL', 'EXPIRES'],
      instances.map((i) => [i.id, i.type, i.status, i.access_url, relativeTime(i.expires_at)]),
      'No instances. `minimcp create demo` makes one.',
    ),
  );
  if (!json && !options.all && nextCursor) note(ctx, 'more: --all lists every page');
}

function describeInstance(i: Instance): string {
  const rows: [string, string][] = [
    ['id', i.id],
    ['type', i.type],
    ['status', i.status],
    ['url', i.access_url],
    ['token', `${i.token_prefix}… (shown only at create / rotate-token)`],
    ['node', i.node === null ? '-' : `${i.node}${i.port === null ? '' : ` port ${i.port}`}`],
    ['expires', `${i.expires_at} (${relativeTime(i.expires_at)})`],
    [
      'last access',
      i.last_accessed ? `${i.last_accessed} (${relativeTime(i.last_accessed)})` : 'never',
    ],
    ['config', JSON.stringify(i.config)],
    ['created', i.created_at],
  ];
  if (i.error_message) rows.push(['error', i.error_message]);
  return rows.map(([k, v]) => `${(k + ':').padEnd(13)}${v}`).join('\n');
}
