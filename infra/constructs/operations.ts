// Operations: one alarm topic (optionally mailed), the alarms that say the
// service is unwell — API 5xx, Lambda errors and throttles, database CPU and
// connections, no agent heartbeat; from the application's own metrics, API
// and MCP error rates and latency, dropped log lines, child restarts — and a
// dashboard of the same signals.
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
import {
  API_LATENCY_METRIC,
  API_METRICS_SERVICE,
  API_REQUESTS_METRIC,
  API_SERVER_ERRORS_METRIC,
} from '../../lambdas/request-metrics-emf.js';

/** The Prometheus job of the agents' scrape (infra/agent-bundle/prometheus.yaml): every agent metric's dimension. */
export const AGENT_SCRAPE_JOB = 'minimcp-agent';

/** Alarm thresholds on the application's metrics. */
export const METRIC_THRESHOLDS = {
  /** Share of API answers that are 5xx, over 5 minutes. */
  apiServerErrorRate: 0.05,
  /** API p95 latency, milliseconds. */
  apiLatencyP95Ms: 3000,
  /** Percent of MCP requests answered 5xx by the gateways, over 5 minutes. */
  mcpServerErrorPercent: 5,
  /** MCP p95 latency on the worst node, seconds. */
  mcpLatencyP95Seconds: 10,
  /** Child restarts in 5 minutes, all nodes. */
  childRestarts: 10,
} as const;

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

  /** One metric the agents' CloudWatch agent publishes from their Prometheus endpoints. */
  private agentMetric(
    agents: Agents,
    metricName: string,
    options: {
      dimensions?: Record<string, string>;
      statistic?: string;
      label?: string;
      period?: Duration;
    } = {},
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: agents.metricsNamespace,
      metricName,
      dimensionsMap: { job: AGENT_SCRAPE_JOB, ...options.dimensions },
      statistic: options.statistic ?? 'Sum',
      period: options.period ?? Duration.minutes(5),
      ...(options.label ? { label: options.label } : {}),
    });
  }

  /** One of the API's own request metrics (lambdas/request-metrics-emf.ts), the whole API. */
  private apiMetric(api: Api, metricName: string, statistic: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: api.metricsNamespace,
      metricName,
      dimensionsMap: { service: API_METRICS_SERVICE },
      statistic,
      period: Duration.minutes(5),
    });
  }

  /** Alarms on the application's metrics: error rates, latency, dropped log lines, restarts. */
  private applicationAlarms(api: Api, agents: Agents): void {
    const above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
    const quiet = cloudwatch.TreatMissingData.NOT_BREACHING;
    this.alarm('ApiServerErrorRate', {
      alarmDescription: `MiniMCP API: more than ${METRIC_THRESHOLDS.apiServerErrorRate * 100}% of answers are 5xx`,
      metric: this.apiMetric(api, API_SERVER_ERRORS_METRIC, 'Average'),
      threshold: METRIC_THRESHOLDS.apiServerErrorRate,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      comparisonOperator: above,
      treatMissingData: quiet,
    });
    this.alarm('ApiLatency', {
      alarmDescription: `MiniMCP API: p95 latency above ${METRIC_THRESHOLDS.apiLatencyP95Ms} ms`,
      metric: this.apiMetric(api, API_LATENCY_METRIC, 'p95'),
      threshold: METRIC_THRESHOLDS.apiLatencyP95Ms,
      evaluationPeriods: 3,
      comparisonOperator: above,
      treatMissingData: quiet,
    });
    this.alarm('McpServerErrorRate', {
      alarmDescription: `MiniMCP agents: more than ${METRIC_THRESHOLDS.mcpServerErrorPercent}% of MCP requests answered 5xx`,
      metric: new cloudwatch.MathExpression({
        expression: '100 * FILL(errors, 0) / requests',
        usingMetrics: {
          errors: this.agentMetric(agents, 'minimcp_mcp_requests_total', {
            dimensions: { outcome: 'server_error' },
          }),
          requests: this.agentMetric(agents, 'minimcp_mcp_requests_total'),
        },
        label: 'MCP 5xx %',
        period: Duration.minutes(5),
      }),
      threshold: METRIC_THRESHOLDS.mcpServerErrorPercent,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      comparisonOperator: above,
      treatMissingData: quiet,
    });
    this.alarm('McpLatency', {
      alarmDescription: `MiniMCP agents: p95 MCP request latency above ${METRIC_THRESHOLDS.mcpLatencyP95Seconds} s on a node`,
      metric: this.agentMetric(agents, 'minimcp_mcp_request_latency_seconds', {
        dimensions: { quantile: '0.95' },
        statistic: 'Maximum',
      }),
      threshold: METRIC_THRESHOLDS.mcpLatencyP95Seconds,
      evaluationPeriods: 3,
      comparisonOperator: above,
      treatMissingData: quiet,
    });
    this.alarm('LogLinesDropped', {
      alarmDescription: 'MiniMCP agents dropped log lines (queue or disk spool full)',
      metric: this.agentMetric(agents, 'minimcp_log_lines_dropped_total'),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: quiet,
    });
    this.alarm('ChildRestarts', {
      alarmDescription: `MiniMCP agents: ${METRIC_THRESHOLDS.childRestarts} or more MCP server restarts in 5 minutes`,
      metric: this.agentMetric(agents, 'minimcp_children_restarted_total'),
      threshold: METRIC_THRESHOLDS.childRestarts,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: quiet,
    });
  }

  /** Dashboard rows of the application's metrics. */
  private applicationWidgets(api: Api, agents: Agents): cloudwatch.IWidget[][] {
    const metric = (name: string, label: string, dimensions?: Record<string, string>) =>
      this.agentMetric(agents, name, { label, ...(dimensions ? { dimensions } : {}) });
    const outcomes = ['server_error', 'client_error', 'rpc_error', 'cancelled'];
    const quantiles = ['0.5', '0.95', '0.99'];
    return [
      [
        new cloudwatch.GraphWidget({
          title: 'API requests and 5xx (application)',
          left: [
            this.apiMetric(api, API_REQUESTS_METRIC, 'Sum'),
            this.apiMetric(api, API_SERVER_ERRORS_METRIC, 'Sum'),
          ],
          right: [
            this.apiMetric(api, API_LATENCY_METRIC, 'p50'),
            this.apiMetric(api, API_LATENCY_METRIC, 'p95'),
          ],
          width: 12,
        }),
        new cloudwatch.GraphWidget({
          title: 'MCP requests by outcome, and latency (s)',
          left: [
            metric('minimcp_mcp_requests_total', 'all'),
            ...outcomes.map((outcome) =>
              metric('minimcp_mcp_requests_total', outcome, { outcome }),
            ),
          ],
          right: quantiles.map((quantile) =>
            this.agentMetric(agents, 'minimcp_mcp_request_latency_seconds', {
              dimensions: { quantile },
              statistic: 'Maximum',
              label: `p${Number(quantile) * 100}`,
            }),
          ),
          width: 12,
        }),
      ],
      [
        new cloudwatch.GraphWidget({
          title: 'MCP servers: started, restarted, killed over limits',
          left: ['started', 'restarted', 'killed'].map((what) =>
            metric(`minimcp_children_${what}_total`, what),
          ),
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: 'Log lines: shipped, spooled, dropped',
          left: ['shipped', 'spooled', 'dropped'].map((what) =>
            metric(`minimcp_log_lines_${what}_total`, what),
          ),
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: 'Instances by state, and agent database errors',
          left: ['running', 'starting', 'failed'].map((state) =>
            // A gauge each node reports once a minute (the scrape interval): their sum.
            this.agentMetric(agents, 'minimcp_instances', {
              dimensions: { state },
              period: Duration.minutes(1),
              label: state,
            }),
          ),
          right: ['unavailable', 'query'].map((kind) =>
            metric('minimcp_database_errors_total', `database ${kind}`, { kind }),
          ),
          width: 8,
        }),
      ],
    ];
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
    this.applicationAlarms(api, agents);

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
        ...this.applicationWidgets(api, agents),
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
