// The API's request metrics on Lambda: CloudWatch embedded metric format
// through Powertools for AWS Lambda, one EMF line per invocation (an HTTP API
// invocation is one request), written to stdout where the function's log
// group turns it into metrics. The namespace comes from
// POWERTOOLS_METRICS_NAMESPACE (infra/constructs/api.ts sets it).
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { RequestMetrics } from './request-metrics.js';

/** The `service` dimension of every API metric. */
export const API_METRICS_SERVICE = 'api';
export const API_REQUESTS_METRIC = 'ApiRequests';
export const API_LATENCY_METRIC = 'ApiLatency';
export const API_SERVER_ERRORS_METRIC = 'ApiServerErrors';

export interface EmfRequestMetrics extends RequestMetrics {
  /** Writes what this invocation recorded as one EMF line; nothing when nothing was. */
  flush(): void;
}

export function createEmfRequestMetrics(): EmfRequestMetrics {
  const metrics = new Metrics({ serviceName: API_METRICS_SERVICE });
  return {
    record({ route, method, statusClass, seconds }) {
      // Two dimension sets: per route (service, route, method, status_class),
      // and the whole API (service alone: the empty set plus the default
      // dimension), which the alarms read.
      metrics.addDimensions({ route, method, status_class: statusClass });
      metrics.addDimensions({});
      metrics.addMetric(API_REQUESTS_METRIC, MetricUnit.Count, 1);
      // 1 for a 5xx, else 0: its average is the server error rate.
      metrics.addMetric(API_SERVER_ERRORS_METRIC, MetricUnit.Count, statusClass === '5xx' ? 1 : 0);
      metrics.addMetric(API_LATENCY_METRIC, MetricUnit.Milliseconds, seconds * 1000);
    },
    flush() {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    },
  };
}
