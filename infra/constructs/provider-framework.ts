// cdk-nag acknowledgements for the custom-resource provider framework, whose
// Lambda and role CDK generates: the same reasons hold wherever we use it.
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as cr from 'aws-cdk-lib/custom-resources';

/** The logical id a construct's CloudFormation resource gets, as cdk-nag prints it. */
export function logicalIdOf(element: CfnElement): string {
  const stack = Stack.of(element);
  return String(stack.resolve(stack.getLogicalId(element)));
}

export function acknowledgeProviderFramework(
  provider: cr.Provider,
  onEvent: lambda.Function,
): void {
  const handlerId = logicalIdOf(onEvent.node.defaultChild as CfnElement);
  Validations.of(provider).acknowledge(
    {
      id: `AwsSolutions-IAM5[Resource::<${handlerId}.Arn>:*]`,
      reason: 'CDK provider framework: may invoke any version of our own handler function.',
    },
    {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'CDK provider framework: the AWS-managed policy only lets it write its own logs.',
    },
    {
      id: 'AwsSolutions-L1',
      reason: 'CDK provider framework: CDK chooses and updates its runtime.',
    },
  );
}
