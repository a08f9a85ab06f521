// The scheduled maintenance job (lambdas/maintenance.ts) on an EventBridge
// rule. Besides expiring instances and marking stale nodes down, it publishes
// the agent heartbeat metric the operations alarm watches — as an embedded-
// metric-format log line, so it needs no CloudWatch permission or endpoint.
import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { Config } from './config.js';
import type { Network } from './network.js';
import { NodeFunction } from './node-function.js';

/** Nodes with status active and a fresh heartbeat, published by each run (lambdas/maintenance.ts HEALTHY_NODES_METRIC). */
export const HEARTBEAT_METRIC_NAME = 'HealthyAgentNodes';

export function metricsNamespace(stackName: string): string {
  return `MiniMCP/${stackName}`;
}

export interface MaintenanceProps {
  network: Network;
  config: Config;
  schedule: string;
  logRetention: logs.RetentionDays;
}

export class Maintenance extends Construct {
  readonly handler: NodeFunction;
  readonly rule: events.Rule;
  readonly namespace: string;

  constructor(scope: Construct, id: string, props: MaintenanceProps) {
    super(scope, id);
    this.namespace = metricsNamespace(Stack.of(this).stackName);

    this.handler = new NodeFunction(this, 'Handler', {
      entry: 'lambdas/maintenance.ts',
      description: 'MiniMCP maintenance: expiry, stale nodes, ports, partitions, heartbeat metric',
      vpc: props.network.vpc,
      vpcSubnets: props.network.isolatedSubnets,
      // Same reach as the API: the proxy, and the agents' gRPC port to stop expired instances.
      securityGroups: [props.network.lambdaSecurityGroup],
      logRetention: props.logRetention,
      timeout: Duration.minutes(5),
      environment: {
        MINIMCP_SSM_PREFIX: props.config.prefix,
        MINIMCP_METRICS_NAMESPACE: this.namespace,
      },
    });
    props.config.grantRead(this.handler.function);
    this.rule = new events.Rule(this, 'Schedule', {
      description: 'Runs the MiniMCP maintenance job',
      schedule: events.Schedule.expression(props.schedule),
      targets: [
        new targets.LambdaFunction(this.handler.function, {
          // The next run comes soon and the job is idempotent: no retries piling up.
          retryAttempts: 0,
          maxEventAge: Duration.minutes(5),
        }),
      ],
    });
  }
}
