// The program in-process against a scripted fetch: how arguments reach the
// API, how a 202 is waited on, and how failures become messages and exit codes.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { createConfigStore } from '../../../../../infra/cli/minimcp/config-store.js';
import type { CliContext } from '../../../../../infra/cli/minimcp/context.js';
import { runCli } from '../../../../../infra/cli/minimcp/program.js';

interface Seen {
  method: string;
  url: URL;
  body: unknown;
  authorization: string | null;
}
type Answer = { status: number; body?: unknown; type?: string };

const ID = '0b6f1c2e-1111-4222-8333-444455556666';

function instance(status: string, extra: Record<string, unknown> = {}) {
  return {
    id: ID,
    type: 'demo',
    status,
    access_url: 'http://127.0.0.1:3001/mcp',
    token_prefix: 'mcp_abcd',
    node: 'local',
    port: 3001,
    expires_at: '2030-01-01T00:00:00.000Z',
    last_accessed: null,
    config: {},
    stats: {},
    error_message: null,
    created_at: '2026-12-07T00:00:00.000Z',
    updated_at: '2026-12-07T00:00:00.000Z',
    ...extra,
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-program-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs one command line; `answers` are given in order, one per request. */
async function run(args: string[], answers: Answer[], env: NodeJS.ProcessEnv = {}) {
  const seen: Seen[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  const fakeFetch = (async (input: URL, init: RequestInit) => {
    const headers = new Headers(init.headers);
    seen.push({
      method: init.method ?? 'GET',
      url: input,
      body: init.body ? JSON.parse(String(init.body)) : undefined,
      authorization: headers.get('authorization'),
    });
    const answer = answers.shift() ?? { status: 500, body: { detail: 'no answer scripted' } };
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status,
      headers: { 'content-type': answer.type ?? 'application/json' },
    });
  }) as typeof fetch;
  const store = createConfigStore(path.join(dir, 'minimcp'));
  const ctx: CliContext = {
    env: { MINIMCP_URL: 'http://api.test', MINIMCP_TOKEN: 'mmu_test', ...env },
    stdin: Readable.from([]),
    stdout,
    stderr,
    platform: 'linux',
    homeDir: dir,
    hostname: 'host',
    store,
    fetch: fakeFetch,
  };
  const code = await runCli(['node', 'minimcp', ...args], ctx, '0.0.0-test');
  return { code, seen, stdout: out.join(''), stderr: err.join(''), store };
}

const problem = (status: number, detail: string): Answer => ({
  status,
  type: 'application/problem+json',
  body: { type: 'https://minimcp.dev/problems/x', title: 'X', status, detail, request_id: 'r1' },
});

describe('minimcp create', () => {
  it('sends --minutes and every --config pair, waits out a 202, prints JSON with the token and saves it', async () => {
    const result = await run(
      ['create', 'demo', '--minutes', '5', '--config', 'a=1', '--config', 'b:=[1,2]', '--json'],
      [
        { status: 202, body: { ...instance('pending'), access_token: 'mcp_secret' } },
        { status: 200, body: instance('pending') },
        { status: 200, body: instance('running') },
      ],
    );

    expect(result.code).toBe(0);
    expect(result.seen[0]).toMatchObject({
      method: 'POST',
      body: { type: 'demo', duration_minutes: 5, config: { a: '1', b: [1, 2] } },
      authorization: 'Bearer mmu_test',
    });
    expect(result.seen.slice(1).map((s) => `${s.method} ${s.url.pathname}`)).toEqual([
      `GET /v1/instances/${ID}`,
      `GET /v1/instances/${ID}`,
    ]);
    expect(JSON.parse(result.stdout)).toMatchObject({
      id: ID,
      status: 'running',
      access_token: 'mcp_secret',
    });
    expect(await result.store.instanceToken(ID)).toBe('mcp_secret');
  });

  it('fails with the error message when the instance ends in error instead of running', async () => {
    const result = await run(
      ['create', 'demo'],
      [
        { status: 202, body: { ...instance('pending'), access_token: 'mcp_secret' } },
        { status: 200, body: instance('error', { error_message: 'the child exited with code 1' }) },
      ],
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `instance ${ID} did not start: it is error (the child exited with code 1)`,
    );
  });

  it('refuses a --config without = as bad usage, before any request', async () => {
    const result = await run(['create', 'demo', '--config', 'oops'], []);
    expect(result.code).toBe(2);
    expect(result.seen).toEqual([]);
    expect(result.stderr).toContain('expected key=value');
  });
});

describe('failures', () => {
  it.each([
    [404, 4],
    [401, 3],
    [409, 1],
    [503, 1],
  ])('prints the problem detail of a %i and exits %i', async (status, code) => {
    const result = await run(['get', ID], [problem(status, `the detail for ${status}`)]);
    expect(result.code).toBe(code);
    expect(result.stderr.split('\n')[0]).toBe(`minimcp: the detail for ${status}`);
  });

  it('exits 3 with what to do when there is no token at all', async () => {
    const result = await run(['ls'], [], { MINIMCP_TOKEN: '' });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('not logged in');
    expect(result.stderr).toContain('minimcp login');
  });

  it('exits 2 on an unknown command and 0 on --help', async () => {
    expect((await run(['frobnicate'], [])).code).toBe(2);
    const help = await run(['connect', '--help'], []);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
  });
});

describe('minimcp connect', () => {
  it('says how to get a token when none was saved or given', async () => {
    const result = await run(
      ['connect', ID, '--client', 'json'],
      [{ status: 200, body: instance('running') }],
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`no access token known for instance ${ID}`);
    expect(result.stderr).toContain('--token');
  });

  it('prints the generic form with --token', async () => {
    const result = await run(
      ['connect', ID, '--client', 'json', '--token', 'mcp_given'],
      [{ status: 200, body: instance('running') }],
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      url: 'http://127.0.0.1:3001/mcp',
      headers: { Authorization: 'Bearer mcp_given' },
    });
  });
});
