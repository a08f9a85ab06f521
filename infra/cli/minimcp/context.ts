// What every command runs with: its streams, environment, config store and
// fetch, passed in (main.ts wires the process's; tests could pass others), and
// the session (API URL and token) resolved from the environment or the store.
import type { Command } from 'commander';
import { createApiClient, type ApiClient } from './api-client.js';
import type { ConfigStore } from './config-store.js';
import { NotLoggedInError } from './errors.js';

interface InStream extends NodeJS.ReadableStream {
  isTTY?: boolean;
}
interface OutStream extends NodeJS.WritableStream {
  isTTY?: boolean;
}

export interface CliContext {
  env: NodeJS.ProcessEnv;
  stdin: InStream;
  stdout: OutStream;
  stderr: OutStream;
  platform: NodeJS.Platform;
  homeDir: string;
  hostname: string;
  store: ConfigStore;
  fetch: typeof fetch;
}

/** The local stack's API (`npm start`). */
export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

export interface Session {
  url: string;
  token: string;
}

/** MINIMCP_URL and MINIMCP_TOKEN win over what `login` stored. */
export async function sessionOf(ctx: CliContext): Promise<Session> {
  const stored = await ctx.store.readLogin();
  const token = ctx.env.MINIMCP_TOKEN || stored?.token;
  if (!token) throw new NotLoggedInError();
  return { url: ctx.env.MINIMCP_URL || stored?.url || DEFAULT_API_URL, token };
}

export async function apiOf(ctx: CliContext): Promise<ApiClient> {
  const session = await sessionOf(ctx);
  return createApiClient({ ...session, fetch: ctx.fetch });
}

/** True when the command (or the program) was given --json. */
export function wantsJson(command: Command): boolean {
  return command.optsWithGlobals<{ json?: boolean }>().json === true;
}
