// The whole MiniMCP deployment as one stack, composed of one construct per
// part: network, keys, data, config, the deploy-time steps (mTLS, database),
// api, maintenance, agents, operations. One stack keeps the security-group
// rules between parts free of cross-stack exports and makes teardown one command.
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { Agents } from '../constructs/agents.js';
import { Api } from '../constructs/api.js';
import { Config } from '../constructs/config.js';
import { Data } from '../constructs/data.js';
import { Keys } from '../constructs/keys.js';
import { Maintenance } from '../constructs/maintenance.js';
import { Migration } from '../constructs/migration.js';
import { MutualTls } from '../constructs/mutual-tls.js';
import { Network } from '../constructs/network.js';
import { Operations } from '../constructs/operations.js';
import type { DeploySettings } from './settings.js';

export interface MiniMcpStackProps extends StackProps {
  settings: DeploySettings;
}

/** Database connections per Lambda container: RDS Proxy multiplexes them. */
const LAMBDA_POOL_SIZE = 2;

export class MiniMcpStack extends Stack {
  readonly network: Network;
  readonly keys: Keys;
  readonly data: Data;
  readonly config: Config;
  readonly mutualTls: MutualTls;
  readonly migration: Migration;
  readonly api: Api;
  readonly maintenance: Maintenance;
  readonly agents: Agents;
  readonly operations: Operations;

  constructor(scope: Construct, id: string, props: MiniMcpStackProps) {
    super(scope, id, props);
    const s = props.settings;
    const logRetention = s.logRetentionDays as logs.RetentionDays;

    this.operations = new Operations(this, 'Operations', {
      ...(s.alarmEmail ? { alarmEmail: s.alarmEmail } : {}),
    });
    this.network = new Network(this, 'Network', {
      cidr: s.vpcCidr,
      natGateways: s.natGateways,
      agentsPublic: s.agentsPublic,
      clientCidrs: s.clientCidrs,
      grpcPort: s.grpcPort,
      portRangeStart: s.portRangeStart,
      portRangeEnd: s.portRangeEnd,
      logRetention,
    });
    this.keys = new Keys(this, 'Keys', { aliasName: `alias/minimcp/${this.stackName}` });
    this.data = new Data(this, 'Data', {
      network: this.network,
      postgresVersion: s.postgresVersion,
      instanceClass: s.dbInstanceClass,
      allocatedStorageGiB: s.dbAllocatedStorageGiB,
      maxAllocatedStorageGiB: s.dbMaxAllocatedStorageGiB,
      multiAz: s.dbMultiAz,
      backupRetentionDays: s.dbBackupRetentionDays,
      deletionProtection: s.deletionProtection,
      rotationDays: s.credentialRotationDays,
      logRetention,
    });

    this.config = new Config(this, 'Config', { prefix: s.ssmPrefix });
    this.config.addSetting('LOG_LEVEL', 'info', 'Log level of the MiniMCP Lambdas');
    this.config.addSetting(
      'KMS_KEY_ID',
      this.keys.envelopeKey.keyArn,
      'KMS key of the API-key envelopes (selects the KMS provider)',
    );
    this.config.addSetting(
      'MINIMCP_DB_POOL_SIZE',
      String(LAMBDA_POOL_SIZE),
      'Database connections per Lambda container (RDS Proxy multiplexes them)',
    );

    this.mutualTls = new MutualTls(this, 'MutualTls', {
      network: this.network,
      config: this.config,
      generation: s.tlsGeneration,
      logRetention,
    });
    this.migration = new Migration(this, 'DatabaseStep', {
      network: this.network,
      data: this.data,
      config: this.config,
      logRetention,
      nonce: s.deployStepNonce ?? '',
    });

    this.api = new Api(this, 'Api', {
      network: this.network,
      config: this.config,
      keys: this.keys,
      throttleRate: s.apiThrottleRate,
      throttleBurst: s.apiThrottleBurst,
      corsOrigins: s.corsOrigins,
      logRetention,
      ...(s.mailFrom ? { mailFrom: s.mailFrom } : {}),
    });
    this.config.addSetting(
      'MINIMCP_PUBLIC_API_URL',
      this.api.url,
      'Public base URL of the API (advertised in the OpenAPI document)',
    );

    this.maintenance = new Maintenance(this, 'Maintenance', {
      network: this.network,
      config: this.config,
      schedule: s.maintenanceSchedule,
      logRetention,
    });

    this.agents = new Agents(this, 'Agents', {
      network: this.network,
      keys: this.keys,
      databaseSecret: this.data.agentSecret,
      tlsSecret: this.mutualTls.agentSecret,
      notifications: this.operations.topic,
      instanceType: s.agentInstanceType,
      minCapacity: s.agentMinCapacity,
      maxCapacity: s.agentMaxCapacity,
      ...(s.agentDesiredCapacity === undefined ? {} : { desiredCapacity: s.agentDesiredCapacity }),
      volumeGiB: s.agentVolumeGiB,
      grpcPort: s.grpcPort,
      portRangeStart: s.portRangeStart,
      portRangeEnd: s.portRangeEnd,
      ...(s.agentChildUids === undefined ? {} : { childUids: s.agentChildUids }),
      advertisePublic: s.agentsPublic,
      tlsGeneration: s.tlsGeneration,
      logRetention,
    });

    // Nothing serves before the schema is current and the certificates exist:
    // the function versions, the API stage and the agents wait for both steps.
    this.migration.runsBefore(
      this.api.handler.function,
      this.api.stage,
      this.maintenance.handler.function,
      this.maintenance.rule,
      this.agents.group,
    );
    for (const target of [
      this.api.handler.function,
      this.maintenance.handler.function,
      this.agents.group,
    ])
      target.node.addDependency(this.mutualTls.resource);

    this.operations.monitor({
      api: this.api,
      maintenance: this.maintenance,
      database: this.data.instance,
      agents: this.agents,
      agentsExpected: s.agentMinCapacity > 0,
    });

    new CfnOutput(this, 'ApiUrl', {
      description: 'Base URL of the MiniMCP API',
      value: this.api.url,
    });
    new CfnOutput(this, 'AdminTokenCommand', {
      description: 'Prints the bootstrap admin token (written once by the deploy step)',
      value: `aws ssm get-parameter --region ${this.region} --name ${s.ssmPrefix}/MINIMCP_ADMIN_TOKEN --with-decryption --query Parameter.Value --output text`,
    });
    new CfnOutput(this, 'SsmPrefix', {
      description: 'SSM path of the configuration parameters',
      value: s.ssmPrefix,
    });
    new CfnOutput(this, 'AgentGroupName', {
      description: 'Auto Scaling group of the agent nodes (set-desired-capacity adds nodes)',
      value: this.agents.group.autoScalingGroupName,
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'SNS topic of the alarms and scaling events',
      value: this.operations.topic.topicArn,
    });
  }
}
