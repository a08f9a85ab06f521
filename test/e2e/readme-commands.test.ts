// The README's own lines, run as written against a local stack: the three
// calls of "A first instance in three calls" (with its placeholders filled the
// way a reader fills them) and the MCP Inspector line (npx fetches the pinned
// inspector from the npm registry, as it does for a reader).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLogger } from '../../core/logger.js';
import { startLocalStack, type LocalStack } from '../../infra/local/local-stack.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { DIST_ROOT, randomPortRange } from '../support/agent-harness.js';
import { REPO_ROOT } from '../support/agent-helpers.js';

const run = promisify(execFile);

/** The first fenced block after `heading` in the README. */
async function readmeBlock(heading: string): Promise<string> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const after = readme.slice(readme.indexOf(heading));
  const block = /```sh\n([\s\S]*?)```/.exec(after)?.[1];
  if (!block) throw new Error(`README has no sh block after ${heading}`);
  return block;
}

/** Runs shell text with bash, as a reader pastes it. */
async function sh(script: string, env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], {
    env,
    timeout: 240_000,
    maxBuffer: 8 * 1024 * 1024,
  });
  return stdout;
}

describe("the README's commands", () => {
  let stack: LocalStack;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-readme-'));
    const range = randomPortRange(5);
    stack = await startLocalStack({
      env: {
        PATH: process.env.PATH,
        MINIMCP_DATA_DIR: dataDir,
        MINIMCP_PG_PORT: String(await findFreePort()),
        MINIMCP_API_PORT: '0',
        MINIMCP_GRPC_LISTEN: `127.0.0.1:${await findFreePort()}`,
        MINIMCP_METRICS_LISTEN: '127.0.0.1:0',
        MINIMCP_PORT_RANGE: `${range.start}-${range.end}`,
      },
      logger: createLogger({ level: 'warn', name: 'readme' }),
      serversRoot: DIST_ROOT,
    });
    if (!stack.firstUser) throw new Error('a fresh local stack creates its first user');
    env = {
      ...process.env,
      MINIMCP_TOKEN: stack.firstUser.token,
      // A reader's own GitHub token; the key pattern is all the API checks locally.
      GITHUB_TOKEN:
        'ghp_' + randomBytes(27).toString('base64url').replace(/[-_]/g, 'a').slice(0, 36),
    };
  });

  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('stores a key, creates an instance and speaks MCP to it with the three calls', async () => {
    const block = (await readmeBlock('## A first instance in three calls')).replace(
      'API=http://127.0.0.1:8080',
      `API=${stack.apiUrl}`,
    );
    const third = block.slice(block.indexOf('# 3. speak MCP to it'));
    const setup = block.slice(0, block.indexOf('# 3. speak MCP to it'));
    const output = await sh(setup, env);
    // curl prints each answer without a newline: split the objects where one ends and the next starts.
    const answers = output
      .trim()
      .replace(/}\s*{"/g, '}\n{"')
      .split('\n');
    expect(JSON.parse(answers[0]!)).toMatchObject({ hint: expect.any(String) });
    const instance = JSON.parse(answers[1]!) as {
      access_url: string;
      access_token: string;
      status: string;
    };
    expect(instance.status).toBe('running');

    const call = third
      .replace('http://127.0.0.1:3001/mcp', instance.access_url)
      .replace('mcp_…', instance.access_token);
    const answer = await sh(call, env);
    expect(answer).toContain('"serverInfo"');
  });

  it('lists the tools of an instance with the MCP Inspector line', async () => {
    const created = await fetch(`${stack.apiUrl}/v1/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.MINIMCP_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'demo' }),
    });
    const instance = (await created.json()) as { access_url: string; access_token: string };
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const line = /`(npx -y @modelcontextprotocol\/inspector@[^`]+)`/.exec(readme)?.[1];
    if (!line) throw new Error('README has no MCP Inspector line');
    const command = line
      .replace('http://127.0.0.1:3001/mcp', instance.access_url)
      .replace('mcp_…', instance.access_token);
    const listed = JSON.parse(await sh(command, env)) as { tools: Array<{ name: string }> };
    expect(listed.tools.map((tool) => tool.name)).toContain('echo');
  }, 300_000);
});
