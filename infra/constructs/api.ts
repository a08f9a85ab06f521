// The HTTP API: lambdas/api.ts (Hono) behind an API Gateway HTTP API with a
// throttled $default stage, JSON access logs and optional CORS. The function
// reads its configuration from SSM at cold start and may only generate
// envelope data keys, never decrypt them; with a mail sender configured it
// may send email through SES from that sender only.
import { ArnFormat, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { Config } from './config.js';
import type { Keys } from './keys.js';
import type { Network } from './network.js';
import { NodeFunction } from './node-function.js';
import { metricsNamespace } from './maintenance.js';

export interface ApiProps {
  network: Network;
  config: Config;
  keys: Keys;
  throttleRate: number;
  throttleBurst: number;
  corsOrigins: string[];
  logRetention: logs.RetentionDays;
  /** Account mail through SES from this address; unset: mail is dropped (MINIMCP_MAILER=none). */
  mailFrom?: string;
}

/** Access-log fields: only variables HTTP APIs define; no header that could carry a token. */
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  method: '$context.httpMethod',
  path: '$context.path',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  userAgent: '$context.identity.userAgent',
});

export class Api extends Construct {
  readonly handler: NodeFunction;
  readonly httpApi: apigw.HttpApi;
  readonly stage: apigw.HttpStage;
  readonly accessLogs: logs.LogGroup;
  /** Where the handler's request metrics go (embedded metric format, lambdas/request-metrics-emf.ts). */
  readonly metricsNamespace: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { network, config, keys } = props;
    this.metricsNamespace = metricsNamespace(Stack.of(this).stackName);

    this.handler = new NodeFunction(this, 'Handler', {
      entry: 'lambdas/api.ts',
      description: 'MiniMCP HTTP API',
      vpc: network.vpc,
      vpcSubnets: network.isolatedSubnets,
      securityGroups: [network.lambdaSecurityGroup],
      logRetention: props.logRetention,
      // API Gateway gives an integration 30 s at most.
      timeout: Duration.seconds(29),
      memorySize: 1024,
      environment: {
        MINIMCP_SSM_PREFIX: config.prefix,
        ...(props.mailFrom
          ? { MINIMCP_MAILER: 'ses', MINIMCP_MAIL_FROM: props.mailFrom }
          : { MINIMCP_MAILER: 'none' }),
        POWERTOOLS_METRICS_NAMESPACE: this.metricsNamespace,
      },
    });
    config.grantRead(this.handler.function);
    keys.grantGenerateDataKey(this.handler.function);
    if (props.mailFrom) this.allowMail(network, props.mailFrom);

    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      apiName: `${Stack.of(this).stackName}-api`,
      description: 'MiniMCP API',
      createDefaultStage: false,
      defaultIntegration: new integrations.HttpLambdaIntegration('Lambda', this.handler.function, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      }),
      ...(props.corsOrigins.length > 0
        ? {
            corsPreflight: {
              allowOrigins: props.corsOrigins,
              allowMethods: [apigw.CorsHttpMethod.ANY],
              allowHeaders: ['authorization', 'content-type'],
              exposeHeaders: ['retry-after', 'x-request-id'],
              // Bearer tokens, never cookies.
              allowCredentials: false,
              maxAge: Duration.hours(1),
            },
          }
        : {}),
    });

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: props.logRetention });
    this.stage = new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttleRate, burstLimit: props.throttleBurst },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.accessLogs),
        format: apigateway.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });

    Validations.of(this.httpApi).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'Every route but health and the OpenAPI document checks a bearer token in the application (lambdas/), against hashed user tokens in PostgreSQL; an API Gateway authorizer would duplicate that lookup.',
    });
  }

  /**
   * ses:SendEmail from the sender's identities only (the address, or its
   * domain when the domain is what SES verified), and a private endpoint to
   * the SES API: the function runs in isolated subnets.
   */
  private allowMail(network: Network, from: string): void {
    const domain = from.slice(from.lastIndexOf('@') + 1);
    const identity = (name: string) =>
      Stack.of(this).formatArn({
        service: 'ses',
        resource: 'identity',
        resourceName: name,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
    this.handler.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ses:SendEmail'],
        resources: [identity(from), identity(domain)],
        conditions: { StringEquals: { 'ses:FromAddress': from } },
      }),
    );
    const endpointGroup = new ec2.SecurityGroup(this, 'EmailEndpointSg', {
      vpc: network.vpc,
      description: 'MiniMCP SES API endpoint',
      allowAllOutbound: false,
    });
    network.lambdaSecurityGroup.connections.allowTo(
      endpointGroup,
      ec2.Port.tcp(443),
      'API Lambda to the SES API',
    );
    network.vpc.addInterfaceEndpoint('EmailEndpoint', {
      service: ec2.InterfaceVpcEndpointAwsService.EMAIL,
      subnets: network.isolatedSubnets,
      securityGroups: [endpointGroup],
      privateDnsEnabled: true,
      open: false,
    });
  }

  /** The base URL clients call. */
  get url(): string {
    return this.httpApi.apiEndpoint;
  }
}
