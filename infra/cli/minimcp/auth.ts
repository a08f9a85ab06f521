// `minimcp login`, `logout`, `whoami`: an API token minted with email and
// password, kept in the config folder (0600); MINIMCP_URL / MINIMCP_TOKEN override it.
import type { Command } from 'commander';
import { IssuedTokenSchema, MeSchema } from './api-schemas.js';
import { createApiClient } from './api-client.js';
import { apiOf, DEFAULT_API_URL, wantsJson, type CliContext } from './context.js';
import { ApiError } from './errors.js';
import { examples } from './help.js';
import { parsePositiveInt } from './option-parsers.js';
import { note, printResult, relativeTime } from './output.js';
import { readSecret, readText } from './user-input.js';

interface LoginOptions {
  url?: string;
  email?: string;
  name?: string;
  expiresInDays?: number;
}

export function registerAuthCommands(program: Command, ctx: CliContext): void {
  program
    .command('login')
    .description(
      'mint an API token with your email and password and store it in the config folder (mode 0600)',
    )
    .option(
      '--url <url>',
      `API URL (default: MINIMCP_URL, the last one used, or ${DEFAULT_API_URL})`,
    )
    .option('--email <email>', 'your account (prompted when missing on a terminal)')
    .option('--name <name>', 'a name for the token, shown by GET /v1/tokens')
    .option('--expires-in-days <n>', 'token lifetime in days (API default 90)', parsePositiveInt)
    .addHelpText(
      'after',
      examples([
        'minimcp login                                  # prompts for URL, email and password',
        'minimcp login --url https://api.example.com --email me@example.com',
        'printf %s "$PASSWORD" | minimcp login --email me@example.com   # password on stdin',
      ]),
    )
    .action((options: LoginOptions, command: Command) => login(ctx, options, wantsJson(command)));

  program
    .command('logout')
    .description('revoke the stored API token and forget it (and the saved instance tokens)')
    .addHelpText('after', examples(['minimcp logout']))
    .action((_options: unknown, command: Command) => logout(ctx, wantsJson(command)));

  program
    .command('whoami')
    .description('the account and API the command line uses')
    .addHelpText('after', examples(['minimcp whoami', 'minimcp whoami --json']))
    .action(async (_options: unknown, command: Command) => {
      const api = await apiOf(ctx);
      const { body: me } = await api.call('GET', '/v1/me', MeSchema);
      printResult(ctx, wantsJson(command), { url: api.url, ...me }, () => {
        const who = me.user ? `${me.user.email} (${me.user.name})` : 'the bootstrap admin token';
        const token = me.token
          ? `; token "${me.token.name}", expires ${relativeTime(me.token.expires_at)}`
          : '';
        return `${who}, role ${me.role}, at ${api.url}${token}`;
      });
    });
}

async function login(ctx: CliContext, options: LoginOptions, json: boolean): Promise<void> {
  const stored = await ctx.store.readLogin();
  const url =
    options.url ??
    (await readText(ctx, 'API URL', {
      defaultValue: ctx.env.MINIMCP_URL || stored?.url || DEFAULT_API_URL,
      flag: '--url',
    }));
  const email =
    options.email ??
    (await readText(ctx, 'Email', {
      ...(stored?.email ? { defaultValue: stored.email } : {}),
      flag: '--email',
    }));
  const password = await readSecret(ctx, 'password');
  const api = createApiClient({ url, fetch: ctx.fetch });
  const issued = await api
    .call('POST', '/v1/auth/token', IssuedTokenSchema, {
      body: {
        email,
        password,
        name: options.name ?? `minimcp cli on ${ctx.hostname}`.slice(0, 100),
        ...(options.expiresInDays ? { expires_in_days: options.expiresInDays } : {}),
      },
    })
    .catch((error: unknown) => {
      // The 401 here is the password's, not a stale token's: no "log in again" hint.
      if (error instanceof ApiError && error.status === 401)
        throw new ApiError(error.message, { status: 401 });
      throw error;
    });
  const token = issued.body;
  await ctx.store.writeLogin({ url: api.url, token: token.token, token_id: token.id, email });
  const result = {
    url: api.url,
    email,
    token_id: token.id,
    token_prefix: token.token_prefix,
    expires_at: token.expires_at,
    config_file: ctx.store.loginFile,
  };
  printResult(ctx, json, result, () =>
    [
      `Logged in to ${api.url} as ${email}.`,
      `API token ${token.token_prefix}… (expires ${relativeTime(token.expires_at)}) stored in ${ctx.store.loginFile}`,
    ].join('\n'),
  );
  if (ctx.env.MINIMCP_TOKEN) note(ctx, 'note: MINIMCP_TOKEN is set and overrides the stored token');
}

async function logout(ctx: CliContext, json: boolean): Promise<void> {
  const stored = await ctx.store.readLogin();
  let revoked = false;
  if (stored?.token_id) {
    const api = createApiClient({ url: stored.url, token: stored.token, fetch: ctx.fetch });
    try {
      await api.send('DELETE', `/v1/tokens/${encodeURIComponent(stored.token_id)}`);
      revoked = true;
    } catch (error) {
      // Forgetting the token locally is what logout promises; say what stays valid.
      const reason = error instanceof Error ? error.message : String(error);
      if (!(error instanceof ApiError && (error.status === 401 || error.status === 404)))
        note(
          ctx,
          `warning: could not revoke the token (${reason}); it stays valid until it expires`,
        );
    }
  }
  await ctx.store.clear();
  printResult(ctx, json, { logged_out: stored !== undefined, revoked }, () =>
    stored ? `Logged out of ${stored.url}${revoked ? ' (token revoked)' : ''}.` : 'Not logged in.',
  );
}
