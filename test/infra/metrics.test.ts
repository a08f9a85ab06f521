// The application's metrics on AWS: each node's CloudWatch agent scrapes the
// agent's Prometheus endpoint into the stack's namespace, the API writes EMF
// there, and the alarms read exactly the metrics and dimensions the agent
// registers and the CloudWatch agent is told to publish.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import { createAgentMetrics } from '../../agent/node/metrics.js';
import { REPO_ROOT } from '../../infra/constructs/paths.js';
import { AGENT_SCRAPE_JOB, METRIC_THRESHOLDS } from '../../infra/constructs/operations.js';
import { logicalId, synthStack, type SynthesizedStack } from './synth-stack.js';

type Json = Record<string, unknown>;
type Resources = Record<string, { Type: string; Properties?: Json }>;

interface AlarmMetric {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
}

interface Declaration {
  source_labels: string[];
  label_matcher: string;
  dimensions: string[][];
  metric_selectors: string[];
}

const bundleFile = (file: string) =>
  readFileSync(path.join(REPO_ROOT, 'infra/agent-bundle', file), 'utf8');

/** The metrics an alarm reads: its own, or those of its math expression. */
function alarmMetrics(alarm: Json): AlarmMetric[] {
  const toMetric = (metric: Json): AlarmMetric => ({
    namespace: String(metric.Namespace),
    name: String(metric.MetricName),
    dimensions: Object.fromEntries(
      ((metric.Dimensions as { Name: string; Value: string }[] | undefined) ?? []).map((d) => [
        d.Name,
        d.Value,
      ]),
    ),
  });
  if (alarm.MetricName !== undefined) return [toMetric(alarm)];
  return ((alarm.Metrics as { MetricStat?: { Metric: Json } }[] | undefined) ?? []).flatMap(
    (entry) => (entry.MetricStat ? [toMetric(entry.MetricStat.Metric)] : []),
  );
}

describe('application metrics on AWS', () => {
  let s: SynthesizedStack;
  let resources: Resources;
  let userData: string;
  const cloudwatchAgent = JSON.parse(bundleFile('cloudwatch-agent.json')) as {
    logs: {
      metrics_collected: {
        prometheus: {
          log_group_name: string;
          prometheus_config_path: string;
          emf_processor: { metric_namespace: string; metric_declaration: Declaration[] };
        };
      };
    };
  };
  const prometheus = cloudwatchAgent.logs.metrics_collected.prometheus;

  beforeAll(() => {
    s = synthStack();
    resources = s.template.toJSON().Resources as Resources;
    const template = resources[logicalId(s.stack, s.stack.agents.launchTemplate.node.defaultChild)]!
      .Properties as {
      LaunchTemplateData: { UserData: { 'Fn::Base64': { 'Fn::Join': [string, unknown[]] } } };
    };
    userData = template.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1]
      .map((part) => (typeof part === 'string' ? part : '<token>'))
      .join('');
  });

  it('has each node’s CloudWatch agent scrape the agent’s /metrics on loopback', () => {
    expect(userData).toContain('MINIMCP_METRICS_LISTEN=127.0.0.1:9464\n');
    expect(userData).toContain('MINIMCP_METRICS_LOG_GROUP=<token>\n');
    expect(userData).toContain('MINIMCP_METRICS_NAMESPACE=MiniMCP/MiniMcp\n');

    const scrape = bundleFile('prometheus.yaml');
    expect(scrape).toMatch(new RegExp(`^\\s+- job_name: ${AGENT_SCRAPE_JOB}$`, 'm'));
    expect(scrape).toMatch(/^\s+metrics_path: \/metrics$/m);
    expect(scrape).toMatch(/^\s+- targets: \['__METRICS_TARGET__'\]$/m);
    expect(scrape).toMatch(/^\s+scrape_interval: 1m$/m);

    const install = bundleFile('install.sh');
    expect(install).toContain(
      `sed "s|__METRICS_TARGET__|\${MINIMCP_METRICS_LISTEN}|" "$BUNDLE/prometheus.yaml" \\\n  > ${prometheus.prometheus_config_path}`,
    );
    expect(install).toContain('-e "s|__METRICS_LOG_GROUP__|${MINIMCP_METRICS_LOG_GROUP}|"');
    expect(install).toContain('-e "s|__METRICS_NAMESPACE__|${MINIMCP_METRICS_NAMESPACE}|"');
    expect(prometheus.log_group_name).toBe('__METRICS_LOG_GROUP__');
    expect(prometheus.emf_processor.metric_namespace).toBe('__METRICS_NAMESPACE__');
    for (const declaration of prometheus.emf_processor.metric_declaration)
      expect(declaration).toMatchObject({
        source_labels: ['job'],
        label_matcher: `^${AGENT_SCRAPE_JOB}$`,
      });
  });

  it('lets the nodes write the metric logs to their own log group', () => {
    const role = logicalId(s.stack, s.stack.agents.role.node.defaultChild);
    const metricLogs = logicalId(s.stack, s.stack.agents.metricsLogGroup.node.defaultChild);
    s.template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: Match.arrayWith([{ Ref: role }]),
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['logs:PutLogEvents']),
            Resource: Match.arrayWith([{ 'Fn::GetAtt': [metricLogs, 'Arn'] }]),
          }),
        ]),
      },
    });
  });

  it('gives the API function its metrics namespace', () => {
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'MiniMCP HTTP API',
      Environment: {
        Variables: Match.objectLike({ POWERTOOLS_METRICS_NAMESPACE: 'MiniMCP/MiniMcp' }),
      },
    });
  });

  it('alarms on API and MCP error rates and latency, dropped log lines and restarts', () => {
    const alarm = (props: Json) =>
      s.template.hasResourceProperties('AWS::CloudWatch::Alarm', Match.objectLike(props));
    alarm({
      Namespace: 'MiniMCP/MiniMcp',
      MetricName: 'ApiServerErrors',
      Dimensions: [{ Name: 'service', Value: 'api' }],
      Statistic: 'Average',
      Threshold: METRIC_THRESHOLDS.apiServerErrorRate,
    });
    alarm({ MetricName: 'ApiLatency', ExtendedStatistic: 'p95' });
    alarm({
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: '100 * FILL(errors, 0) / requests' }),
      ]),
      Threshold: METRIC_THRESHOLDS.mcpServerErrorPercent,
    });
    alarm({
      MetricName: 'minimcp_mcp_request_latency_seconds',
      Dimensions: Match.arrayWith([{ Name: 'quantile', Value: '0.95' }]),
      Statistic: 'Maximum',
    });
    alarm({
      MetricName: 'minimcp_log_lines_dropped_total',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    alarm({
      MetricName: 'minimcp_children_restarted_total',
      Threshold: METRIC_THRESHOLDS.childRestarts,
    });
  });

  it('reads only agent metrics the agent registers and the CloudWatch agent publishes with those dimensions', () => {
    const registered = createAgentMetrics().registry;
    const agentMetrics = Object.values(resources)
      .filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm')
      .flatMap((resource) => alarmMetrics(resource.Properties ?? {}))
      .filter((metric) => metric.name.startsWith('minimcp_'));
    expect(agentMetrics.length).toBeGreaterThanOrEqual(5);
    for (const metric of agentMetrics) {
      expect({ metric, registered: registered.getSingleMetric(metric.name) !== undefined }).toEqual(
        {
          metric,
          registered: true,
        },
      );
      expect(metric.namespace).toBe('MiniMCP/MiniMcp');
      expect(metric.dimensions.job).toBe(AGENT_SCRAPE_JOB);
      const keys = Object.keys(metric.dimensions).sort();
      const published = prometheus.emf_processor.metric_declaration.some(
        (declaration) =>
          declaration.metric_selectors.some((selector) => new RegExp(selector).test(metric.name)) &&
          declaration.dimensions.some(
            (set) => JSON.stringify([...set].sort()) === JSON.stringify(keys),
          ),
      );
      expect({ metric, published }).toEqual({ metric, published: true });
    }
  });

  it('passes the AWS Solutions checks', () => {
    expect(s.nagFindings).toEqual([]);
  });
});
