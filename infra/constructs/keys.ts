// The customer-managed KMS key of the API-key envelopes, and the only two ways
// to use it: the API generates data keys, the agents decrypt them — both only
// under an encryption context naming the user and the MCP type.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/** The encryption context keys core/crypto/envelope.ts sends with every KMS call. */
export const ENCRYPTION_CONTEXT_KEYS = ['minimcp:user_id', 'minimcp:mcp_type'] as const;

/**
 * IAM condition: the request carries exactly our context keys (no others)
 * and both are present. ForAllValues alone would also match an empty context.
 */
export const ENCRYPTION_CONTEXT_CONDITIONS = {
  'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [...ENCRYPTION_CONTEXT_KEYS] },
  Null: Object.fromEntries(
    ENCRYPTION_CONTEXT_KEYS.map((key) => [`kms:EncryptionContext:${key}`, 'false']),
  ),
};

export class Keys extends Construct {
  readonly envelopeKey: kms.Key;

  constructor(scope: Construct, id: string, props: { aliasName: string }) {
    super(scope, id);
    this.envelopeKey = new kms.Key(this, 'EnvelopeKey', {
      alias: props.aliasName,
      description: 'MiniMCP: wraps the data keys of stored third-party API keys',
      enableKeyRotation: true,
      rotationPeriod: Duration.days(365),
      // Destroying it would make every stored API key unreadable.
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
    });
    // Defence in depth on top of the IAM policies below: nobody, an account
    // administrator included, decrypts or generates without our context.
    for (const key of ENCRYPTION_CONTEXT_KEYS)
      this.envelopeKey.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: `DenyWithout-${key.replace(':', '-')}`,
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext'],
          resources: ['*'],
          conditions: { Null: { [`kms:EncryptionContext:${key}`]: 'true' } },
        }),
      );
  }

  /** The API: new data keys for envelopes, never Decrypt. */
  grantGenerateDataKey(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'GenerateEnvelopeDataKeys',
        actions: ['kms:GenerateDataKey'],
        resources: [this.envelopeKey.keyArn],
        conditions: ENCRYPTION_CONTEXT_CONDITIONS,
      }),
    );
  }

  /** The agents: unwrap a data key just in time, under its context. */
  grantDecryptWithContext(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DecryptEnvelopeDataKeys',
        actions: ['kms:Decrypt'],
        resources: [this.envelopeKey.keyArn],
        conditions: ENCRYPTION_CONTEXT_CONDITIONS,
      }),
    );
  }
}
