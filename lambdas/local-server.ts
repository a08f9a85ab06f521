// Serves the API app on a local port (`npm run api`; the local stack and the
// tests use startApiServer), with its Prometheus metrics at GET /metrics.
// Requests node rejects before the app sees them (oversized headers, unknown
// methods) still get problem+json.
import '../core/polyfills.js';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { createAdaptorServer } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { ApiConfigSchema, loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { createApp, type App } from './app.js';
import type { AppContext } from './context.js';
import { HttpProblem, PROBLEM_CONTENT_TYPE, toProblem } from './problem.js';
import { createRuntime } from './runtime.js';
import type { Registry } from 'prom-client';
import {
  createPrometheusRequestMetrics,
  withMetricsEndpoint,
} from './request-metrics-prometheus.js';

export interface ApiServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export const nodeClientIp = (c: AppContext): string | undefined => getConnInfo(c).remote.address;

/** The raw answer for a request node's parser refused (no app, no request id from the client). */
function clientErrorResponse(error: NodeJS.ErrnoException): string {
  const headerTooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const problem = headerTooLarge
    ? new HttpProblem(431, 'header-too-large', 'The request headers are too large.')
    : new HttpProblem(400, 'bad-request', 'The request could not be parsed as HTTP/1.1.');
  const requestId = randomUUID();
  const body = JSON.stringify(toProblem(problem, { instance: '/', requestId }).body);
  const reason = headerTooLarge ? 'Request Header Fields Too Large' : 'Bad Request';
  return (
    `HTTP/1.1 ${problem.status} ${reason}\r\n` +
    `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `x-request-id: ${requestId}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

export async function startApiServer(
  app: App,
  options: { host: string; port: number; metrics?: Registry },
): Promise<ApiServer> {
  const fetch = options.metrics ? withMetricsEndpoint(app.fetch, options.metrics) : app.fetch;
  const server = createAdaptorServer({ fetch }) as Server;
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // A socket already written to or gone cannot take an answer.
    if (socket.writable && !socket.writableEnded && error.code !== 'ECONNRESET') {
      socket.end(clientErrorResponse(error));
    } else {
      socket.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function main(): Promise<void> {
  const config = await loadConfig(ApiConfigSchema, process.env);
  const logger = createLogger({ level: config.LOG_LEVEL });
  const requestMetrics = createPrometheusRequestMetrics();
  const runtime = await createRuntime(config, { clientIp: nodeClientIp, logger, requestMetrics });
  const server = await startApiServer(createApp(runtime.deps), {
    host: config.MINIMCP_API_HOST,
    port: config.MINIMCP_API_PORT,
    metrics: requestMetrics.registry,
  });
  logger.info({ url: server.url }, 'api listening');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'api stopping');
    try {
      await server.close();
    } finally {
      await runtime.close();
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    createLogger().fatal(
      { err: error instanceof Error ? error.message : String(error) },
      'api failed to start',
    );
    process.exitCode = 1;
  });
}
