// The CDK app configured away from every default, the way `cdk deploy -c ...`
// passes context (strings): private agents behind a NAT, narrow client
// CIDRs, no deletion protection, Multi-AZ, another prefix and schedule.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { logicalId, synthStack, type SynthesizedStack } from './synth-stack.js';

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

describe('the MiniMCP stack configured through context', () => {
  let s: SynthesizedStack;
  let resources: Resources;
  const id = (construct: IConstruct) =>
    logicalId(s.stack, construct.node.defaultChild ?? construct);

  beforeAll(() => {
    s = synthStack({
      stackName: 'Staging',
      ssmPrefix: '/corp/minimcp',
      agentsPublic: 'false',
      clientCidrs: '10.0.0.0/8, 192.168.0.0/16',
      deletionProtection: 'false',
      dbMultiAz: 'true',
      postgresVersion: '18',
      agentMinCapacity: '0',
      agentMaxCapacity: '2',
      logRetentionDays: '90',
      tlsGeneration: '3',
      apiThrottleRate: '10',
      apiThrottleBurst: '20',
      maintenanceSchedule: 'rate(5 minutes)',
      corsOrigins: '',
      agentChildUids: '300000-300999',
    });
    resources = s.template.toJSON().Resources as Resources;
  });

  it('still passes the AWS Solutions checks', () => {
    expect(s.nagFindings).toEqual([]);
  });

  it('puts the agents in private subnets behind one NAT gateway, without public addresses', () => {
    s.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    s.template.resourceCountIs('AWS::EC2::Subnet', 6);
    const group = resources[id(s.stack.agents.group)]!.Properties as {
      VPCZoneIdentifier: { Ref: string }[];
    };
    expect(group.VPCZoneIdentifier.map((subnet) => subnet.Ref)).toEqual([
      expect.stringMatching(/^NetworkVpcagentsSubnet1/),
      expect.stringMatching(/^NetworkVpcagentsSubnet2/),
    ]);
    s.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ NetworkInterfaces: Match.absent() }),
    });
  });

  it('opens the instance ports to exactly the configured client CIDRs', () => {
    const agentSg = resources[id(s.stack.network.agentSecurityGroup)]!.Properties as {
      SecurityGroupIngress: { CidrIp?: string; FromPort: number; ToPort: number }[];
    };
    expect(
      agentSg.SecurityGroupIngress.map((rule) => [rule.CidrIp, rule.FromPort, rule.ToPort]),
    ).toEqual([
      ['10.0.0.0/8', 3001, 3100],
      ['192.168.0.0/16', 3001, 3100],
    ]);
  });

  it('runs PostgreSQL 18 Multi-AZ without deletion protection', () => {
    s.template.hasResourceProperties('AWS::RDS::DBInstance', {
      EngineVersion: '18',
      MultiAZ: true,
      DeletionProtection: false,
      DBInstanceIdentifier: 'staging-postgres',
    });
  });

  it('uses the configured prefix, throttling, schedule and retention', () => {
    s.template.allResourcesProperties('AWS::SSM::Parameter', {
      Name: Match.stringLikeRegexp('^/corp/minimcp/'),
    });
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 },
    });
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: Match.absent(),
    });
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
    });
    s.template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
  });

  it('rolls the agents onto a new certificate generation', () => {
    s.template.hasResourceProperties('Custom::MiniMcpMutualTls', { Generation: '3' });
    const userData = JSON.stringify(
      (resources[id(s.stack.agents.launchTemplate)]!.Properties as { LaunchTemplateData: unknown })
        .LaunchTemplateData,
    );
    expect(userData).toContain('MINIMCP_TLS_GENERATION=3');
    expect(userData).toContain('MINIMCP_ADVERTISE=private');
  });

  it('runs each MCP server as an OS user of its own when given a range', () => {
    const userData = JSON.stringify(
      (resources[id(s.stack.agents.launchTemplate)]!.Properties as { LaunchTemplateData: unknown })
        .LaunchTemplateData,
    );
    // install.sh adds the root drop-in and the metadata-service rule when this is set.
    expect(userData).toContain('MINIMCP_CHILD_UIDS=300000-300999');
  });

  it('expects no heartbeat when no agent is wanted', () => {
    s.template.resourcePropertiesCountIs(
      'AWS::CloudWatch::Alarm',
      { MetricName: 'HealthyAgentNodes' },
      0,
    );
  });
});
