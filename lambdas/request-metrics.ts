// Per-request metrics of the API: a Hono middleware hands each answered request
// (route template, method, status, duration) to a RequestMetrics, which the
// local server implements with Prometheus (request-metrics-prometheus.ts) and
// the Lambda with CloudWatch embedded metric format (request-metrics-emf.ts).
// Labels stay bounded: the route template, never the path with its ids.
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { AppEnv } from './context.js';

export interface AnsweredRequest {
  /** The matched route's template (`/v1/instances/:id`), or `unmatched`. */
  route: string;
  /** GET, POST, …; OTHER for a method no route takes. */
  method: string;
  /** `2xx`, `4xx`, `5xx`, … */
  statusClass: string;
  seconds: number;
}

export interface RequestMetrics {
  record(request: AnsweredRequest): void;
}

const METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
]);

export function statusClass(status: number): string {
  return `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx`;
}

/**
 * The template of the route that answered. When a middleware answered (an
 * auth check refusing), the route it guarded; `unmatched` when no route took
 * the path and method (404, 405).
 */
export function routeTemplate(c: Context): string {
  const routes = matchedRoutes(c);
  const answered = routes[c.req.routeIndex];
  if (answered && answered.method !== 'ALL') return answered.path;
  for (let i = routes.length - 1; i >= 0; i--)
    if (routes[i]!.method !== 'ALL') return routes[i]!.path;
  return 'unmatched';
}

/** Records every request once its answer is final (errors already turned into problems). */
export function recordRequests(metrics: RequestMetrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      metrics.record({
        route: routeTemplate(c),
        method: METHODS.has(c.req.method) ? c.req.method : 'OTHER',
        statusClass: statusClass(c.res.status),
        seconds: (performance.now() - started) / 1000,
      });
    }
  };
}
