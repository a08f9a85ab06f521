// The API's request metrics in Prometheus form, for the local server: a
// registry of its own, and GET /metrics answered beside the app (not one of
// its routes: on Lambda the same numbers go out as CloudWatch EMF instead).
import { Counter, Histogram, Registry } from 'prom-client';
import type { RequestMetrics } from './request-metrics.js';

export interface PrometheusRequestMetrics extends RequestMetrics {
  readonly registry: Registry;
}

export function createPrometheusRequestMetrics(): PrometheusRequestMetrics {
  const registry = new Registry();
  const requests = new Counter({
    name: 'minimcp_api_requests_total',
    help: 'API requests answered, by route template, method and status class.',
    labelNames: ['route', 'method', 'status_class'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'minimcp_api_request_duration_seconds',
    help: 'Time to answer an API request, by route template and method.',
    labelNames: ['route', 'method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return {
    registry,
    record({ route, method, statusClass, seconds }) {
      requests.inc({ route, method, status_class: statusClass });
      duration.observe({ route, method }, seconds);
    },
  };
}

export const METRICS_PATH = '/metrics';

/** The app's fetch, with GET /metrics answered from the registry first (anything else: the app's problem). */
export function withMetricsEndpoint<Rest extends unknown[]>(
  fetch: (request: Request, ...rest: Rest) => Response | Promise<Response>,
  registry: Registry,
): (request: Request, ...rest: Rest) => Promise<Response> {
  // `rest`: the node server's bindings, which the app's connection info reads.
  return async (request, ...rest) => {
    const scrape = request.method === 'GET' || request.method === 'HEAD';
    if (!scrape || new URL(request.url).pathname !== METRICS_PATH) return fetch(request, ...rest);
    return new Response(request.method === 'HEAD' ? null : await registry.metrics(), {
      headers: { 'content-type': registry.contentType },
    });
  };
}
