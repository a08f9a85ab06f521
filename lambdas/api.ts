// The API's Lambda entry point (API Gateway HTTP API, payload v2). Config
// (env + SSM), the pool and the app are built at the first invocation and
// kept for the container's life: the one module-level cache we allow. Each
// invocation's request metrics are flushed as CloudWatch EMF when it ends.
import '../core/polyfills.js';
import {
  getConnInfo,
  handle,
  type APIGatewayProxyResult,
  type LambdaContext,
  type LambdaEvent,
} from 'hono/aws-lambda';
import { ApiConfigSchema, loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { createApp, errorForLog } from './app.js';
import { problemResponse, toProblem } from './problem.js';
import { createRuntime } from './runtime.js';
import { createEmfRequestMetrics } from './request-metrics-emf.js';

type LambdaHandler = (
  event: LambdaEvent,
  context?: LambdaContext,
) => Promise<APIGatewayProxyResult>;

let ready: Promise<LambdaHandler> | undefined;

async function build(): Promise<LambdaHandler> {
  const config = await loadConfig(ApiConfigSchema, process.env);
  const requestMetrics = createEmfRequestMetrics();
  const runtime = await createRuntime(config, {
    clientIp: (c) => getConnInfo(c).remote.address,
    requestMetrics,
  });
  const app = handle(createApp(runtime.deps)) as LambdaHandler;
  return async (event, context) => {
    try {
      return await app(event, context);
    } finally {
      // Per invocation: a frozen container would hold its metrics until the next one.
      requestMetrics.flush();
    }
  };
}

/** Answers in Lambda's shape when the app itself could not be built. */
async function initFailure(error: unknown, event: LambdaEvent): Promise<APIGatewayProxyResult> {
  const requestId =
    (event.requestContext as { requestId?: string } | undefined)?.requestId ?? 'unknown';
  const path = 'rawPath' in event ? event.rawPath : 'path' in event ? event.path : '/';
  createLogger().error({ err: errorForLog(error), requestId }, 'api initialisation failed');
  const response = problemResponse(toProblem(error, { instance: path, requestId }), requestId);
  return {
    statusCode: response.status,
    headers: Object.fromEntries(response.headers),
    body: await response.text(),
    isBase64Encoded: false,
  };
}

export async function handler(
  event: LambdaEvent,
  context?: LambdaContext,
): Promise<APIGatewayProxyResult> {
  // A failed start is not cached: the next invocation tries again.
  ready ??= build().catch((error: unknown) => {
    ready = undefined;
    throw error;
  });
  let handle: LambdaHandler;
  try {
    handle = await ready;
  } catch (error) {
    return initFailure(error, event);
  }
  return handle(event, context);
}
