// The deployment's mTLS material, issued at deploy time by a custom resource
// (mutual-tls-handler.ts): the agents read theirs from a Secrets Manager
// secret at start, the control plane from SecureString parameters. A new
// `generation` issues a new CA and certificates.
import { CustomResource, Duration, Stack, Validations } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { Config } from './config.js';
import type { Network } from './network.js';
import { NodeFunction } from './node-function.js';
import { acknowledgeProviderFramework } from './provider-framework.js';

/** The control plane's parameters (mutual-tls-handler.ts CONTROL_PLANE_TLS_PARAMETERS). */
export const CONTROL_PLANE_TLS_PARAMETERS = [
  'MINIMCP_TLS_CA',
  'MINIMCP_TLS_CERT',
  'MINIMCP_TLS_KEY',
];

export interface MutualTlsProps {
  network: Network;
  config: Config;
  generation: number;
  logRetention: logs.RetentionDays;
}

export class MutualTls extends Construct {
  /** JSON `{ ca, cert, key }`: the agents' CA bundle, server certificate and key (PEM). */
  readonly agentSecret: secretsmanager.Secret;
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: MutualTlsProps) {
    super(scope, id);
    this.agentSecret = new secretsmanager.Secret(this, 'AgentTls', {
      description: 'MiniMCP agents: mTLS CA, server certificate and key (written at deploy time)',
    });
    Validations.of(this.agentSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'A certificate set, not a password: it is re-issued as a whole by bumping -c tlsGeneration, which also rolls the agents (docs/deploy.md).',
    });

    const handler = new NodeFunction(this, 'Handler', {
      entry: 'infra/constructs/mutual-tls-handler.ts',
      description: 'MiniMCP deploy step: issues the mTLS CA and certificates',
      vpc: props.network.vpc,
      vpcSubnets: props.network.isolatedSubnets,
      securityGroups: [props.network.tlsIssuerSecurityGroup],
      logRetention: props.logRetention,
      timeout: Duration.minutes(2),
    });
    this.agentSecret.grantWrite(handler.function);
    props.config.grantWrite(handler.function, CONTROL_PLANE_TLS_PARAMETERS);

    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: handler.function,
      logGroup: handler.logGroup,
    });
    acknowledgeProviderFramework(provider, handler.function);

    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::MiniMcpMutualTls',
      properties: {
        AgentSecretArn: this.agentSecret.secretArn,
        SsmPrefix: props.config.prefix,
        Region: Stack.of(this).region,
        Generation: String(props.generation),
      },
    });
  }
}
