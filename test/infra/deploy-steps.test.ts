// The deploy-time custom-resource handlers against real services: the
// database step (lambdas/migrate.ts) migrates a real PostgreSQL and publishes
// its parameters to SSM, the mTLS step issues a certificate set that really
// handshakes — both with Secrets Manager and SSM played by moto.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import pg from 'pg';
import { MIGRATIONS_DIR } from '../../lambdas/control/db/migrate.js';
import { createLogger } from '../../core/logger.js';
import {
  agentAltNames,
  handler as mutualTlsHandler,
} from '../../infra/constructs/mutual-tls-handler.js';
import { createDeployStep, type DeployStepResult } from '../../lambdas/migrate.js';
import { createEmptyDatabase } from '../support/database.js';
import { MIGRATION_NAMES } from '../support/migrations.js';
import { MOTO_CLIENT_CONFIG, startMoto, type MotoServer } from '../support/moto.js';
import {
  AGENT_ROLE_PASSWORD,
  APP_ROLE_PASSWORD,
  readTestPostgres,
} from '../support/postgres-env.js';

/** The error a promise rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but the promise resolved');
    },
    (error: unknown) => error as Error,
  );
}

describe('deploy-time steps', () => {
  let moto: MotoServer;
  let secrets: SecretsManagerClient;
  let ssm: SSMClient;

  beforeAll(async () => {
    moto = await startMoto();
    secrets = new SecretsManagerClient({ ...MOTO_CLIENT_CONFIG, endpoint: moto.endpoint });
    ssm = new SSMClient({ ...MOTO_CLIENT_CONFIG, endpoint: moto.endpoint });
  });

  afterAll(async () => {
    try {
      secrets?.destroy();
      ssm?.destroy();
    } finally {
      await moto?.stop();
    }
  });

  const createSecret = async (name: string, value: unknown) =>
    (
      await secrets.send(
        new CreateSecretCommand({
          Name: name,
          SecretString: typeof value === 'string' ? value : JSON.stringify(value),
        }),
      )
    ).ARN!;

  const parameter = async (name: string) =>
    (await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter
      ?.Value;

  describe('the database step', () => {
    const prefix = '/test/deploy-step';
    let database: Awaited<ReturnType<typeof createEmptyDatabase>>;
    let properties: Record<string, string>;
    let step: (event: unknown) => Promise<DeployStepResult>;

    beforeAll(async () => {
      const server = readTestPostgres();
      database = await createEmptyDatabase();
      const login = (username: string, password: string) => ({
        username,
        password,
        host: server.host,
        port: server.port,
        dbname: database.name,
        engine: 'postgres',
      });
      properties = {
        ServiceToken: 'arn:aws:lambda:us-east-1:000000000000:function:provider',
        MasterSecretArn: await createSecret('master', login('postgres', server.password)),
        AppSecretArn: await createSecret('app', login('minimcp_app', APP_ROLE_PASSWORD)),
        AgentSecretArn: await createSecret('agent', login('minimcp_agent', AGENT_ROLE_PASSWORD)),
        // The proxy's address; here the server itself, so the published URL can be used.
        ProxyEndpoint: server.host,
        SsmPrefix: prefix,
        SourceDigest: 'abc',
        Nonce: '',
      };
      step = createDeployStep({
        secrets,
        ssm,
        migrationsDir: MIGRATIONS_DIR,
        // The test server has no TLS; on AWS the step always says require.
        sslMode: 'disable',
        logger: createLogger({ level: 'silent' }),
      });
    });

    afterAll(async () => {
      await database?.drop();
    });

    it('migrates an empty database and publishes a working DATABASE_URL and an admin token', async () => {
      const result = await step({ RequestType: 'Create', ResourceProperties: properties });

      expect(result.PhysicalResourceId).toBe(`minimcp-database-step:${prefix}`);
      expect(result.Data.AppliedMigrations.split(',')).toEqual(MIGRATION_NAMES);
      const databaseUrl = await parameter(`${prefix}/DATABASE_URL`);
      expect(databaseUrl).toMatch(/^postgres:\/\/minimcp_app:/);
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ role: string; types: string }>(
          'SELECT current_user AS role, (SELECT count(*) FROM mcp_types)::text AS types',
        );
        expect(rows[0]).toEqual({ role: 'minimcp_app', types: '4' });
      } finally {
        await client.end();
      }
      expect(await parameter(`${prefix}/MINIMCP_ADMIN_TOKEN`)).toMatch(/^mma_[\w-]{43}$/);
    });

    it('runs again without changes and keeps the admin token clients already hold', async () => {
      const token = await parameter(`${prefix}/MINIMCP_ADMIN_TOKEN`);

      const result = await step({
        RequestType: 'Update',
        PhysicalResourceId: `minimcp-database-step:${prefix}`,
        ResourceProperties: { ...properties, Nonce: 'again' },
      });

      expect(result.Data.AppliedMigrations).toBe('');
      expect(await parameter(`${prefix}/MINIMCP_ADMIN_TOKEN`)).toBe(token);
    });

    it('refuses to set the password of a role that is not an application role', async () => {
      const error = await rejectionOf(
        step({
          RequestType: 'Update',
          PhysicalResourceId: `minimcp-database-step:${prefix}`,
          ResourceProperties: { ...properties, AppSecretArn: properties.MasterSecretArn },
        }),
      );
      expect(error.message).toBe('refusing to change role postgres: not an application role');
    });

    it('never quotes a malformed secret in its error', async () => {
      const arn = await createSecret('broken', 'password=hunter2-not-json');

      const error = await rejectionOf(
        step({
          RequestType: 'Update',
          PhysicalResourceId: `minimcp-database-step:${prefix}`,
          ResourceProperties: { ...properties, AgentSecretArn: arn },
        }),
      );

      expect(error.message).toBe(`secret ${arn} is not JSON`);
    });

    it('removes its parameters on delete, twice without complaint, and leaves the database', async () => {
      const del = {
        RequestType: 'Delete',
        PhysicalResourceId: `minimcp-database-step:${prefix}`,
        ResourceProperties: properties,
      };
      await step(del);
      await step(del);

      const left = await ssm.send(
        new GetParametersByPathCommand({ Path: prefix, Recursive: true }),
      );
      expect(left.Parameters ?? []).toEqual([]);
      const owner = new pg.Client({ connectionString: database.url });
      await owner.connect();
      try {
        const { rows } = await owner.query<{ n: string }>(
          'SELECT count(*)::text AS n FROM pgmigrations',
        );
        expect(rows[0]?.n).toBe(String(MIGRATION_NAMES.length));
      } finally {
        await owner.end();
      }
    });
  });

  describe('the mTLS step', () => {
    const prefix = '/test/mtls';
    const region = 'eu-west-1';
    const agentHost = 'ip-10-40-0-12.eu-west-1.compute.internal';
    let agentSecretArn: string;
    let properties: Record<string, string>;
    const saved: Record<string, string | undefined> = {};

    beforeAll(async () => {
      // The handler builds its SDK clients from the environment, as on Lambda.
      const env = {
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_REGION: MOTO_CLIENT_CONFIG.region,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
      };
      for (const [key, value] of Object.entries(env)) {
        saved[key] = process.env[key];
        process.env[key] = value;
      }
      agentSecretArn = await createSecret('agent-tls', 'placeholder');
      properties = {
        AgentSecretArn: agentSecretArn,
        SsmPrefix: prefix,
        Region: region,
        Generation: '1',
      };
    });

    afterAll(() => {
      for (const [key, value] of Object.entries(saved))
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
    });

    const agentMaterial = async () =>
      JSON.parse(
        (await secrets.send(new GetSecretValueCommand({ SecretId: agentSecretArn }))).SecretString!,
      ) as { ca: string; cert: string; key: string };
    const controlPlaneMaterial = async () => ({
      ca: (await parameter(`${prefix}/MINIMCP_TLS_CA`))!,
      cert: (await parameter(`${prefix}/MINIMCP_TLS_CERT`))!,
      key: (await parameter(`${prefix}/MINIMCP_TLS_KEY`))!,
    });

    it('covers the EC2 private DNS names of both forms', () => {
      expect(agentAltNames('us-east-1')).toContain('*.ec2.internal');
      expect(agentAltNames(region)).toContain('*.eu-west-1.compute.internal');
    });

    it('issues a set the control plane and an agent complete a mutual-TLS handshake with', async () => {
      await mutualTlsHandler({ RequestType: 'Create', ResourceProperties: properties });
      const agent = await agentMaterial();
      const controlPlane = await controlPlaneMaterial();

      const agentCert = new X509Certificate(agent.cert);
      expect(agentCert.checkHost(agentHost)).toBe('*.eu-west-1.compute.internal');
      expect(agentCert.checkHost('attacker.example')).toBeUndefined();
      expect(agentCert.checkPrivateKey(createPrivateKey(agent.key))).toBe(true);
      expect(agent.ca).toBe(controlPlane.ca);

      // The agent's server requires a client certificate from the same CA; the
      // client checks the server against the EC2 name it dials.
      const server = tls.createServer({
        ca: agent.ca,
        cert: agent.cert,
        key: agent.key,
        requestCert: true,
        rejectUnauthorized: true,
      });
      server.on('secureConnection', (socket) => socket.end('ok'));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          servername: agentHost,
          checkServerIdentity: (_host, cert) => tls.checkServerIdentity(agentHost, cert),
          ca: controlPlane.ca,
          cert: controlPlane.cert,
          key: controlPlane.key,
        });
        const [data] = (await once(socket, 'data')) as [Buffer];
        expect(socket.authorized).toBe(true);
        expect(data.toString()).toBe('ok');
        socket.destroy();
      } finally {
        server.close();
      }
    });

    it('issues a new CA with a new generation, and deletes its parameters with the stack', async () => {
      const before = await agentMaterial();

      await mutualTlsHandler({
        RequestType: 'Update',
        PhysicalResourceId: `minimcp-mtls:${prefix}`,
        ResourceProperties: { ...properties, Generation: '2' },
      });
      const after = await agentMaterial();
      expect(after.ca).not.toBe(before.ca);
      expect((await controlPlaneMaterial()).ca).toBe(after.ca);

      await mutualTlsHandler({
        RequestType: 'Delete',
        PhysicalResourceId: `minimcp-mtls:${prefix}`,
        ResourceProperties: properties,
      });
      const left = await ssm.send(
        new GetParametersByPathCommand({ Path: prefix, Recursive: true }),
      );
      expect(left.Parameters ?? []).toEqual([]);
    });
  });
});
