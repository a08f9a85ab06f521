// Every error reaches a client as RFC 9457 problem+json with a stable type,
// and nothing internal (message of a 500, SQL, stack) leaks.
import { describe, expect, it } from '@jest/globals';
import { HTTPException } from 'hono/http-exception';
import { ConnectionError } from 'slonik';
import { z } from 'zod';
import {
  AgentUnavailableError,
  ConflictError,
  AgentCallError,
  DecryptionError,
  ForbiddenError,
  InstanceStartError,
  KeyProviderUnavailableError,
  McpServerStartError,
  NotFoundError,
  RateLimitedError,
  UnauthenticatedError,
  ValidationError,
} from '../../../core/errors.js';
import {
  HttpProblem,
  isDatabaseUnavailable,
  problemResponse,
  PROBLEM_TYPE_BASE,
  toProblem,
  validationProblem,
} from '../../../lambdas/problem.js';

const request = { instance: '/v1/things', requestId: 'req-1' };

describe('toProblem', () => {
  it.each([
    [new ValidationError('name is bad'), 400, 'validation-failed'],
    [new UnauthenticatedError('no token'), 401, 'unauthenticated'],
    [new ForbiddenError('admins only'), 403, 'forbidden'],
    [new NotFoundError('no such key'), 404, 'not-found'],
    [new ConflictError('exists'), 409, 'conflict'],
    [new AgentUnavailableError('agent down'), 503, 'agent-unavailable'],
    [new KeyProviderUnavailableError('kms throttled'), 503, 'key-provider-unavailable'],
    [
      new InstanceStartError('the instance could not start: the stored key could not be decrypted'),
      502,
      'instance-start-failed',
    ],
  ])('maps %p to %i %s with its message as detail', (error, status, slug) => {
    const problem = toProblem(error, request);
    expect(problem.status).toBe(status);
    expect(problem.body).toEqual({
      type: PROBLEM_TYPE_BASE + slug,
      title: expect.any(String),
      status,
      detail: error.message,
      instance: '/v1/things',
      request_id: 'req-1',
    });
  });

  it('asks for bearer authentication on 401', () => {
    expect(toProblem(new UnauthenticatedError('x'), request).headers).toEqual({
      'WWW-Authenticate': 'Bearer realm="minimcp"',
    });
  });

  it('gives 429 a Retry-After and 503 a default one', () => {
    expect(toProblem(new RateLimitedError('slow down', 7), request).headers['Retry-After']).toBe(
      '7',
    );
    expect(toProblem(new AgentUnavailableError('x'), request).headers['Retry-After']).toBe('5');
  });

  it('hides the message of a 500 domain error and marks it for the log', () => {
    const problem = toProblem(new DecryptionError('auth tag mismatch for key 1234'), request);
    expect(problem.status).toBe(500);
    expect(problem.body.detail).not.toContain('1234');
    expect(problem.unexpected).toBe(true);
  });

  it('gives any other 502 its title as detail, not its message', () => {
    const problem = toProblem(new AgentCallError('grpc INTERNAL: at Object.<anonymous>'), request);
    expect(problem.status).toBe(502);
    expect(problem.body.detail).toBe('The node agent answered with an error');
    expect(problem.unexpected).toBe(false);
  });

  it('answers unknown errors with a generic 500 that quotes the request id only', () => {
    const problem = toProblem(new Error('relation "users" ... SELECT password_hash'), request);
    expect(problem.status).toBe(500);
    expect(problem.body.type).toBe(PROBLEM_TYPE_BASE + 'internal-error');
    expect(problem.body.detail).toContain('req-1');
    expect(problem.body.detail).not.toMatch(/SELECT|users|password/);
    expect(problem.unexpected).toBe(true);
  });

  it('maps start failures by their class, whatever their message says', () => {
    const agentSaid = new InstanceStartError(
      'the instance could not start: the MCP server exited before answering initialize (bad JSON config)',
      { instanceId: 'i-1', agentCode: 'CHILD_EXITED' },
    );
    expect(toProblem(agentSaid, request)).toMatchObject({
      status: 502,
      body: { type: PROBLEM_TYPE_BASE + 'instance-start-failed', detail: agentSaid.message },
    });
    const serverStart = new McpServerStartError('MCP server x did not answer initialize', {
      label: 'x',
      reason: 'handshake_timeout',
    });
    expect(toProblem(serverStart, request)).toMatchObject({
      status: 502,
      body: {
        type: PROBLEM_TYPE_BASE + 'mcp-server-start-failed',
        detail: 'The MCP server could not start',
      },
    });
  });

  it('answers a 400 from hono (its body validator) as malformed-json by its status, not its message', () => {
    const problem = toProblem(
      new HTTPException(400, { message: 'Unexpected end of input' }),
      request,
    );
    expect(problem.status).toBe(400);
    expect(problem.body.type).toBe(PROBLEM_TYPE_BASE + 'malformed-json');
  });

  it('maps hono HTTP exceptions: malformed JSON, 413, 415', () => {
    const malformed = new HTTPException(400, { message: 'Malformed JSON in request body' });
    expect(toProblem(malformed, request).body.type).toBe(PROBLEM_TYPE_BASE + 'malformed-json');
    expect(toProblem(new HTTPException(413), request).body.type).toBe(
      PROBLEM_TYPE_BASE + 'payload-too-large',
    );
    expect(toProblem(new HTTPException(415), request).body.type).toBe(
      PROBLEM_TYPE_BASE + 'unsupported-media-type',
    );
  });

  it('maps database connection failures to 503 database-unavailable with Retry-After', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
    });
    for (const error of [
      new ConnectionError('could not connect', { cause: refused }),
      new Error('wrapped', { cause: refused }),
      Object.assign(new Error('the database system is shutting down'), { code: '57P03' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
    ]) {
      expect(isDatabaseUnavailable(error)).toBe(true);
      const problem = toProblem(error, request);
      expect(problem.status).toBe(503);
      expect(problem.body.type).toBe(PROBLEM_TYPE_BASE + 'database-unavailable');
      expect(problem.headers['Retry-After']).toBe('5');
    }
    expect(isDatabaseUnavailable(Object.assign(new Error('dup'), { code: '23505' }))).toBe(false);
  });
});

describe('validationProblem', () => {
  const Schema = z.strictObject({
    email: z.email(),
    password: z.string().min(12),
    key: z.string().max(3),
    count: z.number().int(),
  });

  it('lists every field with its message and the value that was sent', () => {
    const input = {
      email: 'nope',
      password: 'tiny-secret',
      key: 'sk-long-secret',
      count: 'x',
      extra: 1,
    };
    const error = Schema.safeParse(input).error!;
    const problem = validationProblem('json', error, input);
    expect(problem.status).toBe(400);
    expect(problem.slug).toBe('validation-failed');
    const fields = problem.errors!.map((e) => e.field).sort();
    expect(fields).toEqual(['body', 'body.count', 'body.email', 'body.key', 'body.password']);
    expect(problem.detail).toContain('body.email: Invalid email address (got "nope")');
    expect(problem.detail).toContain('(got "x")');
    expect(problem.detail).toContain('Unrecognized key: "extra"');
  });

  it('never echoes the value of a password, key or token field', () => {
    const input = { email: 'a@b.co', password: 'tiny-secret', key: 'sk-long-secret', count: 1 };
    const problem = validationProblem('json', Schema.safeParse(input).error!, input);
    expect(problem.detail).not.toContain('tiny-secret');
    expect(problem.detail).not.toContain('sk-long-secret');
    expect(problem.detail).toContain('body.password');
  });

  it('shortens long values', () => {
    const input = { email: 'x'.repeat(500) };
    const problem = validationProblem(
      'json',
      z.object({ email: z.email() }).safeParse(input).error!,
      input,
    );
    expect(problem.detail.length).toBeLessThan(200);
  });
});

describe('problemResponse', () => {
  it('is application/problem+json, not cached, with the request id header', async () => {
    const response = problemResponse(
      toProblem(new HttpProblem(404, 'route-not-found', 'There is no route /x.'), request),
      'req-1',
    );
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('x-request-id')).toBe('req-1');
    expect(await response.json()).toMatchObject({ title: 'No such route', status: 404 });
  });
});
