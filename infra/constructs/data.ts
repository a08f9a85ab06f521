// The database: RDS for PostgreSQL in the isolated subnets, encrypted, backed
// up, master credentials in Secrets Manager with rotation; one login secret per
// application role (minimcp_app for the Lambdas, minimcp_agent for the agents)
// and an RDS Proxy in front of the Lambdas.
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { Network } from './network.js';
import { POSTGRES_PORT } from './network.js';

export interface DataProps {
  network: Network;
  postgresVersion: 16 | 17 | 18;
  instanceClass: string;
  allocatedStorageGiB: number;
  maxAllocatedStorageGiB: number;
  multiAz: boolean;
  backupRetentionDays: number;
  deletionProtection: boolean;
  rotationDays: number;
  logRetention: logs.RetentionDays;
}

export const DATABASE_NAME = 'minimcp';
export const MASTER_USERNAME = 'minimcp_admin';
/** Roles created by migrations/004_row-level-security.sql; the migration step gives them LOGIN. */
export const APP_ROLE = 'minimcp_app';
export const AGENT_ROLE = 'minimcp_agent';

const ENGINE_VERSIONS = {
  16: rds.PostgresEngineVersion.VER_16,
  17: rds.PostgresEngineVersion.VER_17,
  18: rds.PostgresEngineVersion.VER_18,
} as const;

// Characters that would need quoting in a URL or a shell are left out of
// generated passwords: the agents' start script builds DATABASE_URL from them.
const EXCLUDED_PASSWORD_CHARACTERS = ' %+~`#$&*()|[]{}:;<>?!\'/@"\\,=^';

export class Data extends Construct {
  readonly instance: rds.DatabaseInstance;
  readonly proxy: rds.DatabaseProxy;
  /** The master login (migrations only), with the instance's host and port attached. */
  readonly masterSecret: secretsmanager.ISecret;
  /** minimcp_app's login, with the instance's host and port attached. */
  readonly appSecret: secretsmanager.ISecret;
  /** minimcp_agent's login, with the instance's host and port attached. */
  readonly agentSecret: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: DataProps) {
    super(scope, id);
    const { network } = props;
    const engine = rds.DatabaseInstanceEngine.postgres({
      version: ENGINE_VERSIONS[props.postgresVersion],
    });

    const masterSecret = new rds.DatabaseSecret(this, 'MasterSecret', {
      username: MASTER_USERNAME,
      dbname: DATABASE_NAME,
      excludeCharacters: EXCLUDED_PASSWORD_CHARACTERS,
    });

    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine,
      description: 'MiniMCP PostgreSQL',
      parameters: {
        // Only TLS clients: every connection string says sslmode=require.
        'rds.force_ssl': '1',
        // Statements are not logged: ALTER ROLE ... PASSWORD would end up in the log.
        log_statement: 'none',
        log_min_duration_statement: '1000',
      },
    });

    // A fixed identifier names the log group RDS exports to, so the stack owns
    // it (with its retention) instead of a log-retention helper Lambda.
    const instanceIdentifier = `${Stack.of(this).stackName}-postgres`.toLowerCase();
    const postgresLogs = new logs.LogGroup(this, 'PostgresLogs', {
      logGroupName: `/aws/rds/instance/${instanceIdentifier}/postgresql`,
      retention: props.logRetention,
      // A fixed name: a retained group would block deploying the stack again.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.instance = new rds.DatabaseInstance(this, 'Postgres', {
      instanceIdentifier,
      engine,
      instanceType: new ec2.InstanceType(props.instanceClass),
      vpc: network.vpc,
      vpcSubnets: network.isolatedSubnets,
      securityGroups: [network.databaseSecurityGroup],
      credentials: rds.Credentials.fromSecret(masterSecret),
      databaseName: DATABASE_NAME,
      port: POSTGRES_PORT,
      parameterGroup,
      multiAz: props.multiAz,
      allocatedStorage: props.allocatedStorageGiB,
      maxAllocatedStorage: props.maxAllocatedStorageGiB,
      storageType: rds.StorageType.GP3,
      storageEncrypted: true,
      backupRetention: Duration.days(props.backupRetentionDays),
      copyTagsToSnapshot: true,
      deletionProtection: props.deletionProtection,
      removalPolicy: RemovalPolicy.SNAPSHOT,
      autoMinorVersionUpgrade: true,
      cloudwatchLogsExports: ['postgresql'],
      publiclyAccessible: false,
    });

    this.instance.node.addDependency(postgresLogs);
    // The attached form: readers wait until host and port are in the secret.
    this.masterSecret = this.instance.secret!;

    this.instance.addRotationSingleUser({
      automaticallyAfter: Duration.days(props.rotationDays),
      excludeCharacters: EXCLUDED_PASSWORD_CHARACTERS,
      vpcSubnets: network.isolatedSubnets,
      securityGroup: network.rotationSecurityGroup,
      endpoint: network.secretsManagerEndpoint,
    });

    const roleSecret = (name: string, username: string): secretsmanager.ISecret => {
      const secret = new rds.DatabaseSecret(this, name, {
        username,
        dbname: DATABASE_NAME,
        excludeCharacters: EXCLUDED_PASSWORD_CHARACTERS,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          "Application-role password: the deploy-time migration step sets it in PostgreSQL and publishes the Lambdas' DATABASE_URL from it, so it changes with a deploy (docs/deploy.md, Credentials), not by an in-place rotation that cached configuration would not follow. The master credentials rotate automatically.",
      });
      return secret.attach(this.instance);
    };
    this.appSecret = roleSecret('AppSecret', APP_ROLE);
    this.agentSecret = roleSecret('AgentSecret', AGENT_ROLE);

    this.proxy = this.instance.addProxy('Proxy', {
      vpc: network.vpc,
      vpcSubnets: network.isolatedSubnets,
      securityGroups: [network.proxySecurityGroup],
      secrets: [this.appSecret],
      requireTLS: true,
      iamAuth: false,
      borrowTimeout: Duration.seconds(30),
      idleClientTimeout: Duration.minutes(30),
      maxConnectionsPercent: 80,
      debugLogging: false,
    });

    Validations.of(this.instance).acknowledge(
      {
        id: 'AwsSolutions-RDS11',
        reason:
          'The default PostgreSQL port: the database is only reachable from three security groups in isolated subnets, a different port adds no protection.',
      },
      {
        id: 'AwsSolutions-RDS6',
        reason:
          'Password authentication over TLS (rds.force_ssl) with Secrets Manager credentials; the Lambdas go through RDS Proxy. IAM database authentication would need token signing in every client.',
      },
    );
    if (!props.multiAz)
      Validations.of(this.instance).acknowledge({
        id: 'AwsSolutions-RDS3',
        reason:
          'Single-AZ by default to keep a first deployment cheap; enable with -c dbMultiAz=true.',
      });
    if (!props.deletionProtection)
      Validations.of(this.instance).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason:
          'Deletion protection turned off on purpose (-c deletionProtection=false) for a teardown.',
      });
  }
}
