// The agent bundle the EC2 nodes install, built for real: laid out like dist/,
// self-contained, its built-in MCP servers answering over stdio, and its
// boot-time env writer turning IMDS and Secrets Manager into the files the
// systemd unit reads; and the bundled agent itself, started the way the unit
// starts it, serving an instance end to end.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { builtinModules } from 'node:module';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { AGENT_NODE_FLAGS } from '../../agent/node/node-flags.js';
import { createAgentClient } from '../../lambdas/control/agent-client.js';
import { ensureLocalCertificates } from '../../core/tls.js';
import { HOST_FILES, buildAgentBundle } from '../../infra/agent-bundle/build.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { randomPortRange } from '../support/agent-harness.js';
import { agentProcessEnv } from '../support/agent-process.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { makeUser } from '../support/fixtures.js';
import { createInstanceRow } from '../support/instances.js';
import { MOTO_CLIENT_CONFIG, startMoto, type MotoServer } from '../support/moto.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);

describe('the agent bundle', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'minimcp-agent-bundle-'));
    buildAgentBundle(dir);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('mirrors dist/: the agent, every built-in MCP server, the protos, and the host files', () => {
    expect(existsSync(path.join(dir, 'dist/agent/main.js'))).toBe(true);
    expect(existsSync(path.join(dir, 'dist/proto/agent.proto'))).toBe(true);
    expect(existsSync(path.join(dir, 'bootstrap/write-env.js'))).toBe(true);
    const servers = readdirSync(path.join(dir, 'dist/mcp-servers')).filter((f) =>
      f.endsWith('.js'),
    );
    expect(servers).toContain('demo-mcp-server.js');
    for (const file of HOST_FILES) expect(existsSync(path.join(dir, file))).toBe(true);
    expect(statSync(path.join(dir, 'install.sh')).mode & 0o111).not.toBe(0);
    expect(JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'))).toMatchObject({
      type: 'module',
    });
  });

  it('ships what install.sh needs for children as users of their own: a root drop-in and a metadata rule', () => {
    const dropIn = readFileSync(path.join(dir, 'child-users.conf'), 'utf8');
    expect(dropIn).toMatch(/^User=root$/m);
    expect(dropIn).toMatch(
      /^CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_CHOWN CAP_KILL CAP_DAC_OVERRIDE CAP_FOWNER$/m,
    );
    expect(dropIn).toMatch(/^StateDirectoryMode=0711$/m);
    const install = readFileSync(path.join(dir, 'install.sh'), 'utf8');
    expect(install).toContain('child-users.conf');
    expect(install).toContain('sed "s|__CHILD_UIDS__|${MINIMCP_CHILD_UIDS}|"');
    const rules = readFileSync(path.join(dir, 'child-users.nft'), 'utf8').replaceAll(
      '__CHILD_UIDS__',
      '200000-200999',
    );
    expect(rules).toContain('meta skuid 200000-200999 ip daddr 169.254.169.254 reject');
  });

  // Where nftables is installed (not on every CI machine): check mode parses and changes nothing.
  const hasNft = spawnSync('nft', ['--version']).error === undefined;
  (hasNft ? it : it.skip)('has a metadata rule set nftables accepts', () => {
    const rules = readFileSync(path.join(dir, 'child-users.nft'), 'utf8').replaceAll(
      '__CHILD_UIDS__',
      '200000-200999',
    );
    const nft = spawnSync('nft', ['-c', '-f', '-'], { input: rules, encoding: 'utf8' });
    expect({ status: nft.status, stderr: nft.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('needs nothing on the node but Node itself: no package import is left', () => {
    const builtins = new Set(builtinModules);
    const inFolder = (folder: string) =>
      readdirSync(path.join(dir, folder))
        .filter((f) => f.endsWith('.js'))
        .map((f) => `${folder}/${f}`);
    // The agent is split at its dynamic imports: main.js and its chunks.
    const entries = [
      ...inFolder('dist/agent'),
      'bootstrap/write-env.js',
      ...inFolder('dist/mcp-servers'),
    ];
    expect(entries).toContain('dist/agent/main.js');
    expect(entries.filter((entry) => entry.startsWith('dist/agent/')).length).toBeGreaterThan(1);
    for (const entry of entries) {
      const code = readFileSync(path.join(dir, entry), 'utf8');
      // Top-level static imports start a line, or follow a `;` once minified
      // (`;import{a}from"x";`); chunks are loaded with import("./chunk.js").
      const imported = [
        ...code.matchAll(/(?:^|;)import\s*(?:[^;"'()]*?\bfrom\s*)?["']([^"']+)["']/gm),
        ...code.matchAll(/\bimport\(\s*["'](\.[^"']+)["']\s*\)/g),
      ].map((m) => m[1]!);
      expect(imported.length).toBeGreaterThan(0);
      const local = imported.filter((name) => name.startsWith('./'));
      const missing = local.filter(
        (name) => !existsSync(path.join(dir, path.dirname(entry), name)),
      );
      const packages = imported.filter(
        (name) =>
          !name.startsWith('./') &&
          !name.startsWith('node:') &&
          !builtins.has(name) &&
          name !== 'pg-native',
      );
      expect({ entry, packages, missing }).toEqual({ entry, packages: [], missing: [] });
    }
  });

  it("loads each of the agent's chunks (what it imports only on request, e.g. the KMS client)", () => {
    const chunks = readdirSync(path.join(dir, 'dist/agent')).filter(
      (f) => f.endsWith('.js') && f !== 'main.js',
    );
    expect(chunks.some((f) => f.startsWith('kms-provider-'))).toBe(true);
    const script = chunks.map((f) => `await import(${JSON.stringify(`./${f}`)});`).join('\n');
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: path.join(dir, 'dist/agent'),
      encoding: 'utf8',
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('runs the bundled demo MCP server over stdio', async () => {
    const client = new Client({ name: 'bundle-test', version: '1.0.0' });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [path.join(dir, 'dist/mcp-servers/demo-mcp-server.js')],
      stderr: 'pipe',
    });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  describe('the boot-time env writer', () => {
    let moto: MotoServer;
    let imds: Server;
    let imdsUrl: string;
    const tokens: string[] = [];

    beforeAll(async () => {
      moto = await startMoto();
      // A fake IMDSv2: a token by PUT, metadata only with that token.
      imds = createServer((req, res) => {
        if (req.method === 'PUT' && req.url === '/latest/api/token') {
          tokens.push('imds-token');
          return res.end('imds-token');
        }
        if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-token') {
          res.statusCode = 401;
          return res.end();
        }
        const metadata: Record<string, string> = {
          '/latest/meta-data/instance-id': 'i-0123456789abcdef0',
          '/latest/meta-data/local-hostname': 'ip-10-40-0-12.eu-west-1.compute.internal',
          '/latest/meta-data/local-ipv4': '10.40.0.12',
          '/latest/meta-data/public-ipv4': '203.0.113.7',
        };
        const value = metadata[req.url ?? ''];
        res.statusCode = value === undefined ? 404 : 200;
        res.end(value ?? '');
      });
      imds.listen(0, '127.0.0.1');
      await once(imds, 'listening');
      imdsUrl = `http://127.0.0.1:${(imds.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      imds?.close();
      await moto?.stop();
    });

    it('writes the DATABASE_URL, identity and TLS files, readable by the service only', async () => {
      const secrets = new SecretsManagerClient({ ...MOTO_CLIENT_CONFIG, endpoint: moto.endpoint });
      const create = async (name: string, value: unknown) =>
        (
          await secrets.send(
            new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }),
          )
        ).ARN!;
      const databaseArn = await create('agent-db', {
        username: 'minimcp_agent',
        password: 'p4ss"word$',
        host: 'db.internal',
        port: 5432,
        dbname: 'minimcp',
      });
      const tlsArn = await create('agent-tls', { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM' });
      secrets.destroy();
      const runtimeDir = mkdtempSync(path.join(tmpdir(), 'minimcp-run-'));

      try {
        await run(process.execPath, [path.join(dir, 'bootstrap/write-env.js')], {
          env: {
            PATH: process.env.PATH,
            AWS_REGION: MOTO_CLIENT_CONFIG.region,
            AWS_ACCESS_KEY_ID: 'testing',
            AWS_SECRET_ACCESS_KEY: 'testing',
            AWS_ENDPOINT_URL: moto.endpoint,
            AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsUrl,
            MINIMCP_DATABASE_SECRET_ARN: databaseArn,
            MINIMCP_TLS_SECRET_ARN: tlsArn,
            MINIMCP_GRPC_PORT: '50051',
            MINIMCP_ADVERTISE: 'public',
            MINIMCP_RUNTIME_DIR: runtimeDir,
            MINIMCP_SERVICE_USER: userInfo().username,
          },
        });

        const envFile = path.join(runtimeDir, 'agent-secrets.env');
        expect(statSync(envFile).mode & 0o777).toBe(0o600);
        expect(readFileSync(envFile, 'utf8').split('\n')).toEqual(
          expect.arrayContaining([
            'DATABASE_URL="postgres://minimcp_agent:p4ss%22word%24@db.internal:5432/minimcp?sslmode=require"',
            'MINIMCP_NODE_NAME="i-0123456789abcdef0"',
            'MINIMCP_PUBLIC_HOST="203.0.113.7"',
            'MINIMCP_GRPC_ADVERTISE="ip-10-40-0-12.eu-west-1.compute.internal:50051"',
            `MINIMCP_TLS_KEY_FILE="${runtimeDir}/tls/agent.key"`,
          ]),
        );
        expect(readFileSync(path.join(runtimeDir, 'tls/agent.key'), 'utf8')).toBe('KEY PEM');
        expect(statSync(path.join(runtimeDir, 'tls/agent.key')).mode & 0o777).toBe(0o600);
        expect(statSync(path.join(runtimeDir, 'tls')).mode & 0o777).toBe(0o700);
        expect(tokens.length).toBeGreaterThan(0);
      } finally {
        rmSync(runtimeDir, { recursive: true, force: true });
      }
    });
  });
  describe('the bundled agent, started as the systemd unit starts it', () => {
    let db: TestDatabase;
    let workDir: string;
    let agent: ChildProcess | undefined;
    let output = '';

    beforeAll(async () => {
      db = await createTestDatabase();
      workDir = mkdtempSync(path.join(tmpdir(), 'minimcp-bundled-agent-'));
    });

    afterAll(async () => {
      if (agent && agent.exitCode === null && agent.signalCode === null) {
        agent.kill('SIGKILL');
        await once(agent, 'exit');
      }
      await db?.drop();
      rmSync(workDir, { recursive: true, force: true });
    });

    it('registers its node, starts an instance, serves it over MCP and stops cleanly on SIGTERM', async () => {
      const certificates = await ensureLocalCertificates(path.join(workDir, 'tls'));
      const grpcPort = await findFreePort();
      agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, path.join(dir, 'dist/agent/main.js')], {
        cwd: workDir,
        env: {
          ...agentProcessEnv({
            databaseUrl: db.agentUrl,
            dataDir: path.join(workDir, 'data'),
            tlsDir: certificates.dir,
            nodeName: `bundled-${randomBytes(3).toString('hex')}`,
            portRange: randomPortRange(4),
            grpcPort,
            masterKeyBase64: randomBytes(32).toString('base64'),
          }),
          MINIMCP_WARM_POOL: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000));
      agent.stdout!.on('data', keep);
      agent.stderr!.on('data', keep);
      const exited = once(agent, 'exit');

      const grpc = createAgentClient({
        address: `127.0.0.1:${grpcPort}`,
        tls: certificates.controlPlane,
        defaultDeadlineMs: 20_000,
      });
      const mcp = new Client({ name: 'bundled-agent-test', version: '1.0.0' });
      try {
        await waitFor(
          "the bundled agent's gRPC health",
          () => grpc.health().catch(() => undefined),
          60_000,
        ).catch((error: unknown) => {
          throw new Error(`${(error as Error).message}; agent output: ${output}`);
        });
        const user = await makeUser(db.owner);
        const instance = await createInstanceRow(db.owner, { userId: user.id });
        const started = await grpc.startInstance({ instanceId: instance.id });
        expect(started.instance).toMatchObject({ status: 'running' });

        await mcp.connect(
          new StreamableHTTPClientTransport(new URL(instance.url), {
            requestInit: { headers: { Authorization: `Bearer ${instance.token}` } },
          }),
        );
        const { tools } = await mcp.listTools();
        expect(tools.map((tool) => tool.name)).toContain('echo');
      } finally {
        await mcp.close().catch(() => undefined);
        grpc.close();
      }

      agent.kill('SIGTERM');
      const [code] = await exited;
      expect({ code, output }).toEqual({ code: 0, output: expect.any(String) });
    }, 120_000);
  });
});
