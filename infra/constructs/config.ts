// Configuration under one SSM path: the plain settings as String parameters
// owned by this stack; the secret ones (DATABASE_URL, MINIMCP_ADMIN_TOKEN,
// MINIMCP_TLS_*) are SecureStrings the deploy-time steps write, because
// CloudFormation cannot create SecureString parameters. core/config.ts loads
// the whole path at cold start (MINIMCP_SSM_PREFIX), so no Lambda environment
// variable holds a secret.
import { Arn, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, type IConstruct } from 'constructs';

export class Config extends Construct {
  readonly prefix: string;

  constructor(scope: Construct, id: string, props: { prefix: string }) {
    super(scope, id);
    this.prefix = props.prefix;
  }

  /** A plain (non-secret) setting, named like the environment variable it stands for. */
  addSetting(name: string, value: string, description: string): ssm.StringParameter {
    return new ssm.StringParameter(this, name, {
      parameterName: `${this.prefix}/${name}`,
      stringValue: value,
      description,
      tier: ssm.ParameterTier.STANDARD,
    });
  }

  /** ARN of one parameter under the prefix, or of all (`*`). */
  parameterArn(name: string): string {
    return Arn.format(
      { service: 'ssm', resource: 'parameter', resourceName: `${this.prefix.slice(1)}/${name}` },
      Stack.of(this),
    );
  }

  /** What core/config.ts does at cold start: GetParametersByPath on the prefix, recursively. */
  grantRead(grantee: iam.IGrantable & IConstruct): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadMiniMcpConfiguration',
        actions: ['ssm:GetParametersByPath', 'ssm:GetParameters', 'ssm:GetParameter'],
        resources: [
          Arn.format(
            { service: 'ssm', resource: 'parameter', resourceName: this.prefix.slice(1) },
            Stack.of(this),
          ),
          this.parameterArn('*'),
        ],
      }),
    );
    Validations.of(grantee).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter${this.prefix}/*]`,
      reason:
        'Configuration is every parameter under the prefix (core/config.ts loads the path); the set grows with the settings, so it cannot be listed by name.',
    });
  }

  /** For the deploy-time steps: write and delete the SecureStrings they own, by name. */
  grantWrite(grantee: iam.IGrantable, names: string[]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteMiniMcpSecureParameters',
        actions: ['ssm:PutParameter', 'ssm:DeleteParameter', 'ssm:DeleteParameters'],
        resources: names.map((name) => this.parameterArn(name)),
      }),
    );
  }
}
