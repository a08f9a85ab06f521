// Custom-resource handler: issues the deployment's mTLS set at deploy time — a
// private CA, the agents' server certificate (valid for the EC2 private DNS
// names the control plane dials) and the control plane's client certificate.
// The agents' half goes to a Secrets Manager secret, the control plane's to
// SecureString parameters the Lambdas load with their configuration. The CA
// key is never stored: a new generation issues a whole new set.
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DeleteParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';
import {
  AGENT_COMMON_NAME,
  CONTROL_PLANE_COMMON_NAME,
  generateCertificateAuthority,
  issueCertificate,
} from '../../core/tls.js';

/** Parameter names (under the prefix) of the control plane's TLS material. */
export const CONTROL_PLANE_TLS_PARAMETERS = {
  ca: 'MINIMCP_TLS_CA',
  cert: 'MINIMCP_TLS_CERT',
  key: 'MINIMCP_TLS_KEY',
} as const;

const Properties = z.object({
  AgentSecretArn: z.string().min(1),
  SsmPrefix: z.string().regex(/^(\/[\w.-]+)+$/),
  Region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
  Generation: z.string().min(1),
});

const MutualTlsEvent = z.object({
  RequestType: z.enum(['Create', 'Update', 'Delete']),
  ResourceProperties: Properties,
  PhysicalResourceId: z.string().optional(),
});

/**
 * Names the agents' certificate is valid for: the control plane dials an
 * agent at its EC2 private DNS name (`ip-10-40-0-12.ec2.internal` in
 * us-east-1, `ip-….<region>.compute.internal` elsewhere), which one wildcard
 * per form covers whatever address the Auto Scaling group hands out.
 */
export function agentAltNames(region: string): string[] {
  return [
    region === 'us-east-1' ? '*.ec2.internal' : `*.${region}.compute.internal`,
    AGENT_COMMON_NAME,
    'localhost',
  ];
}

export async function handler(rawEvent: unknown): Promise<{ PhysicalResourceId: string }> {
  const event = MutualTlsEvent.parse(rawEvent);
  const props = event.ResourceProperties;
  const physicalId = `minimcp-mtls:${props.SsmPrefix}`;
  const names = Object.values(CONTROL_PLANE_TLS_PARAMETERS).map(
    (name) => `${props.SsmPrefix}/${name}`,
  );
  const ssm = new SSMClient({});
  const secrets = new SecretsManagerClient({});
  try {
    if (event.RequestType === 'Delete') {
      // DeleteParameters ignores names that do not exist.
      if (event.PhysicalResourceId === physicalId)
        await ssm.send(new DeleteParametersCommand({ Names: names }));
      return { PhysicalResourceId: event.PhysicalResourceId ?? physicalId };
    }

    const ca = await generateCertificateAuthority({ commonName: `MiniMCP CA ${props.SsmPrefix}` });
    const [agent, controlPlane] = await Promise.all([
      issueCertificate(ca, {
        commonName: AGENT_COMMON_NAME,
        usage: 'server',
        altNames: agentAltNames(props.Region),
      }),
      issueCertificate(ca, {
        commonName: CONTROL_PLANE_COMMON_NAME,
        usage: 'client',
        altNames: [],
      }),
    ]);
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: props.AgentSecretArn,
        SecretString: JSON.stringify({ ca: ca.cert, cert: agent.cert, key: agent.key }),
      }),
    );
    const values = { ca: ca.cert, cert: controlPlane.cert, key: controlPlane.key };
    for (const [field, name] of Object.entries(CONTROL_PLANE_TLS_PARAMETERS))
      await ssm.send(
        new PutParameterCommand({
          Name: `${props.SsmPrefix}/${name}`,
          Type: 'SecureString',
          Value: values[field as keyof typeof values],
          Overwrite: true,
        }),
      );
    return { PhysicalResourceId: physicalId };
  } finally {
    ssm.destroy();
    secrets.destroy();
  }
}
