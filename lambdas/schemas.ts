// Pieces of the OpenAPI contract that several routes share: the problem body,
// path parameters, the bearer security requirement, and error responses.
import { z } from '@hono/zod-openapi';
import { PROBLEM_CONTENT_TYPE } from './problem.js';

export const ProblemSchema = z
  .object({
    type: z.url().openapi({ example: 'https://minimcp.dev/problems/validation-failed' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().openapi({ description: 'The request path.' }),
    request_id: z.string().openapi({ description: 'Also in the x-request-id header.' }),
    errors: z
      .array(z.object({ field: z.string(), message: z.string() }))
      .optional()
      .openapi({ description: 'Validation failures, one per field.' }),
  })
  .openapi('Problem');

const DESCRIPTIONS: Record<number, string> = {
  400: 'The request is not valid (body, path or query).',
  401: 'Missing, invalid, expired or revoked bearer token.',
  403: 'Authenticated, but not allowed (admin only).',
  404: 'No such resource (or not yours).',
  409: 'Conflicts with the current state.',
  413: 'The body is larger than allowed.',
  415: 'The body is not application/json.',
  429: 'Too many requests; see Retry-After.',
  503: 'A dependency is unavailable; see Retry-After.',
};

type ErrorStatus = keyof typeof DESCRIPTIONS & number;

/** `responses` entries for the problems a route can answer with. */
export function problems<const S extends readonly ErrorStatus[]>(...statuses: S) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: DESCRIPTIONS[status] ?? 'Error',
        content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
      },
    ]),
  ) as {
    [K in S[number]]: {
      description: string;
      content: { [PROBLEM_CONTENT_TYPE]: { schema: typeof ProblemSchema } };
    };
  };
}

export const BEARER = [{ bearer: [] }];

/** The name of an MCP type, as it appears in paths. */
export const TypeName = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,49}$/,
    'must be lowercase letters, digits, _ or -, starting with a letter',
  )
  .openapi({ example: 'github' });

export const IdParam = z.object({
  id: z.uuid().openapi({
    param: { name: 'id', in: 'path' },
    example: '2f1c4b8e-3d0a-4c55-9a39-7c7e5d3b1a20',
  }),
});

export const TypeParam = z.object({
  type: TypeName.openapi({ param: { name: 'type', in: 'path' } }),
});

export const NameParam = z.object({
  name: TypeName.openapi({ param: { name: 'name', in: 'path' } }),
});

export const Timestamp = z.iso.datetime({ offset: true });

export const iso = (date: Date): string => date.toISOString();
export const isoOrNull = (date: Date | null): string | null => (date ? date.toISOString() : null);

/** JSON bodies; `required` so a missing or non-JSON body is refused, not read as {}. */
export function jsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return {
    required: true,
    ...(description ? { description } : {}),
    content: { 'application/json': { schema } },
  };
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } };
}
