// The `minimcp` command line end to end: the built CLI spawned as a real
// process (HOME and XDG_CONFIG_HOME in a temporary folder) against the local
// stack — log in with the password on stdin, store a key from stdin, create a
// demo instance, connect --print for every client and use what it printed,
// follow the logs, delete, log out.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LocalStack } from '../../infra/local/local-stack.js';
import { DIST_ROOT } from '../support/agent-harness.js';
import { startTestStack, type TestStack } from '../support/local-stack.js';
import { initializeRequest, postMcp } from '../support/mcp-http.js';
import { waitFor } from '../support/wait.js';

const CLI = path.join(DIST_ROOT, 'infra', 'cli', 'minimcp', 'main.js');
const GITHUB_KEY = 'ghp_' + 'cli'.repeat(12);
const USER = { email: 'cli@example.test', password: 'a long cli passphrase' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let testStack: TestStack;
let stack: LocalStack;
let home: string;

function cliEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg') };
}

/** Runs the CLI to its end with `input` on stdin (a pipe, not a terminal). */
function minimcp(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function ok(args: string[], input = ''): Promise<Run> {
  const run = await minimcp(args, input);
  if (run.code !== 0)
    throw new Error(`minimcp ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run;
}

/** An MCP initialize with the given headers: the instance answers 200 when they are right. */
async function initialize(url: string, headers: Record<string, string>): Promise<number> {
  const response = await postMcp(url, initializeRequest(), headers);
  await response.body?.cancel();
  return response.status;
}

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'minimcp-cli-home-'));
  testStack = await startTestStack({
    name: 'cli-e2e',
    env: {
      MINIMCP_RECONCILE_SECONDS: '1',
      MINIMCP_ADMIN_TOKEN: 'mma_' + randomBytes(24).toString('base64url'),
    },
  });
  stack = testStack.stack;
});

afterAll(async () => {
  await testStack?.stop();
  await rm(home, { recursive: true, force: true });
});

describe('the minimcp command line against the local stack', () => {
  let instance: { id: string; access_url: string; access_token: string };

  it('logs the first admin in with the password on stdin and stores the token 0600', async () => {
    const admin = stack.firstUser;
    if (!admin) throw new Error('the stack created no first user');
    await ok(['login', '--url', stack.apiUrl, '--email', admin.email], admin.password + '\n');
    const configFile = path.join(home, 'xdg', 'minimcp', 'config.json');
    expect((await stat(configFile)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(configFile, 'utf8'))).toMatchObject({ url: stack.apiUrl });
    const me = JSON.parse((await ok(['whoami', '--json'])).stdout);
    expect(me).toMatchObject({ role: 'admin', user: { email: admin.email } });
  });

  it('refuses a wrong password with the API detail and exit code 3', async () => {
    const run = await minimcp(['login', '--url', stack.apiUrl, '--email', USER.email], 'wrong\n');
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('The email or password is wrong');
  });

  it('lets the admin create a user (password on stdin), who then logs in', async () => {
    const created = await ok(
      ['admin', 'users', 'create', '--email', USER.email, '--name', 'CLI', '--json'],
      USER.password,
    );
    expect(JSON.parse(created.stdout)).toMatchObject({ email: USER.email, role: 'user' });
    await ok(['login', '--url', stack.apiUrl, '--email', USER.email], USER.password);
    expect(JSON.parse((await ok(['whoami', '--json'])).stdout)).toMatchObject({
      role: 'user',
      user: { email: USER.email },
    });
  });

  it('stores a key read from stdin and lists only its hint', async () => {
    await ok(['keys', 'set', 'github'], GITHUB_KEY + '\n');
    const listed = await ok(['keys', 'ls', '--json']);
    expect(JSON.parse(listed.stdout).keys).toEqual([
      expect.objectContaining({ type: 'github', active: true }),
    ]);
    expect(listed.stdout).not.toContain(GITHUB_KEY);
    const empty = await minimcp(['keys', 'set', 'github'], '');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('no github key on stdin');
  });

  it('lists the types and creates a running demo instance whose token is saved 0600', async () => {
    const types = JSON.parse((await ok(['types', 'ls', '--json'])).stdout);
    expect(types.types.map((t: { name: string }) => t.name)).toContain('demo');
    const created = JSON.parse((await ok(['create', 'demo', '--minutes', '10', '--json'])).stdout);
    expect(created).toMatchObject({ type: 'demo', status: 'running' });
    expect(created.access_token).toMatch(/^mcp_/);
    instance = created;
    const tokens = path.join(home, 'xdg', 'minimcp', 'instance-tokens.json');
    expect((await stat(tokens)).mode & 0o777).toBe(0o600);
    const listed = JSON.parse((await ok(['ls', '--json'])).stdout);
    expect(listed.instances.map((i: { id: string }) => i.id)).toContain(instance.id);
  });

  it('prints each client configuration with the saved token, and that configuration reaches the instance', async () => {
    const bearer = `Bearer ${instance.access_token}`;
    const print = async (client: string) =>
      (await ok(['connect', instance.id, '--client', client, '--print'])).stdout;
    const name = `minimcp-demo-${instance.id.slice(0, 8)}`;

    const generic = JSON.parse(await print('json'));
    expect(generic).toEqual({ url: instance.access_url, headers: { Authorization: bearer } });
    expect(await initialize(generic.url, generic.headers)).toBe(200);

    const cursor = JSON.parse(await print('cursor')).mcpServers[name];
    expect(cursor).toEqual({ url: instance.access_url, headers: { Authorization: bearer } });
    expect(await initialize(cursor.url, cursor.headers)).toBe(200);

    const vscode = JSON.parse(await print('vscode')).servers[name];
    expect(vscode).toEqual({
      type: 'http',
      url: instance.access_url,
      headers: { Authorization: bearer },
    });

    const claude = JSON.parse(await print('claude-desktop')).mcpServers[name];
    expect(claude).toEqual({
      command: 'npx',
      args: ['-y', 'mcp-remote', instance.access_url, '--header', `Authorization: ${bearer}`],
    });

    const inspector = (await print('inspector')).trim();
    expect(inspector).toBe(
      `npx @modelcontextprotocol/inspector --cli ${instance.access_url} --transport http --header 'Authorization: ${bearer}' --method tools/list`,
    );
  });

  it("writes Cursor's file in the temporary HOME", async () => {
    await ok(['connect', instance.id, '--client', 'cursor']);
    const written = JSON.parse(await readFile(path.join(home, '.cursor', 'mcp.json'), 'utf8'));
    expect(Object.values(written.mcpServers)).toEqual([
      { url: instance.access_url, headers: { Authorization: `Bearer ${instance.access_token}` } },
    ]);
  });

  it('follows the logs: access records of new requests arrive while it runs', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'logs', instance.id, '--follow', '--json', '--interval', '200'],
      {
        env: cliEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const lines: { id: string; timestamp: string }[] = [];
    let buffer = '';
    child.stdout.on('data', (c: Buffer) => {
      buffer += c.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const part of parts) if (part.trim()) lines.push(JSON.parse(part));
    });
    try {
      // Give it time for its first page, then make new lines while it polls.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const start = Date.now();
      for (let i = 0; i < 3; i += 1)
        expect(
          await initialize(instance.access_url, {
            authorization: `Bearer ${instance.access_token}`,
          }),
        ).toBe(200);
      await waitFor(
        'three new log lines',
        () => lines.filter((l) => Date.parse(l.timestamp) >= start - 50).length >= 3,
      );
      expect(new Set(lines.map((l) => l.id)).size).toBe(lines.length);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('shows the events, deletes the instance, and then answers not found with exit code 4', async () => {
    const events = JSON.parse((await ok(['events', instance.id, '--json'])).stdout);
    expect(events.events.map((e: { type: string }) => e.type)).toContain('created');
    await ok(['rm', instance.id]);
    const gone = await minimcp(['get', instance.id]);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/^minimcp: /);
  });

  it('logs out: the token is revoked and the next command exits 3', async () => {
    const stored = JSON.parse(
      await readFile(path.join(home, 'xdg', 'minimcp', 'config.json'), 'utf8'),
    );
    await ok(['logout']);
    const me = await fetch(`${stack.apiUrl}/v1/me`, {
      headers: { authorization: `Bearer ${stored.token}` },
    });
    expect(me.status).toBe(401);
    expect((await minimcp(['whoami'])).code).toBe(3);
  });
});
