// MCP clients' configuration for one instance: where each client keeps its
// file on Linux and macOS, the entry it expects, and the merge of that entry
// into the file already there (other servers kept, the previous file copied to
// <file>.bak, a file that is not JSON refused and left untouched).
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError, EXIT } from './errors.js';

export const CLIENTS = ['claude-desktop', 'cursor', 'vscode', 'inspector', 'json'] as const;
export type ClientName = (typeof CLIENTS)[number];
export type FileClient = Extract<ClientName, 'claude-desktop' | 'cursor' | 'vscode'>;

export function isFileClient(client: ClientName): client is FileClient {
  return client === 'claude-desktop' || client === 'cursor' || client === 'vscode';
}

/** One instance as a client reaches it. */
export interface Connection {
  /** The server's name in the client's list. */
  name: string;
  url: string;
  token: string;
}

export interface Place {
  platform: NodeJS.Platform;
  homeDir: string;
  env: NodeJS.ProcessEnv;
}

function userConfigHome(place: Place): string {
  const xdg = place.env.XDG_CONFIG_HOME;
  return xdg && path.isAbsolute(xdg) ? xdg : path.join(place.homeDir, '.config');
}

/** The user-level configuration file each client reads. */
export function clientConfigPath(client: FileClient, place: Place): string {
  const macSupport = path.join(place.homeDir, 'Library', 'Application Support');
  switch (client) {
    case 'claude-desktop':
      return place.platform === 'darwin'
        ? path.join(macSupport, 'Claude', 'claude_desktop_config.json')
        : path.join(userConfigHome(place), 'Claude', 'claude_desktop_config.json');
    case 'cursor':
      return path.join(place.homeDir, '.cursor', 'mcp.json');
    case 'vscode':
      return place.platform === 'darwin'
        ? path.join(macSupport, 'Code', 'User', 'mcp.json')
        : path.join(userConfigHome(place), 'Code', 'User', 'mcp.json');
  }
}

const authorization = (token: string) => `Bearer ${token}`;

/** The key the client lists its servers under, and this server's entry. */
export function serverEntry(
  client: FileClient,
  connection: Connection,
): { listKey: 'mcpServers' | 'servers'; entry: Record<string, unknown> } {
  switch (client) {
    case 'claude-desktop':
      // Claude Desktop launches local commands: mcp-remote bridges stdio to the URL.
      return {
        listKey: 'mcpServers',
        entry: {
          command: 'npx',
          args: [
            '-y',
            'mcp-remote',
            connection.url,
            '--header',
            `Authorization: ${authorization(connection.token)}`,
          ],
        },
      };
    case 'cursor':
      return {
        listKey: 'mcpServers',
        entry: { url: connection.url, headers: { Authorization: authorization(connection.token) } },
      };
    case 'vscode':
      return {
        listKey: 'servers',
        entry: {
          type: 'http',
          url: connection.url,
          headers: { Authorization: authorization(connection.token) },
        },
      };
  }
}

/** What --print shows: the part of the file this server adds. */
export function configSnippet(client: FileClient, connection: Connection): Record<string, unknown> {
  const { listKey, entry } = serverEntry(client, connection);
  return { [listKey]: { [connection.name]: entry } };
}

/** `--client json`: the generic Streamable HTTP form. */
export function genericForm(connection: Connection): {
  url: string;
  headers: Record<string, string>;
} {
  return { url: connection.url, headers: { Authorization: authorization(connection.token) } };
}

/** `--client inspector`: the MCP Inspector's command line (its --cli mode lists the tools). */
export function inspectorCommand(connection: Connection): string[] {
  return [
    'npx',
    '@modelcontextprotocol/inspector',
    '--cli',
    connection.url,
    '--transport',
    'http',
    '--header',
    `Authorization: ${authorization(connection.token)}`,
    '--method',
    'tools/list',
  ];
}

/** Quotes for a POSIX shell where needed. */
export function shellLine(argv: string[]): string {
  return argv
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`))
    .join(' ');
}

export interface MergeResult {
  text: string;
  /** An entry of the same name was there and is replaced. */
  replaced: boolean;
}

/** The file's new text; `existing` is its text, or undefined when there is no file. */
export function mergeServer(
  file: string,
  existing: string | undefined,
  client: FileClient,
  connection: Connection,
): MergeResult {
  const { listKey, entry } = serverEntry(client, connection);
  const root = existing === undefined || existing.trim() === '' ? {} : parseObject(file, existing);
  const list = root[listKey] ?? {};
  if (!isPlainObject(list)) {
    throw new CliError(`${file}: "${listKey}" is not an object; nothing was written`, EXIT.failed, {
      hint: 'fix the file, or add the entry by hand from `minimcp connect … --print`',
    });
  }
  const replaced = Object.hasOwn(list, connection.name);
  const merged = { ...root, [listKey]: { ...list, [connection.name]: entry } };
  return { text: JSON.stringify(merged, null, 2) + '\n', replaced };
}

function parseObject(file: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliError(
      `${file} is not valid JSON (${(error as Error).message}); nothing was written`,
      EXIT.failed,
      {
        hint: 'comments and trailing commas are not JSON: fix the file, or add the entry by hand from `minimcp connect … --print`',
        cause: error,
      },
    );
  }
  if (!isPlainObject(value))
    throw new CliError(`${file} does not hold a JSON object; nothing was written`, EXIT.failed);
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface WriteResult {
  file: string;
  /** The previous file's copy; undefined when there was no file. */
  backup: string | undefined;
  replaced: boolean;
}

/** Merges the entry into the client's file: parent folders made, previous file to <file>.bak. */
export async function writeClientConfig(
  file: string,
  client: FileClient,
  connection: Connection,
): Promise<WriteResult> {
  const existing = await readIfThere(file);
  const merged = mergeServer(file, existing, client, connection);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  let backup: string | undefined;
  // The file holds a bearer token: a new one is 0600, an existing one keeps its mode.
  let mode = 0o600;
  if (existing !== undefined) {
    backup = `${file}.bak`;
    await copyFile(file, backup);
    mode = (await stat(file)).mode & 0o777;
  }
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, merged.text, { mode });
    await rename(temporary, file);
  } finally {
    await rm(temporary, { force: true });
  }
  return { file, backup, replaced: merged.replaced };
}

async function readIfThere(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, EXIT.failed, {
      cause: error,
    });
  }
}
