// Operations: one alarm topic (optionally mailed), the alarms that say the
// service is unwell — API 5xx, Lambda errors and throttles, database CPU and
// connections, no agent heartbeat — and a dashboard of the same signals.
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as rds from 'aws-cdk-lib/aws-rds';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { Agents } from './agents.js';
import type { Api } from './api.js';
import { HEARTBEAT_METRIC_NAME, type Maintenance } from './maintenance.js';

/** Connections above this for 10 minutes alarm: about two thirds of max_connections on a db.t4g.small. */
export const DATABASE_CONNECTIONS_THRESHOLD = 150;

export interface MonitoredParts {
  api: Api;
  maintenance: Maintenance;
  database: rds.DatabaseInstance;
  agents: Agents;
  /** With no agent wanted, a missing heartbeat is no news. */
  agentsExpected: boolean;
}

export class Operations extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  dashboard?: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: { alarmEmail?: string }) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Alarms', {
      displayName: 'MiniMCP alarms',
      enforceSSL: true,
    });
    if (props.alarmEmail)
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm and scaling notifications carry metric names and states, nothing confidential; CloudWatch cannot publish to a topic under the AWS-managed SNS key.',
    });
  }

  private alarm(id: string, props: cloudwatch.AlarmProps): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, props);
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
    return alarm;
  }

  private functionAlarms(name: string, fn: lambda.IFunction): void {
    this.alarm(`${name}Errors`, {
      alarmDescription: `MiniMCP ${name} Lambda: invocations failed`,
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarm(`${name}Throttles`, {
      alarmDescription: `MiniMCP ${name} Lambda: invocations throttled`,
      metric: fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /** The alarms and the dashboard over the deployed parts. */
  monitor(parts: MonitoredParts): void {
    const { api, maintenance, database, agents } = parts;
    const fiveMinutes = Duration.minutes(5);

    const api5xx = api.httpApi.metricServerError({ period: fiveMinutes, statistic: 'Sum' });
    this.alarm('Api5xx', {
      alarmDescription: 'MiniMCP API answered 5xx',
      metric: api5xx,
      threshold: 5,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.functionAlarms('Api', api.handler.function);
    this.functionAlarms('Maintenance', maintenance.handler.function);

    const cpu = database.metricCPUUtilization({ period: fiveMinutes });
    this.alarm('DatabaseCpu', {
      alarmDescription: 'MiniMCP PostgreSQL CPU above 80% for 15 minutes',
      metric: cpu,
      threshold: 80,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    const connections = database.metricDatabaseConnections({ period: fiveMinutes });
    this.alarm('DatabaseConnections', {
      alarmDescription: `MiniMCP PostgreSQL above ${DATABASE_CONNECTIONS_THRESHOLD} connections for 10 minutes`,
      metric: connections,
      threshold: DATABASE_CONNECTIONS_THRESHOLD,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });

    // Published by every maintenance run; silence means the job or every agent is gone.
    const healthyNodes = new cloudwatch.Metric({
      namespace: maintenance.namespace,
      metricName: HEARTBEAT_METRIC_NAME,
      statistic: 'Minimum',
      period: Duration.minutes(1),
    });
    if (parts.agentsExpected)
      this.alarm('AgentHeartbeatMissing', {
        alarmDescription:
          'MiniMCP: no agent node with a fresh heartbeat for 5 minutes (or the maintenance job stopped publishing)',
        metric: healthyNodes,
        threshold: 1,
        evaluationPeriods: 5,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });

    const inService = new cloudwatch.Metric({
      namespace: 'AWS/AutoScaling',
      metricName: 'GroupInServiceInstances',
      dimensionsMap: { AutoScalingGroupName: agents.group.autoScalingGroupName },
      statistic: 'Average',
      period: Duration.minutes(1),
    });

    const fnWidgets = (name: string, fn: lambda.IFunction) =>
      new cloudwatch.GraphWidget({
        title: `${name} Lambda`,
        left: [fn.metricInvocations(), fn.metricErrors(), fn.metricThrottles()],
        right: [fn.metricDuration({ statistic: 'p95' })],
        width: 12,
      });
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-minimcp`,
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'API requests and errors',
            left: [
              api.httpApi.metricCount({ period: fiveMinutes }),
              api.httpApi.metricClientError({ period: fiveMinutes }),
              api5xx,
            ],
            right: [api.httpApi.metricLatency({ period: fiveMinutes, statistic: 'p95' })],
            width: 12,
          }),
          new cloudwatch.GraphWidget({
            title: 'Agent nodes',
            left: [healthyNodes, inService],
            width: 12,
          }),
        ],
        [
          fnWidgets('API', api.handler.function),
          fnWidgets('Maintenance', maintenance.handler.function),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'PostgreSQL CPU', left: [cpu], width: 8 }),
          new cloudwatch.GraphWidget({
            title: 'PostgreSQL connections',
            left: [connections],
            width: 8,
          }),
          new cloudwatch.GraphWidget({
            title: 'PostgreSQL free storage',
            left: [database.metricFreeStorageSpace()],
            width: 8,
          }),
        ],
        [new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 })],
      ],
    });
  }
}
