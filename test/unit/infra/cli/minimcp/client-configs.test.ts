// connect's configuration files: each client's place, its entry, and the merge
// into a file already there (others kept, .bak written), a missing file made,
// and a file that is not JSON refused and left as it was.
import { describe, expect, it, beforeEach, afterEach } from '@jest/globals';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  clientConfigPath,
  configSnippet,
  genericForm,
  inspectorCommand,
  shellLine,
  writeClientConfig,
  type Connection,
  type FileClient,
} from '../../../../../infra/cli/minimcp/client-configs.js';
import { CliError, EXIT } from '../../../../../infra/cli/minimcp/errors.js';

const connection: Connection = {
  name: 'minimcp-demo-1234abcd',
  url: 'http://127.0.0.1:3001/mcp',
  token: 'mcp_test_token',
};

/** Per client: the list key, another server already in the file, and what ours must hold. */
const CASES: Record<FileClient, { listKey: string; other: unknown; expected: unknown }> = {
  'claude-desktop': {
    listKey: 'mcpServers',
    other: { command: 'node', args: ['/opt/other/server.js'] },
    expected: {
      command: 'npx',
      args: [
        '-y',
        'mcp-remote',
        connection.url,
        '--header',
        'Authorization: Bearer mcp_test_token',
      ],
    },
  },
  cursor: {
    listKey: 'mcpServers',
    other: { url: 'https://other.example/mcp' },
    expected: { url: connection.url, headers: { Authorization: 'Bearer mcp_test_token' } },
  },
  vscode: {
    listKey: 'servers',
    other: { type: 'stdio', command: 'other-server' },
    expected: {
      type: 'http',
      url: connection.url,
      headers: { Authorization: 'Bearer mcp_test_token' },
    },
  },
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-connect-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each(Object.keys(CASES) as FileClient[])('connect --client %s', (client) => {
  const { listKey, other, expected } = CASES[client];

  it('adds the server to an existing file, keeps the other servers and settings, and backs the old file up', async () => {
    const file = path.join(dir, 'config.json');
    const before = JSON.stringify({ theme: 'dark', [listKey]: { other } }, null, 4);
    await writeFile(file, before, { mode: 0o644 });

    const result = await writeClientConfig(file, client, connection);

    const after = JSON.parse(await readFile(file, 'utf8'));
    expect(after).toEqual({ theme: 'dark', [listKey]: { other, [connection.name]: expected } });
    expect(result).toEqual({ file, backup: `${file}.bak`, replaced: false });
    expect(await readFile(`${file}.bak`, 'utf8')).toBe(before);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it('replaces its own entry of the same name on a second run', async () => {
    const file = path.join(dir, 'config.json');
    await writeClientConfig(file, client, { ...connection, token: 'mcp_old' });
    const result = await writeClientConfig(file, client, connection);
    const after = JSON.parse(await readFile(file, 'utf8'));
    expect(result.replaced).toBe(true);
    expect(Object.keys(after[listKey])).toEqual([connection.name]);
    expect(after[listKey][connection.name]).toEqual(expected);
  });

  it('creates a missing file and its folders, readable by the user only, without a backup', async () => {
    const file = path.join(dir, 'a', 'b', 'config.json');
    const result = await writeClientConfig(file, client, connection);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      [listKey]: { [connection.name]: expected },
    });
    expect(result.backup).toBeUndefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses a file that is not valid JSON, naming it, and leaves it untouched', async () => {
    const file = path.join(dir, 'config.json');
    const broken = `{ "${listKey}": { // a comment\n } }`;
    await writeFile(file, broken);

    const attempt = writeClientConfig(file, client, connection);

    await expect(attempt).rejects.toThrow(CliError);
    await expect(attempt).rejects.toThrow(`${file} is not valid JSON`);
    await expect(attempt).rejects.toMatchObject({ exitCode: EXIT.failed });
    expect(await readFile(file, 'utf8')).toBe(broken);
    await expect(stat(`${file}.bak`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it(`refuses a file whose "${listKey}" is not an object`, async () => {
    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ [listKey]: ['x'] }));
    await expect(writeClientConfig(file, client, connection)).rejects.toThrow(
      `${file}: "${listKey}" is not an object; nothing was written`,
    );
  });

  it('prints, with --print, only the part this server adds', () => {
    expect(configSnippet(client, connection)).toEqual({
      [listKey]: { [connection.name]: expected },
    });
  });
});

describe('where each client keeps its configuration', () => {
  const linux = { platform: 'linux' as const, homeDir: '/home/ana', env: {} };
  const mac = { platform: 'darwin' as const, homeDir: '/Users/ana', env: {} };

  it('uses the Linux and macOS locations', () => {
    expect(clientConfigPath('claude-desktop', linux)).toBe(
      '/home/ana/.config/Claude/claude_desktop_config.json',
    );
    expect(clientConfigPath('claude-desktop', mac)).toBe(
      '/Users/ana/Library/Application Support/Claude/claude_desktop_config.json',
    );
    expect(clientConfigPath('cursor', linux)).toBe('/home/ana/.cursor/mcp.json');
    expect(clientConfigPath('cursor', mac)).toBe('/Users/ana/.cursor/mcp.json');
    expect(clientConfigPath('vscode', linux)).toBe('/home/ana/.config/Code/User/mcp.json');
    expect(clientConfigPath('vscode', mac)).toBe(
      '/Users/ana/Library/Application Support/Code/User/mcp.json',
    );
  });

  it('follows XDG_CONFIG_HOME on Linux', () => {
    const place = { ...linux, env: { XDG_CONFIG_HOME: '/xdg' } };
    expect(clientConfigPath('vscode', place)).toBe('/xdg/Code/User/mcp.json');
    expect(clientConfigPath('claude-desktop', place)).toBe(
      '/xdg/Claude/claude_desktop_config.json',
    );
  });
});

describe('the printed forms', () => {
  it('gives the generic url + headers form for --client json', () => {
    expect(genericForm(connection)).toEqual({
      url: connection.url,
      headers: { Authorization: 'Bearer mcp_test_token' },
    });
  });

  it('quotes the header of the Inspector command line for a POSIX shell', () => {
    expect(shellLine(inspectorCommand(connection))).toBe(
      "npx @modelcontextprotocol/inspector --cli http://127.0.0.1:3001/mcp --transport http --header 'Authorization: Bearer mcp_test_token' --method tools/list",
    );
    expect(shellLine(["it's"])).toBe(`'it'\\''s'`);
  });
});
