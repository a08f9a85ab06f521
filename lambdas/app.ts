// The HTTP API as one Hono app, built from its dependencies: request ids and
// access logs, the body limit, the routes, problem+json for every error, and
// the generated OpenAPI 3.1 document. lambdas/api.ts and
// lambdas/local-server.ts serve it; tests build their own.
import { randomUUID } from 'node:crypto';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppContext, AppDeps, AppEnv } from './context.js';
import { HttpProblem, problemResponse, toProblem, validationProblem } from './problem.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerInstanceRoutes } from './routes/instances.js';
import { registerKeyRoutes } from './routes/keys.js';
import { registerNodeRoutes } from './routes/nodes.js';
import { registerSettingRoutes } from './routes/settings.js';
import { registerTokenRoutes } from './routes/tokens.js';
import { registerTypeRoutes } from './routes/types.js';
import { registerUserRoutes } from './routes/users.js';
import { registerAccountRoutes } from './routes/accounts.js';
import { registerVerificationRoutes } from './routes/verification.js';
import { recordRequests } from './request-metrics.js';

export type { AppDeps, AppEnv } from './context.js';
export type App = OpenAPIHono<AppEnv>;

/** Every route module, in registration order. */
const ROUTE_MODULES: ((app: App, deps: AppDeps) => void)[] = [
  registerHealthRoutes,
  registerAuthRoutes,
  registerTokenRoutes,
  registerUserRoutes,
  registerKeyRoutes,
  registerTypeRoutes,
  registerNodeRoutes,
  registerInstanceRoutes,
  registerSettingRoutes,
  registerVerificationRoutes,
  registerAccountRoutes,
];

export const OPENAPI_PATH = '/v1/openapi.json';

/** A caller's x-request-id is echoed if it is a plain token; otherwise we mint one. */
const REQUEST_ID = /^[A-Za-z0-9._:@=+/-]{1,128}$/;

function requestIdOf(c: AppContext): string {
  const given = c.req.header('x-request-id');
  if (given && REQUEST_ID.test(given)) return given;
  // On Lambda, API Gateway's id ties our logs to its access logs.
  const gatewayId = (c.env as { requestContext?: { requestId?: unknown } } | undefined)
    ?.requestContext?.requestId;
  if (typeof gatewayId === 'string' && REQUEST_ID.test(gatewayId)) return gatewayId;
  return randomUUID();
}

async function rawInput(c: AppContext, target: string): Promise<unknown> {
  switch (target) {
    case 'json':
      // Already parsed once by the validator; hono caches the text.
      return c.req.json().catch(() => undefined);
    case 'param':
      return c.req.param();
    case 'query':
      return c.req.query();
    default:
      return undefined;
  }
}

/** Turns hono's route table into matchers, to tell 405 (path known) from 404. */
function routeMatchers(app: App): { method: string; pattern: RegExp }[] {
  return app.routes
    .filter((route) => route.method !== 'ALL')
    .map((route) => ({
      method: route.method.toUpperCase(),
      pattern: new RegExp(
        `^${route.path
          .split('/')
          .map((segment) =>
            segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
          )
          .join('/')}$`,
      ),
    }));
}

const MAX_JSON_DEPTH = 32;

/** Why a parsed JSON body cannot be stored as is, or null when it can. */
function jsonBodyFault(value: unknown, depth = 0): string | null {
  if (depth > MAX_JSON_DEPTH) return `it is nested deeper than ${MAX_JSON_DEPTH} levels`;
  if (typeof value === 'string') {
    return value.includes('\0') ? 'a string holds a NUL (\\u0000) character' : null;
  }
  if (value === null || typeof value !== 'object') return null;
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\0')) return 'a property name holds a NUL (\\u0000) character';
    const fault = jsonBodyFault(item, depth + 1);
    if (fault) return fault;
  }
  return null;
}

/**
 * Refuses JSON that PostgreSQL cannot hold (NUL characters in text or jsonb)
 * or that is absurdly deep, before any route sees it. Unparsable bodies pass
 * through: the route's validator answers those with malformed-json.
 */
const jsonGuard: MiddlewareHandler<AppEnv> = async (c, next) => {
  const contentType = c.req.header('content-type');
  if (contentType && /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(contentType)) {
    let parsed: unknown;
    let readable = true;
    try {
      parsed = await c.req.json();
    } catch {
      // Not JSON: left to the validator, which owns that answer.
      readable = false;
    }
    const fault = readable ? jsonBodyFault(parsed) : null;
    if (fault)
      throw new HttpProblem(400, 'validation-failed', `The JSON body is refused: ${fault}.`);
  }
  await next();
};

/**
 * What of an unexpected error goes to the log: names, codes, messages and the
 * stack, but not the enumerable extras (slonik attaches the query's bound
 * values, which can hold hashes and ciphertexts).
 */
export function errorForLog(error: unknown, depth = 0): Record<string, unknown> {
  // Duck-typed: errors from another realm (node internals under a VM) are not `instanceof Error`.
  if (typeof error !== 'object' || error === null) return { thrown: typeof error };
  const { name, message, code, stack, cause } = error as Partial<Error> & { code?: unknown };
  return {
    type: typeof name === 'string' ? name : 'unknown',
    message: typeof message === 'string' ? message : undefined,
    ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
    ...(depth === 0 && typeof stack === 'string' ? { stack } : {}),
    ...(cause !== undefined && depth < 3 ? { cause: errorForLog(cause, depth + 1) } : {}),
  };
}

export function createApp(deps: AppDeps): App {
  const app: App = new OpenAPIHono<AppEnv>({
    strict: true,
    defaultHook: async (result, c) => {
      if (!result.success) {
        throw validationProblem(result.target, result.error, await rawInput(c, result.target));
      }
    },
  });

  const handleError = (error: unknown, c: AppContext): Response => {
    const requestId = c.get('requestId') ?? randomUUID();
    const problem = toProblem(error, { instance: c.req.path, requestId });
    if (problem.unexpected) {
      (c.get('log') ?? deps.logger).error(
        { err: errorForLog(error), method: c.req.method, path: c.req.path, status: problem.status },
        'request failed',
      );
    }
    return problemResponse(problem, requestId);
  };

  // First: it sees every answer as sent, problems included.
  if (deps.requestMetrics) app.use('*', recordRequests(deps.requestMetrics));

  app.use('*', async (c, next) => {
    const requestId = requestIdOf(c);
    const log = deps.logger.child({ requestId });
    c.set('requestId', requestId);
    c.set('log', log);
    const started = performance.now();
    try {
      await next();
    } catch (error) {
      // hono hands only `instanceof Error` throws to onError; anything else lands here.
      c.res = handleError(error, c);
    }
    c.res.headers.set('x-request-id', requestId);
    const principal = c.get('principal');
    log.info(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
        ...(principal?.kind === 'user' ? { userId: principal.userId } : {}),
        ...(principal?.kind === 'bootstrap-admin' ? { principal: 'bootstrap-admin' } : {}),
      },
      'request',
    );
  });

  app.use(
    '*',
    bodyLimit({
      maxSize: deps.config.MINIMCP_MAX_BODY_BYTES,
      onError: () => {
        throw new HttpProblem(
          413,
          'payload-too-large',
          `The request body is larger than ${deps.config.MINIMCP_MAX_BODY_BYTES} bytes.`,
        );
      },
    }),
  );

  app.use('*', jsonGuard);

  for (const register of ROUTE_MODULES) register(app, deps);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A user API token (mmu_…) from POST /v1/auth/token, or the bootstrap admin token.',
  });
  let openApiDocument: unknown;
  app.get(OPENAPI_PATH, (c) => {
    openApiDocument ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'MiniMCP API',
        version: '1',
        description: 'Host MCP servers on demand. Errors are application/problem+json (RFC 9457).',
      },
      ...(deps.config.MINIMCP_PUBLIC_API_URL
        ? { servers: [{ url: deps.config.MINIMCP_PUBLIC_API_URL }] }
        : {}),
    });
    return c.json(openApiDocument as object, 200);
  });

  let matchers: ReturnType<typeof routeMatchers> | undefined;
  app.notFound((c) => {
    matchers ??= routeMatchers(app);
    const allowed = new Set(
      matchers.filter((m) => m.pattern.test(c.req.path)).map((m) => m.method),
    );
    if (allowed.has('GET')) allowed.add('HEAD');
    const problem =
      allowed.size > 0
        ? new HttpProblem(
            405,
            'method-not-allowed',
            `${c.req.method} is not allowed on ${c.req.path}; allowed: ${[...allowed].join(', ')}.`,
            { Allow: [...allowed].join(', ') },
          )
        : new HttpProblem(404, 'route-not-found', `There is no route ${c.req.path}.`);
    const requestId = c.get('requestId') ?? randomUUID();
    return problemResponse(toProblem(problem, { instance: c.req.path, requestId }), requestId);
  });

  app.onError(handleError);

  return app;
}
