// The CDK app with cdk.json's settings (public agents, clients from anywhere)
// plus CORS and an alarm address: the properties each part must have.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { CfnElement } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { Match } from 'aws-cdk-lib/assertions';
import { REPO_ROOT } from '../../infra/constructs/paths.js';
import { logicalId, synthStack, type SynthesizedStack } from './synth-stack.js';

type Json = Record<string, unknown>;
type Resources = Record<string, { Type: string; Properties?: Json; DependsOn?: string[] }>;

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Json;
}

/** Every IAM policy statement of the template with the roles it is attached to. */
function policyStatements(resources: Resources): { roles: string[]; statement: Statement }[] {
  return Object.values(resources)
    .filter((resource) => resource.Type === 'AWS::IAM::Policy')
    .flatMap((policy) => {
      const props = policy.Properties as {
        Roles?: { Ref: string }[];
        PolicyDocument: { Statement: Statement[] };
      };
      const roles = (props.Roles ?? []).map((role) => role.Ref);
      return props.PolicyDocument.Statement.map((statement) => ({ roles, statement }));
    });
}

interface IngressRule {
  groupId: string;
  /** A number, or the instance's Endpoint.Port attribute. */
  fromPort?: unknown;
  toPort?: unknown;
  cidr?: string;
  sourceGroup?: string;
}

/** Ingress rules, inline or standalone, keyed by the logical id of the group they open. */
function ingressRules(resources: Resources): IngressRule[] {
  const groupOf = (ref: unknown) => (ref as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const rules: IngressRule[] = [];
  for (const [id, resource] of Object.entries(resources)) {
    const props = resource.Properties ?? {};
    const toRule = (groupId: string, rule: Json): IngressRule => ({
      groupId,
      ...(rule.FromPort === undefined ? {} : { fromPort: rule.FromPort }),
      ...(rule.ToPort === undefined ? {} : { toPort: rule.ToPort }),
      ...(rule.CidrIp === undefined ? {} : { cidr: rule.CidrIp as string }),
      ...(rule.SourceSecurityGroupId === undefined
        ? {}
        : { sourceGroup: groupOf(rule.SourceSecurityGroupId) }),
    });
    if (resource.Type === 'AWS::EC2::SecurityGroup')
      for (const rule of asArray(props.SecurityGroupIngress as Json[] | undefined))
        rules.push(toRule(id, rule));
    if (resource.Type === 'AWS::EC2::SecurityGroupIngress')
      rules.push(toRule(groupOf(props.GroupId), props));
  }
  return rules;
}

describe('the MiniMCP stack with the cdk.json settings', () => {
  let s: SynthesizedStack;
  let resources: Resources;
  /** Logical id of a construct's main resource (or of a CloudFormation element itself). */
  const id = (construct: IConstruct) =>
    logicalId(s.stack, construct.node.defaultChild ?? construct);

  beforeAll(() => {
    s = synthStack({
      corsOrigins: 'https://console.example.com',
      alarmEmail: 'ops@example.com',
    });
    resources = s.template.toJSON().Resources as Resources;
  });

  describe('cdk-nag', () => {
    it('passes the AWS Solutions checks, every exception acknowledged with a reason', () => {
      expect(s.nagFindings).toEqual([]);
    });
  });

  describe('network', () => {
    it('spans two availability zones with public and isolated subnets, and no NAT gateway', () => {
      s.template.resourceCountIs('AWS::EC2::Subnet', 4);
      s.template.resourceCountIs('AWS::EC2::NatGateway', 0);
      s.template.resourcePropertiesCountIs('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true }, 0);
    });

    it('reaches KMS, SSM and Secrets Manager through private interface endpoints', () => {
      const services = Object.values(resources)
        .filter(
          (r) =>
            r.Type === 'AWS::EC2::VPCEndpoint' && r.Properties?.VpcEndpointType === 'Interface',
        )
        .map((r) => {
          expect(r.Properties?.PrivateDnsEnabled).toBe(true);
          return JSON.stringify(r.Properties?.ServiceName).match(/\.([a-z]+)"\]\]\}$/)?.[1];
        });
      expect(services).toEqual(expect.arrayContaining(['kms', 'ssm', 'secretsmanager']));
    });

    it('lets only the control-plane Lambdas reach the agents’ gRPC port', () => {
      const agentSg = id(s.stack.network.agentSecurityGroup);
      const grpc = ingressRules(resources).filter(
        (rule) => rule.groupId === agentSg && rule.fromPort === 50051,
      );
      expect(grpc).toEqual([
        {
          groupId: agentSg,
          fromPort: 50051,
          toPort: 50051,
          sourceGroup: id(s.stack.network.lambdaSecurityGroup),
        },
      ]);
    });

    it('opens only the instance port range to the client CIDRs on the agents', () => {
      const agentSg = id(s.stack.network.agentSecurityGroup);
      const fromCidrs = ingressRules(resources).filter(
        (rule) => rule.groupId === agentSg && rule.cidr !== undefined,
      );
      expect(fromCidrs).toEqual([
        { groupId: agentSg, fromPort: 3001, toPort: 3100, cidr: '0.0.0.0/0' },
      ]);
    });

    it('lets only the proxy, the agents, the migration step and rotation reach PostgreSQL', () => {
      const databaseSg = id(s.stack.network.databaseSecurityGroup);
      const rules = ingressRules(resources).filter((rule) => rule.groupId === databaseSg);
      const n = s.stack.network;
      expect(rules.map((rule) => rule.sourceGroup).sort()).toEqual(
        [
          n.proxySecurityGroup,
          n.agentSecurityGroup,
          n.migrationSecurityGroup,
          n.rotationSecurityGroup,
        ]
          .map((group) => id(group))
          .sort(),
      );
      // Some rules name the port through the instance's endpoint attribute.
      const dbPort = { 'Fn::GetAtt': [id(s.stack.data.instance), 'Endpoint.Port'] };
      for (const rule of rules) expect([5432, dbPort]).toContainEqual(rule.fromPort);
    });

    it('declares no ingress rule twice (EC2 would reject the deployment)', () => {
      const dbPort = JSON.stringify({ 'Fn::GetAtt': [id(s.stack.data.instance), 'Endpoint.Port'] });
      const keys = ingressRules(resources).map((rule) =>
        JSON.stringify({
          ...rule,
          fromPort: JSON.stringify(rule.fromPort) === dbPort ? 5432 : rule.fromPort,
          toPort: JSON.stringify(rule.toPort) === dbPort ? 5432 : rule.toPort,
        }),
      );
      expect(new Set(keys).size).toBe(keys.length);
    });
  });

  describe('data', () => {
    it('runs an encrypted, backed-up, private PostgreSQL of a current major version', () => {
      s.template.hasResourceProperties('AWS::RDS::DBInstance', {
        Engine: 'postgres',
        EngineVersion: '17',
        StorageEncrypted: true,
        BackupRetentionPeriod: 7,
        DeletionProtection: true,
        PubliclyAccessible: false,
        DBName: 'minimcp',
      });
    });

    it('accepts only TLS connections', () => {
      s.template.hasResourceProperties('AWS::RDS::DBParameterGroup', {
        Parameters: Match.objectLike({ 'rds.force_ssl': '1' }),
      });
      s.template.hasResourceProperties('AWS::RDS::DBProxy', {
        RequireTLS: true,
        EngineFamily: 'POSTGRESQL',
      });
    });

    it('rotates the generated master credentials', () => {
      s.template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        SecretId: { Ref: Match.stringLikeRegexp('^DataMasterSecretAttachment') },
        RotationRules: { ScheduleExpression: 'rate(30 days)' },
      });
    });

    it('puts the RDS Proxy in front of the Lambdas with the minimcp_app login', () => {
      const proxy = Object.values(resources).find((r) => r.Type === 'AWS::RDS::DBProxy')!;
      const auth = proxy.Properties?.Auth as { SecretArn: { Ref: string } }[];
      expect(auth.map((a) => a.SecretArn.Ref)).toEqual([
        expect.stringMatching(/^DataAppSecretAttachment/),
      ]);
      s.template.hasResourceProperties('AWS::SecretsManager::Secret', {
        GenerateSecretString: Match.objectLike({
          SecretStringTemplate: '{"username":"minimcp_app","dbname":"minimcp"}',
        }),
      });
    });
  });

  describe('keys', () => {
    const keyRef = () => id(s.stack.keys.envelopeKey);
    const onKey = (statement: Statement) =>
      JSON.stringify(statement.Resource ?? '').includes(`"${keyRef()}"`);
    const contextConditions = {
      'ForAllValues:StringEquals': {
        'kms:EncryptionContextKeys': ['minimcp:user_id', 'minimcp:mcp_type'],
      },
      Null: {
        'kms:EncryptionContext:minimcp:user_id': 'false',
        'kms:EncryptionContext:minimcp:mcp_type': 'false',
      },
    };

    it('is a customer-managed key with rotation', () => {
      s.template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    });

    it('denies decrypting or generating without the encryption context, to everyone', () => {
      const key = resources[keyRef()]!.Properties as { KeyPolicy: { Statement: Statement[] } };
      const denies = key.KeyPolicy.Statement.filter((statement) => statement.Effect === 'Deny');
      expect(denies.map((d) => d.Condition)).toEqual([
        { Null: { 'kms:EncryptionContext:minimcp:user_id': 'true' } },
        { Null: { 'kms:EncryptionContext:minimcp:mcp_type': 'true' } },
      ]);
      for (const deny of denies)
        expect(deny.Action).toEqual(expect.arrayContaining(['kms:Decrypt', 'kms:GenerateDataKey']));
    });

    it('lets the API role generate data keys, only under the encryption context', () => {
      const apiRole = id(s.stack.api.handler.function.role!.node.defaultChild as CfnElement);
      const grants = policyStatements(resources).filter(
        ({ roles, statement }) => roles.includes(apiRole) && onKey(statement),
      );
      expect(grants.map((g) => g.statement)).toEqual([
        expect.objectContaining({
          Effect: 'Allow',
          Action: 'kms:GenerateDataKey',
          Condition: contextConditions,
        }),
      ]);
    });

    it('lets only the agents’ role decrypt, and only under the encryption context', () => {
      const agentRole = id(s.stack.agents.role);
      const decrypts = policyStatements(resources).filter(
        ({ statement }) =>
          statement.Effect === 'Allow' &&
          asArray(statement.Action).some(
            (action) => action === 'kms:Decrypt' || action === 'kms:*',
          ),
      );
      const onEnvelopeKey = decrypts.filter(({ statement }) => onKey(statement));
      expect(onEnvelopeKey).toEqual([
        {
          roles: [agentRole],
          statement: expect.objectContaining({
            Action: 'kms:Decrypt',
            Condition: contextConditions,
          }),
        },
      ]);
      // No other Decrypt anywhere could reach the key through a wildcard resource.
      for (const { statement } of decrypts) expect(statement.Resource).not.toBe('*');
    });
  });

  describe('config', () => {
    it('keeps the plain settings under one SSM prefix, and no secret among them', () => {
      const parameters = Object.values(resources).filter((r) => r.Type === 'AWS::SSM::Parameter');
      expect(parameters.length).toBeGreaterThan(0);
      for (const parameter of parameters) {
        expect(parameter.Properties?.Type).toBe('String');
        expect(parameter.Properties?.Name).toMatch(/^\/minimcp\/MiniMcp\/[A-Z_]+$/);
        expect(parameter.Properties?.Name).not.toMatch(/DATABASE_URL|TOKEN|_KEY$|PASSWORD/);
      }
    });

    it('puts no secret in any Lambda environment', () => {
      const functions = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function');
      for (const fn of functions) {
        const variables = ((fn.Properties?.Environment as Json | undefined)?.Variables ??
          {}) as Json;
        for (const [name, value] of Object.entries(variables)) {
          expect(name).not.toMatch(/DATABASE_URL|TOKEN|PASSWORD|SECRET|_KEY$|TLS_/);
          const text = JSON.stringify(value);
          expect(text).not.toMatch(/postgres(ql)?:\/\/|resolve:secretsmanager|resolve:ssm-secure/);
        }
      }
    });
  });

  describe('api', () => {
    it('runs the handler on Node 22, ARM64, in the isolated subnets, configured from SSM', () => {
      s.template.hasResourceProperties('AWS::Lambda::Function', {
        Description: 'MiniMCP HTTP API',
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Environment: { Variables: Match.objectLike({ MINIMCP_SSM_PREFIX: '/minimcp/MiniMcp' }) },
        VpcConfig: Match.anyValue(),
      });
    });

    it('throttles the $default stage and writes JSON access logs', () => {
      s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
        AccessLogSettings: {
          DestinationArn: { 'Fn::GetAtt': [id(s.stack.api.accessLogs), 'Arn'] },
          Format: Match.serializedJson(
            Match.objectLike({ requestId: '$context.requestId', status: '$context.status' }),
          ),
        },
      });
    });

    it('answers CORS preflights for the configured origins only, without credentials', () => {
      s.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
        CorsConfiguration: Match.objectLike({
          AllowOrigins: ['https://console.example.com'],
          AllowCredentials: false,
        }),
      });
    });
  });

  describe('deploy-time steps', () => {
    it('migrates the database before the API, the maintenance job and the agents change', () => {
      const step = id(s.stack.migration.resource);
      for (const target of [
        s.stack.api.handler.function,
        s.stack.api.stage,
        s.stack.maintenance.handler.function,
        s.stack.maintenance.rule,
        s.stack.agents.group,
      ])
        expect(resources[id(target)]!.DependsOn).toContain(step);
    });

    it('runs the migration once the database and the proxy exist, with their secrets by ARN only', () => {
      const step = resources[id(s.stack.migration.resource)]!;
      expect(step.DependsOn).toEqual(
        expect.arrayContaining([id(s.stack.data.instance), id(s.stack.data.proxy)]),
      );
      expect(step.Properties).toEqual(
        expect.objectContaining({
          ProxyEndpoint: { 'Fn::GetAtt': [id(s.stack.data.proxy), 'Endpoint'] },
          MasterSecretArn: { Ref: expect.stringMatching(/^DataMasterSecretAttachment/) },
          SsmPrefix: '/minimcp/MiniMcp',
        }),
      );
    });

    it('issues the mTLS certificates before the control plane and the agents start', () => {
      const tls = id(s.stack.mutualTls.resource);
      for (const target of [s.stack.api.handler.function, s.stack.agents.group])
        expect(resources[id(target)]!.DependsOn).toContain(tls);
    });
  });

  describe('maintenance', () => {
    it('runs on its EventBridge schedule without retries', () => {
      s.template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(1 minute)',
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [id(s.stack.maintenance.handler.function), 'Arn'] },
            RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 0 }),
          }),
        ],
      });
    });

    it('publishes the heartbeat metric in the namespace the alarm watches', () => {
      s.template.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp('^MiniMCP maintenance'),
        Environment: {
          Variables: Match.objectLike({ MINIMCP_METRICS_NAMESPACE: 'MiniMCP/MiniMcp' }),
        },
      });
    });
  });

  describe('agents', () => {
    it('requires IMDSv2 and encrypts the root volume', () => {
      s.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
        LaunchTemplateData: Match.objectLike({
          MetadataOptions: Match.objectLike({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 }),
          BlockDeviceMappings: [
            Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true, VolumeType: 'gp3' }) }),
          ],
          ImageId: { Ref: Match.stringLikeRegexp('al2023amikernel.*arm64') },
          NetworkInterfaces: [Match.objectLike({ AssociatePublicIpAddress: true })],
        }),
      });
    });

    it('installs the agent bundle from its asset and runs it under systemd with restart', () => {
      const template = resources[id(s.stack.agents.launchTemplate)]!.Properties as {
        LaunchTemplateData: { UserData: { 'Fn::Base64': { 'Fn::Join': [string, unknown[]] } } };
      };
      const userData = template.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1]
        .map((part) => (typeof part === 'string' ? part : '<token>'))
        .join('');
      expect(userData).toContain('aws s3 cp');
      expect(userData).toContain('/opt/minimcp/install.sh');
      expect(userData).toContain('/opt/aws/bin/cfn-signal');
      // Settings by reference only: ARNs, never a secret value.
      expect(userData).toMatch(/MINIMCP_DATABASE_SECRET_ARN=<token>/);
      expect(userData).not.toMatch(/password|postgres:\/\//i);

      const bundle = (file: string) =>
        readFileSync(path.join(REPO_ROOT, 'infra/agent-bundle', file), 'utf8');
      expect(bundle('install.sh')).toMatch(/dnf install -y nodejs22 /);
      const unit = bundle('minimcp-agent.service');
      expect(unit).toMatch(/^Restart=always$/m);
      expect(unit).toMatch(/^ExecStart=\/opt\/minimcp\/bin\/node .*\/dist\/agent\/main\.js$/m);
      expect(unit).toMatch(/^User=minimcp$/m);
    });

    it('replaces nodes one at a time, each signalling it is healthy', () => {
      const group = s.template.toJSON().Resources[id(s.stack.agents.group)] as Json;
      expect(group.UpdatePolicy).toEqual(
        expect.objectContaining({
          AutoScalingRollingUpdate: expect.objectContaining({
            MaxBatchSize: 1,
            WaitOnResourceSignals: true,
          }),
        }),
      );
      expect(group.CreationPolicy).toEqual({ ResourceSignal: { Count: 1, Timeout: 'PT15M' } });
    });

    it('gives the instance role its own two secrets and the bundle, and no configuration path', () => {
      const agentRole = id(s.stack.agents.role);
      const statements = policyStatements(resources)
        .filter(({ roles }) => roles.includes(agentRole))
        .map(({ statement }) => statement);
      const secretReads = statements.filter((st) =>
        asArray(st.Action).includes('secretsmanager:GetSecretValue'),
      );
      const readable = secretReads
        .flatMap((st) => asArray(st.Resource))
        .map((resource) => (resource as { Ref: string }).Ref);
      expect(readable.sort()).toEqual(
        [id(s.stack.data.agentSecret), id(s.stack.mutualTls.agentSecret)].sort(),
      );
      expect(
        statements.flatMap((st) => asArray(st.Action)).filter((a) => a.startsWith('ssm:')),
      ).toEqual([]);
    });
  });

  describe('operations', () => {
    it('keeps every log group for the configured retention', () => {
      const groups = Object.values(resources).filter((r) => r.Type === 'AWS::Logs::LogGroup');
      expect(groups.length).toBeGreaterThanOrEqual(6);
      for (const group of groups) expect(group.Properties?.RetentionInDays).toBe(30);
    });

    it('alarms on API 5xx, Lambda errors and throttles, database CPU and connections, and missing heartbeats', () => {
      const alarms = Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
      const metrics = alarms
        .filter((a) => a.Properties?.MetricName !== undefined)
        .map((a) => `${String(a.Properties?.Namespace)}/${String(a.Properties?.MetricName)}`);
      expect(metrics.sort()).toEqual(
        [
          'AWS/ApiGateway/5xx',
          'AWS/Lambda/Errors',
          'AWS/Lambda/Errors',
          'AWS/Lambda/Throttles',
          'AWS/Lambda/Throttles',
          'AWS/RDS/CPUUtilization',
          'AWS/RDS/DatabaseConnections',
          'MiniMCP/MiniMcp/HealthyAgentNodes',
          'MiniMCP/MiniMcp/ApiServerErrors',
          'MiniMCP/MiniMcp/ApiLatency',
          'MiniMCP/MiniMcp/minimcp_mcp_request_latency_seconds',
          'MiniMCP/MiniMcp/minimcp_log_lines_dropped_total',
          'MiniMCP/MiniMcp/minimcp_children_restarted_total',
        ].sort(),
      );
      const topic = id(s.stack.operations.topic);
      for (const alarm of alarms) expect(alarm.Properties?.AlarmActions).toEqual([{ Ref: topic }]);
      s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'HealthyAgentNodes',
        ComparisonOperator: 'LessThanThreshold',
        Threshold: 1,
        TreatMissingData: 'breaching',
      });
      s.template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'ops@example.com',
      });
      s.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    });

    it('outputs the API URL and how to read the first admin token', () => {
      s.template.hasOutput('ApiUrl', Match.anyValue());
      const command = JSON.stringify(s.template.findOutputs('AdminTokenCommand'));
      expect(command).toContain('aws ssm get-parameter');
      expect(command).toContain('/minimcp/MiniMcp/MINIMCP_ADMIN_TOKEN --with-decryption');
    });
  });
});
