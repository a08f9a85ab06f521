// One way to package our Lambda handlers: NodejsFunction with local esbuild
// (no Docker), ARM64, Node 22, ESM, in the VPC, with its own log group.
import path from 'node:path';
import { Duration, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { REPO_ROOT } from './paths.js';
import { ESM_BANNER } from './esm-banner.js';

export interface NodeFunctionProps {
  /** Entry file, relative to the repository root (`lambdas/api.ts`). */
  entry: string;
  description: string;
  vpc: ec2.IVpc;
  vpcSubnets: ec2.SubnetSelection;
  securityGroups: ec2.ISecurityGroup[];
  logRetention: logs.RetentionDays;
  environment?: Record<string, string>;
  timeout?: Duration;
  memorySize?: number;
  /** Extra folders of the repository copied beside the bundle (`migrations`). */
  assets?: string[];
}

/**
 * Where the bundle pretends to live. Our modules find their assets relative to
 * their own file in dist/ (`new URL('../proto/', import.meta.url)`); esbuild
 * folds them into one index.mjs at the task root, so import.meta.url is pinned
 * to a file one folder below the root, where `proto/` and the other assets are
 * copied. The banner keeps the real URL for require().
 */
const PINNED_MODULE_URL = 'file:///var/task/lambdas/index.mjs';

export class NodeFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: NodeFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention });
    const copied = ['proto', ...(props.assets ?? [])];
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(REPO_ROOT, props.entry),
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      projectRoot: REPO_ROOT,
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      logGroup: this.logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        // The runtime's bundle of Amazon CAs, RDS included: Node 20+ runtimes do not load it by default.
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        ...props.environment,
      },
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: 'node22',
        platform: 'node',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        banner: ESM_BANNER,
        define: { 'import.meta.url': JSON.stringify(PINNED_MODULE_URL) },
        // The runtime ships the AWS SDK v3; pg-native is an optional native
        // binding pg only loads on request.
        externalModules: ['@aws-sdk/*', 'pg-native'],
        forceDockerBundling: false,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) =>
            copied.map(
              (folder) =>
                `cp -R ${JSON.stringify(path.join(inputDir, folder))} ${JSON.stringify(path.join(outputDir, folder))}`,
            ),
        },
      },
    });
    Validations.of(this.function).acknowledge(
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'The AWS-managed policy only lets the function write its own logs.',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          'The AWS-managed policy only manages the network interfaces a function in a VPC needs (their ids are not known in advance).',
      },
      {
        id: 'AwsSolutions-L1',
        reason:
          'Pinned to Node.js 22 on purpose: the version the code and the agents (AL2023 nodejs22) are tested with; moving to 24 is a deliberate upgrade.',
      },
    );
  }
}
