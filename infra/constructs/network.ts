// The network: a VPC over two AZs, interface endpoints so secrets and keys
// never leave it, and the security groups of every part with their rules.
import { Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface NetworkProps {
  cidr: string;
  natGateways: number;
  agentsPublic: boolean;
  clientCidrs: string[];
  grpcPort: number;
  portRangeStart: number;
  portRangeEnd: number;
  logRetention: logs.RetentionDays;
}

export const POSTGRES_PORT = 5432;

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** The API and maintenance Lambdas: reach the RDS Proxy, the agents' gRPC port and the endpoints. */
  readonly lambdaSecurityGroup: ec2.SecurityGroup;
  /** The deploy-time migration step: reaches the database itself. */
  readonly migrationSecurityGroup: ec2.SecurityGroup;
  /** The deploy-time mTLS issuer: AWS APIs only. */
  readonly tlsIssuerSecurityGroup: ec2.SecurityGroup;
  /** The Secrets Manager rotation Lambda of the master credentials. */
  readonly rotationSecurityGroup: ec2.SecurityGroup;
  readonly proxySecurityGroup: ec2.SecurityGroup;
  readonly databaseSecurityGroup: ec2.SecurityGroup;
  readonly agentSecurityGroup: ec2.SecurityGroup;
  /** Database, proxy and Lambdas: no route out of the VPC at all. */
  readonly isolatedSubnets: ec2.SubnetSelection;
  readonly agentSubnets: ec2.SubnetSelection;
  readonly secretsManagerEndpoint: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);

    const subnets: ec2.SubnetConfiguration[] = [
      {
        name: 'public',
        subnetType: ec2.SubnetType.PUBLIC,
        cidrMask: 24,
        mapPublicIpOnLaunch: false,
      },
      { name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
    ];
    if (props.natGateways > 0)
      subnets.push({
        name: 'agents',
        subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS,
        cidrMask: 22,
      });

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr),
      maxAzs: 2,
      natGateways: props.natGateways,
      subnetConfiguration: subnets,
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(
            new logs.LogGroup(this, 'FlowLogs', { retention: props.logRetention }),
          ),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });
    this.isolatedSubnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    this.agentSubnets = props.agentsPublic
      ? { subnetType: ec2.SubnetType.PUBLIC }
      : { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    const group = (name: string, description: string) =>
      new ec2.SecurityGroup(this, name, { vpc: this.vpc, description, allowAllOutbound: false });

    this.lambdaSecurityGroup = group('LambdaSg', 'MiniMCP API and maintenance Lambdas');
    this.migrationSecurityGroup = group('MigrationSg', 'MiniMCP deploy-time migration Lambda');
    this.tlsIssuerSecurityGroup = group('TlsIssuerSg', 'MiniMCP deploy-time mTLS issuer');
    this.rotationSecurityGroup = group('RotationSg', 'MiniMCP credential rotation Lambda');
    this.proxySecurityGroup = group('ProxySg', 'MiniMCP RDS Proxy');
    this.databaseSecurityGroup = group('DatabaseSg', 'MiniMCP PostgreSQL');
    this.agentSecurityGroup = new ec2.SecurityGroup(this, 'AgentSg', {
      vpc: this.vpc,
      description: 'MiniMCP host agents',
      // Agents run third-party MCP servers that call arbitrary HTTPS APIs.
      allowAllOutbound: true,
    });
    const endpointSecurityGroup = group('EndpointSg', 'MiniMCP interface endpoints');

    const pg = ec2.Port.tcp(POSTGRES_PORT);
    // Lambdas → proxy; agents and the migration step → database.
    this.lambdaSecurityGroup.connections.allowTo(
      this.proxySecurityGroup,
      pg,
      'Lambdas to RDS Proxy',
    );
    // The agents' group allows all egress: only the other side needs a rule.
    this.databaseSecurityGroup.addIngressRule(this.agentSecurityGroup, pg, 'Agents to PostgreSQL');
    this.migrationSecurityGroup.connections.allowTo(
      this.databaseSecurityGroup,
      pg,
      'Migrations to PostgreSQL',
    );
    // Proxy → database and rotation → database: DatabaseInstance.addProxy and
    // addRotationSingleUser add those rules themselves (a second copy would
    // make EC2 reject the deployment as a duplicate rule).
    // Only the control plane dials the agents' gRPC port (mutual TLS on top).
    this.lambdaSecurityGroup.connections.allowTo(
      this.agentSecurityGroup,
      ec2.Port.tcp(props.grpcPort),
      'Control plane to agent gRPC',
    );
    // Clients reach the per-instance ports (each guarded by its bearer token).
    for (const clientCidr of props.clientCidrs)
      this.agentSecurityGroup.addIngressRule(
        ec2.Peer.ipv4(clientCidr),
        ec2.Port.tcpRange(props.portRangeStart, props.portRangeEnd),
        `MCP clients ${clientCidr} to instance ports`,
      );
    if (props.clientCidrs.includes('0.0.0.0/0'))
      Validations.of(this.agentSecurityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason:
          'clientCidrs defaults to anywhere: MCP clients (IDEs, desktop apps) connect from unknown addresses, and every instance port requires its own bearer token. Narrow it with -c clientCidrs=...',
      });
    const https = ec2.Port.tcp(443);
    for (const caller of [
      this.lambdaSecurityGroup,
      this.migrationSecurityGroup,
      this.tlsIssuerSecurityGroup,
      this.rotationSecurityGroup,
    ])
      caller.connections.allowTo(endpointSecurityGroup, https, 'AWS APIs via endpoints');
    endpointSecurityGroup.addIngressRule(this.agentSecurityGroup, https, 'Agents to AWS APIs');

    // KMS, SSM and Secrets Manager through private endpoints: nothing secret
    // crosses the internet, and the isolated subnets need no NAT.
    const endpoint = (name: string, service: ec2.InterfaceVpcEndpointAwsService) =>
      this.vpc.addInterfaceEndpoint(name, {
        service,
        subnets: this.isolatedSubnets,
        securityGroups: [endpointSecurityGroup],
        privateDnsEnabled: true,
        open: false,
      });
    endpoint('KmsEndpoint', ec2.InterfaceVpcEndpointAwsService.KMS);
    endpoint('SsmEndpoint', ec2.InterfaceVpcEndpointAwsService.SSM);
    this.secretsManagerEndpoint = endpoint(
      'SecretsManagerEndpoint',
      ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    );
    // The agents fetch their bundle from the CDK asset bucket without a NAT.
    this.vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3 });
  }
}
