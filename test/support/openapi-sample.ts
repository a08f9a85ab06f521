// Reads the API's OpenAPI 3.1 document: its operations, and the smallest
// valid value of a JSON Schema, so a suite can send each route a request it
// accepts and learn what the route does with it (ownership, admin checks)
// rather than what validation says.
import { randomUUID } from 'node:crypto';

export type JsonSchema = Record<string, unknown>;

export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: JsonSchema;
}

export interface OpenApiOperation {
  summary?: string;
  parameters?: OpenApiParameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, unknown>;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

export interface Operation {
  method: string;
  /** As in the document: `/v1/instances/{id}`. */
  path: string;
  operation: OpenApiOperation;
  /** `METHOD /path`, for messages and lookups. */
  key: string;
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);

export function listOperations(doc: OpenApiDocument): Operation[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        operation,
        key: `${method.toUpperCase()} ${path}`,
      })),
  );
}

/** Names of the `{…}` parameters in a path, in order. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
}

function resolveRef(doc: OpenApiDocument, ref: string): JsonSchema {
  const prefix = '#/components/schemas/';
  const schema = ref.startsWith(prefix)
    ? doc.components?.schemas?.[ref.slice(prefix.length)]
    : undefined;
  if (!schema) throw new Error(`unresolvable $ref ${ref}`);
  return schema;
}

function matches(schema: JsonSchema, value: string): boolean {
  const { minLength, maxLength, pattern } = schema as {
    minLength?: number;
    maxLength?: number;
    pattern?: string;
  };
  if (minLength !== undefined && value.length < minLength) return false;
  if (maxLength !== undefined && value.length > maxLength) return false;
  return pattern === undefined || new RegExp(pattern, 'u').test(value);
}

function minimalString(schema: JsonSchema): string {
  const byFormat: Record<string, () => string> = {
    uuid: () => randomUUID(),
    email: () => 'someone@example.test',
    // A day ahead: date-time inputs (key expiry) are refused in the past.
    'date-time': () => new Date(Date.now() + 86_400_000).toISOString(),
    uri: () => 'https://example.test/',
    url: () => 'https://example.test/',
  };
  const length = Math.max(1, (schema.minLength as number | undefined) ?? 1);
  const candidates = [
    ...(typeof schema.format === 'string' && byFormat[schema.format]
      ? [byFormat[schema.format]!()]
      : []),
    ...(typeof schema.example === 'string' ? [schema.example] : []),
    'x'.repeat(length),
    '0'.repeat(length),
  ];
  const found = candidates.find((candidate) => matches(schema, candidate));
  if (found === undefined)
    throw new Error(`no sample string for the schema ${JSON.stringify(schema)}`);
  return found;
}

function minimalNumber(schema: JsonSchema): number {
  const { minimum, exclusiveMinimum, maximum } = schema as Record<string, number | undefined>;
  const low = minimum ?? (exclusiveMinimum !== undefined ? exclusiveMinimum + 1 : 1);
  return maximum !== undefined ? Math.min(low, maximum) : low;
}

/**
 * The smallest value the schema accepts: required properties only (or the
 * first property when none is required, since some bodies refuse an empty
 * object), minimum numbers, shortest strings that match.
 */
export function minimalValue(schema: JsonSchema, doc: OpenApiDocument, depth = 0): unknown {
  if (depth > 16) throw new Error('schema nested too deep for a sample');
  if (typeof schema.$ref === 'string')
    return minimalValue(resolveRef(doc, schema.$ref), doc, depth + 1);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  for (const union of ['anyOf', 'oneOf'] as const) {
    const options = schema[union];
    if (Array.isArray(options) && options.length > 0) {
      const usable = (options as JsonSchema[]).find((o) => o.type !== 'null') ?? options[0];
      return minimalValue(usable as JsonSchema, doc, depth + 1);
    }
  }
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type];
  const type =
    types.find((t) => t !== 'null') ?? types[0] ?? (schema.properties ? 'object' : 'string');
  switch (type) {
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
      const required = (schema.required ?? []) as string[];
      const names = required.length > 0 ? required : Object.keys(properties).slice(0, 1);
      return Object.fromEntries(
        names.map((name) => [name, minimalValue(properties[name] ?? {}, doc, depth + 1)]),
      );
    }
    case 'array':
      return Array.from({ length: (schema.minItems as number | undefined) ?? 0 }, () =>
        minimalValue((schema.items ?? {}) as JsonSchema, doc, depth + 1),
      );
    case 'integer':
    case 'number':
      return minimalNumber(schema);
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return minimalString(schema);
  }
}

/** The JSON body schema of an operation when its body is required, else undefined. */
export function requiredBodySchema(operation: OpenApiOperation): JsonSchema | undefined {
  if (operation.requestBody?.required !== true) return undefined;
  return operation.requestBody.content['application/json']?.schema;
}
