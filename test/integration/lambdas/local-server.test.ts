// The local API server's GET /metrics: after some requests, the Prometheus
// counters of the API have moved by exactly those requests, labelled by route
// template (never the path with its ids), method and status class.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiConfigSchema, parseConfig } from '../../../core/config.js';
import { createEnvelopeCipher } from '../../../core/crypto/envelope.js';
import { createLocalKeyProvider } from '../../../core/crypto/local-provider.js';
import { createLogger } from '../../../core/logger.js';
import { createApp } from '../../../lambdas/app.js';
import { nodeClientIp, startApiServer, type ApiServer } from '../../../lambdas/local-server.js';
import { createPrometheusRequestMetrics } from '../../../lambdas/request-metrics-prometheus.js';
import type { Registry } from 'prom-client';
import { send, testAppDeps } from '../../support/api.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { histogramCount, moved, scrape } from '../../support/prometheus.js';

describe('the local API server’s metrics', () => {
  let db: TestDatabase;
  let server: ApiServer;
  let registry: Registry;
  const adminToken = `admin-${randomBytes(24).toString('base64url')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    const config = parseConfig(ApiConfigSchema, {
      DATABASE_URL: db.appUrl,
      MINIMCP_ADMIN_TOKEN: adminToken,
    });
    const cipher = createEnvelopeCipher({
      provider: await createLocalKeyProvider({
        masterKeyBase64: randomBytes(32).toString('base64'),
      }),
    });
    const requestMetrics = createPrometheusRequestMetrics();
    registry = requestMetrics.registry;
    const deps = testAppDeps({
      pool: db.app,
      config,
      cipher,
      logger: createLogger({ level: 'silent' }),
      clientIp: nodeClientIp,
    });
    server = await startApiServer(createApp({ ...deps, requestMetrics }), {
      host: '127.0.0.1',
      port: 0,
      metrics: requestMetrics.registry,
    });
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  it('counts requests by route template, method and status class, with their latency', async () => {
    const metricsUrl = `${server.url}/metrics`;
    const instance = { route: '/v1/instances/:id', method: 'GET' };
    const timed = () => histogramCount(registry, 'minimcp_api_request_duration_seconds', instance);
    const before = await scrape(metricsUrl);
    const timedBefore = await timed();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids)
      expect(
        (await send(server.url, 'GET', `/v1/instances/${id}`, { token: adminToken })).status,
        // The bootstrap admin has no instances of its own.
      ).toBe(403);
    expect((await send(server.url, 'GET', '/v1/health')).status).toBe(200);
    expect((await send(server.url, 'GET', '/v1/instances')).status).toBe(401);
    expect((await send(server.url, 'GET', '/no/such/route')).status).toBe(404);
    const after = await scrape(metricsUrl);

    expect(
      moved(before, after, 'minimcp_api_requests_total', { ...instance, status_class: '4xx' }),
    ).toBe(3);
    expect((await timed()) - timedBefore).toBe(3);
    expect(
      moved(before, after, 'minimcp_api_requests_total', {
        route: '/v1/health',
        status_class: '2xx',
      }),
    ).toBe(1);
    expect(
      moved(before, after, 'minimcp_api_requests_total', {
        route: '/v1/instances',
        status_class: '4xx',
      }),
    ).toBe(1);
    expect(moved(before, after, 'minimcp_api_requests_total', { route: 'unmatched' })).toBe(1);
    const text = await (await fetch(metricsUrl)).text();
    for (const id of ids) expect(text).not.toContain(id);
    expect(text).not.toContain('/no/such/route');
  });

  it('leaves every other method on /metrics to the app (a problem, not metrics)', async () => {
    const response = await send(server.url, 'POST', '/metrics');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
  });
});
