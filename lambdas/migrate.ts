// The deploy-time database step (a CloudFormation custom resource that runs
// before the API and the agents are updated): applies the migrations as the
// master user, gives the application roles LOGIN with their passwords from
// Secrets Manager, and publishes the Lambdas' DATABASE_URL and a first admin
// token as SecureString parameters. Delete removes those parameters only.
import '../core/polyfills.js';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  DeleteParameterCommand,
  ParameterAlreadyExists,
  ParameterNotFound,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import pg from 'pg';
import { z } from 'zod';
import { migrate } from './control/db/migrate.js';
import { createLogger, type Logger } from '../core/logger.js';

/** Parameter names (under the prefix) this step owns; core/config.ts reads them by these names. */
export const DATABASE_URL_PARAMETER = 'DATABASE_URL';
export const ADMIN_TOKEN_PARAMETER = 'MINIMCP_ADMIN_TOKEN';

/** The properties infra/constructs/migration.ts gives the custom resource. */
const Properties = z.object({
  MasterSecretArn: z.string().min(1),
  AppSecretArn: z.string().min(1),
  AgentSecretArn: z.string().min(1),
  /** Where the Lambdas connect (the RDS Proxy). */
  ProxyEndpoint: z.string().min(1),
  SsmPrefix: z.string().regex(/^(\/[\w.-]+)+$/),
});
export type DeployStepProperties = z.infer<typeof Properties>;

const DeployStepEvent = z.discriminatedUnion('RequestType', [
  z.object({ RequestType: z.literal('Create'), ResourceProperties: Properties }),
  z.object({
    RequestType: z.literal('Update'),
    ResourceProperties: Properties,
    PhysicalResourceId: z.string(),
  }),
  z.object({
    RequestType: z.literal('Delete'),
    ResourceProperties: Properties,
    PhysicalResourceId: z.string(),
  }),
]);

/** What the custom-resource provider framework expects back. Nothing secret goes in Data. */
export interface DeployStepResult {
  PhysicalResourceId: string;
  Data: { AppliedMigrations: string };
}

/** The JSON shape RDS-generated secrets have once attached to an instance. */
const DatabaseSecret = z.object({
  username: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'must be a plain PostgreSQL role name'),
  password: z.string().min(1),
  host: z.string().min(1),
  port: z.coerce.number().int().positive(),
  dbname: z.string().min(1),
});
type DatabaseSecret = z.infer<typeof DatabaseSecret>;

/** Roles the migrations create; the step refuses to touch any other. */
const APPLICATION_ROLES = new Set(['minimcp_app', 'minimcp_agent']);

export interface DeployStepOptions {
  secrets: SecretsManagerClient;
  ssm: SSMClient;
  /** Folder of the SQL migrations shipped with the bundle. */
  migrationsDir: string;
  /** `require` on AWS (rds.force_ssl); tests against a loopback server use `disable`. */
  sslMode: 'require' | 'disable';
  logger: Logger;
}

export function databaseUrl(
  credentials: { username: string; password: string; dbname: string },
  host: string,
  port: number,
  sslMode: DeployStepOptions['sslMode'],
): string {
  const user = encodeURIComponent(credentials.username);
  const password = encodeURIComponent(credentials.password);
  return `postgres://${user}:${password}@${host}:${port}/${encodeURIComponent(credentials.dbname)}?sslmode=${sslMode}`;
}

export function createDeployStep(options: DeployStepOptions) {
  const { secrets, ssm, logger } = options;

  async function readSecret(arn: string): Promise<DatabaseSecret> {
    const answer = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
    let json: unknown;
    try {
      json = JSON.parse(answer.SecretString ?? '');
    } catch {
      // JSON.parse quotes the text it choked on: a password must not reach CloudFormation events.
      throw new Error(`secret ${arn} is not JSON`);
    }
    const parsed = DatabaseSecret.safeParse(json);
    // The issues name fields, never values.
    if (!parsed.success)
      throw new Error(
        `secret ${arn} is not an attached RDS credential: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`,
      );
    return parsed.data;
  }

  /** LOGIN with the secret's password; ALTER ROLE takes no bind parameters, so the literal is escaped. */
  async function enableLogins(masterUrl: string, roles: DatabaseSecret[]): Promise<void> {
    const client = new pg.Client({
      connectionString: masterUrl,
      application_name: 'minimcp-deploy',
    });
    await client.connect();
    try {
      for (const role of roles) {
        if (!APPLICATION_ROLES.has(role.username))
          throw new Error(`refusing to change role ${role.username}: not an application role`);
        await client.query(
          `ALTER ROLE ${client.escapeIdentifier(role.username)} WITH LOGIN PASSWORD ${client.escapeLiteral(role.password)}`,
        );
      }
    } finally {
      await client.end();
    }
  }

  const parameterName = (prefix: string, name: string) => `${prefix}/${name}`;

  async function publish(props: DeployStepProperties, app: DatabaseSecret): Promise<void> {
    await ssm.send(
      new PutParameterCommand({
        Name: parameterName(props.SsmPrefix, DATABASE_URL_PARAMETER),
        Description: 'MiniMCP API: minimcp_app through the RDS Proxy (written by the deploy step)',
        Type: 'SecureString',
        Value: databaseUrl(app, props.ProxyEndpoint, app.port, options.sslMode),
        Overwrite: true,
      }),
    );
    try {
      await ssm.send(
        new PutParameterCommand({
          Name: parameterName(props.SsmPrefix, ADMIN_TOKEN_PARAMETER),
          Description: 'MiniMCP bootstrap admin token (written once by the deploy step)',
          Type: 'SecureString',
          Value: `mma_${randomBytes(32).toString('base64url')}`,
          Overwrite: false,
        }),
      );
      logger.info({ parameter: ADMIN_TOKEN_PARAMETER }, 'generated the bootstrap admin token');
    } catch (error) {
      // Kept as it is: an operator may have replaced it, and clients hold it.
      if (!(error instanceof ParameterAlreadyExists)) throw error;
    }
  }

  async function unpublish(prefix: string): Promise<void> {
    for (const name of [DATABASE_URL_PARAMETER, ADMIN_TOKEN_PARAMETER]) {
      try {
        await ssm.send(new DeleteParameterCommand({ Name: parameterName(prefix, name) }));
      } catch (error) {
        // Already gone (a failed create rolled back before writing it): nothing to undo.
        if (!(error instanceof ParameterNotFound)) throw error;
      }
    }
  }

  return async function deployStep(rawEvent: unknown): Promise<DeployStepResult> {
    const event = DeployStepEvent.parse(rawEvent);
    const props = event.ResourceProperties;
    // One physical id per prefix: an update never looks like a replacement,
    // so CloudFormation never sends a Delete for the parameters still in use.
    const physicalId = `minimcp-database-step:${props.SsmPrefix}`;

    if (event.RequestType === 'Delete') {
      // The database is left alone: its removal policy decides (snapshot).
      if (event.PhysicalResourceId === physicalId) await unpublish(props.SsmPrefix);
      return { PhysicalResourceId: event.PhysicalResourceId, Data: { AppliedMigrations: '' } };
    }

    const [master, app, agent] = await Promise.all([
      readSecret(props.MasterSecretArn),
      readSecret(props.AppSecretArn),
      readSecret(props.AgentSecretArn),
    ]);
    const masterUrl = databaseUrl(master, master.host, master.port, options.sslMode);
    const applied = await migrate({
      databaseUrl: masterUrl,
      direction: 'up',
      dir: options.migrationsDir,
      log: (message) => logger.info({ step: 'migrate' }, message),
    });
    const names = applied.map((migration) => migration.name);
    logger.info({ applied: names }, names.length ? 'migrations applied' : 'schema already current');
    await enableLogins(masterUrl, [app, agent]);
    await publish(props, app);
    return { PhysicalResourceId: physicalId, Data: { AppliedMigrations: names.join(',') } };
  };
}

let step: ((event: unknown) => Promise<DeployStepResult>) | undefined;

/** Lambda entry: the SDK clients and logger live as long as the container. */
export async function handler(event: unknown): Promise<DeployStepResult> {
  step ??= createDeployStep({
    secrets: new SecretsManagerClient({}),
    ssm: new SSMClient({}),
    // Copied beside the bundle (infra/constructs/migration.ts); dist/migrations after a build.
    migrationsDir: fileURLToPath(new URL('../migrations/', import.meta.url)),
    sslMode: 'require',
    logger: createLogger({ name: 'minimcp-deploy-step' }),
  });
  return step(event);
}
