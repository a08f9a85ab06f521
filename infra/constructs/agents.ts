// The host agents: an Auto Scaling group of Amazon Linux 2023 nodes (IMDSv2
// only, encrypted root volume) whose user data installs Node and the agent
// bundle (a CDK asset, built by infra/agent-bundle/build.ts) and runs it under
// systemd. The instance role can read the node's two secrets, decrypt
// envelope data keys under their encryption context, ship its log, and
// nothing else (plus Session Manager).
import path from 'node:path';
import { AssetHashType, DockerImage, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { buildAgentBundle } from '../agent-bundle/build.js';
import { metricsNamespace } from './maintenance.js';
import type { Keys } from './keys.js';
import type { Network } from './network.js';
import { REPO_ROOT } from './paths.js';

/** The agent's Prometheus listener on each node (MINIMCP_METRICS_LISTEN's default port). */
export const AGENT_METRICS_PORT = 9464;

export interface AgentsProps {
  network: Network;
  keys: Keys;
  databaseSecret: secretsmanager.ISecret;
  tlsSecret: secretsmanager.ISecret;
  /** Scaling events go here (the operations topic). */
  notifications: sns.ITopic;
  instanceType: string;
  minCapacity: number;
  maxCapacity: number;
  desiredCapacity?: number;
  volumeGiB: number;
  grpcPort: number;
  portRangeStart: number;
  portRangeEnd: number;
  /** MINIMCP_CHILD_UIDS: each MCP server as an OS user of its own (install.sh adds the drop-in). */
  childUids?: string;
  /** Clients reach nodes at their public IPv4 (true) or private one. */
  advertisePublic: boolean;
  /** Part of the user data: a new mTLS generation rolls the nodes onto the new certificates. */
  tlsGeneration: number;
  logRetention: logs.RetentionDays;
}

export class Agents extends Construct {
  readonly group: autoscaling.AutoScalingGroup;
  readonly role: iam.Role;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly logGroup: logs.LogGroup;
  /** The CloudWatch agent's embedded-metric logs of the scraped agent metrics. */
  readonly metricsLogGroup: logs.LogGroup;
  /** The CloudWatch namespace of the agent metrics (infra/agent-bundle/cloudwatch-agent.json). */
  readonly metricsNamespace: string;
  readonly bundle: s3assets.Asset;

  constructor(scope: Construct, id: string, props: AgentsProps) {
    super(scope, id);
    const region = Stack.of(this).region;
    const instanceType = new ec2.InstanceType(props.instanceType);

    this.bundle = new s3assets.Asset(this, 'Bundle', {
      // Only the input of the hash when bundling is skipped (unit tests); the
      // real content is the bundle, hashed after it is built.
      path: path.join(REPO_ROOT, 'infra/agent-bundle'),
      assetHashType: AssetHashType.OUTPUT,
      bundling: {
        // Never used: local bundling always succeeds or throws.
        image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:22-alpine'),
        local: {
          tryBundle(outputDir: string) {
            buildAgentBundle(outputDir);
            return true;
          },
        },
      },
    });

    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention });
    this.metricsLogGroup = new logs.LogGroup(this, 'MetricLogs', { retention: props.logRetention });
    this.metricsNamespace = metricsNamespace(Stack.of(this).stackName);

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'MiniMCP host agent',
      // Session Manager instead of SSH: no key pair, no open port 22.
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DownloadAgentBundle',
        actions: ['s3:GetObject'],
        resources: [this.bundle.bucket.arnForObjects(this.bundle.s3ObjectKey)],
      }),
    );
    props.databaseSecret.grantRead(this.role);
    props.tlsSecret.grantRead(this.role);
    props.keys.grantDecryptWithContext(this.role);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ShipAgentLog',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        // The log groups' ARN attributes end in `:*`, which covers their streams.
        resources: [this.logGroup.logGroupArn, this.metricsLogGroup.logGroupArn],
      }),
    );
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      reason:
        'Operators reach nodes with Session Manager instead of SSH; the AWS-managed policy is the minimal set the SSM agent needs.',
    });

    const userData = ec2.UserData.forLinux();
    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType,
      machineImage: ec2.MachineImage.latestAmazonLinux2023({
        cpuType:
          instanceType.architecture === ec2.InstanceArchitecture.ARM_64
            ? ec2.AmazonLinuxCpuType.ARM_64
            : ec2.AmazonLinuxCpuType.X86_64,
      }),
      role: this.role,
      securityGroup: props.network.agentSecurityGroup,
      ...(props.advertisePublic ? { associatePublicIpAddress: true } : {}),
      userData,
      requireImdsv2: true,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      // The agent calls IMDS from the host itself; one hop keeps it off containers.
      httpPutResponseHopLimit: 1,
      instanceMetadataTags: false,
      detailedMonitoring: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(props.volumeGiB, {
            encrypted: true,
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: props.network.vpc,
      vpcSubnets: props.network.agentSubnets,
      launchTemplate: this.launchTemplate,
      minCapacity: props.minCapacity,
      maxCapacity: props.maxCapacity,
      ...(props.desiredCapacity === undefined ? {} : { desiredCapacity: props.desiredCapacity }),
      healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(5) }),
      // A new launch template (code, settings, certificates) replaces nodes one
      // at a time, each reporting healthy before the next goes.
      signals: autoscaling.Signals.waitForMinCapacity({ timeout: Duration.minutes(15) }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: Math.max(0, props.minCapacity - 1),
        pauseTime: Duration.minutes(15),
      }),
      notifications: [{ topic: props.notifications, scalingEvents: autoscaling.ScalingEvents.ALL }],
      cooldown: Duration.minutes(5),
    });

    const settings: Record<string, string> = {
      AWS_REGION: region,
      KMS_KEY_ID: props.keys.envelopeKey.keyArn,
      MINIMCP_DATABASE_SECRET_ARN: props.databaseSecret.secretArn,
      MINIMCP_TLS_SECRET_ARN: props.tlsSecret.secretArn,
      MINIMCP_GRPC_PORT: String(props.grpcPort),
      MINIMCP_GRPC_LISTEN: `0.0.0.0:${props.grpcPort}`,
      MINIMCP_BIND_HOST: '0.0.0.0',
      MINIMCP_PORT_RANGE: `${props.portRangeStart}-${props.portRangeEnd}`,
      MINIMCP_ADVERTISE: props.advertisePublic ? 'public' : 'private',
      MINIMCP_LOG_GROUP: this.logGroup.logGroupName,
      // Loopback only: the node's CloudWatch agent scrapes it (install.sh).
      MINIMCP_METRICS_LISTEN: `127.0.0.1:${AGENT_METRICS_PORT}`,
      MINIMCP_METRICS_LOG_GROUP: this.metricsLogGroup.logGroupName,
      MINIMCP_METRICS_NAMESPACE: this.metricsNamespace,
      MINIMCP_TLS_GENERATION: String(props.tlsGeneration),
      NODE_EXTRA_CA_CERTS: '/etc/minimcp/rds-ca.pem',
      ...(props.childUids === undefined ? {} : { MINIMCP_CHILD_UIDS: props.childUids }),
    };
    userData.addCommands(
      'set -euo pipefail',
      // cfn-signal (the exit trap) and unzip first, so any later failure is reported.
      'dnf install -y aws-cfn-bootstrap unzip',
      'install -d -m 0755 /etc/minimcp',
      "cat > /etc/minimcp/agent.env <<'MINIMCP_ENV'",
      ...Object.entries(settings).map(([key, value]) => `${key}=${value}`),
      'MINIMCP_ENV',
    );
    const bundleZip = userData.addS3DownloadCommand({
      bucket: this.bundle.bucket,
      bucketKey: this.bundle.s3ObjectKey,
      localFile: '/tmp/minimcp-agent.zip',
      region,
    });
    userData.addCommands(
      'rm -rf /opt/minimcp.next && mkdir -p /opt/minimcp.next',
      `unzip -q ${bundleZip} -d /opt/minimcp.next`,
      'rm -rf /opt/minimcp && mv /opt/minimcp.next /opt/minimcp',
      '/opt/minimcp/install.sh',
    );
    userData.addSignalOnExitCommand(this.group);
  }
}
