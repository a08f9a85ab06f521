// An instance's config, checked against its type: the type's config_template
// gives the keys and their defaults; a config_schema, when the type has one,
// decides instead. The schema may use this JSON Schema subset:
//   type (object, string, number, integer, boolean, array, null, or a list),
//   properties, required, additionalProperties (boolean or schema), enum, const,
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers),
//   minLength, maxLength, pattern, items (one schema), minItems, maxItems,
//   and the annotations $schema, $id, $comment, title, description, default,
//   examples, deprecated, readOnly, writeOnly.
// Any other keyword refuses the config (deny on doubt) and names the keyword.
import type { JsonObject } from '../../core/domain.js';

export type ConfigResult = { ok: true; value: JsonObject } | { ok: false; message: string };

/** Serialized size above which a config is refused: it travels in every start. */
export const MAX_CONFIG_BYTES = 16 * 1024;

const ANNOTATIONS = new Set([
  '$schema',
  '$id',
  '$comment',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
]);
const KEYWORDS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'enum',
  'const',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'items',
  'minItems',
  'maxItems',
]);
const JSON_TYPES = new Set(['object', 'string', 'number', 'integer', 'boolean', 'array', 'null']);

type JsonType = 'object' | 'string' | 'number' | 'boolean' | 'array' | 'null';

function jsonTypeOf(value: unknown): JsonType | undefined {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'number':
      return Number.isFinite(value) ? 'number' : undefined;
    case 'boolean':
      return 'boolean';
    case 'object':
      return 'object';
    default:
      return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return jsonTypeOf(value) === 'object';
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Deep equality of JSON values (for enum and const). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const ta = jsonTypeOf(a);
  if (ta !== jsonTypeOf(b)) return false;
  if (ta === 'array') {
    const x = a as unknown[];
    const y = b as unknown[];
    return x.length === y.length && x.every((item, i) => jsonEqual(item, y[i]));
  }
  if (ta === 'object') {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    const keys = Object.keys(x);
    return (
      keys.length === Object.keys(y).length && keys.every((k) => k in y && jsonEqual(x[k], y[k]))
    );
  }
  return false;
}

function matchesType(value: unknown, type: string): boolean {
  const actual = jsonTypeOf(value);
  if (type === 'integer') return actual === 'number' && Number.isInteger(value);
  return actual === type;
}

type SchemaObject = Record<string, unknown>;

/** Problems of `value` against `schema` at `path`; the first few are enough to act on. */
function check(schema: unknown, value: unknown, path: string, problems: string[]): void {
  if (problems.length >= 10) return;
  if (schema === true) return;
  if (schema === false) {
    problems.push(`${path}: is not allowed`);
    return;
  }
  if (!isPlainObject(schema)) {
    problems.push(`${path}: the type's config_schema is not a JSON schema object here`);
    return;
  }
  // A schema we cannot read, or a value of the wrong type, makes the rest meaningless.
  if (!checkKeywords(schema, path, problems)) return;
  if (!checkType(schema, value, path, problems)) return;
  checkValue(schema, value, path, problems);
  if (typeof value === 'number') checkNumber(schema, value, path, problems);
  if (typeof value === 'string') checkString(schema, value, path, problems);
  if (Array.isArray(value)) checkArray(schema, value, path, problems);
  if (isPlainObject(value)) checkObject(schema, value, path, problems);
}

/** False (with a problem) when the schema uses a keyword we do not implement. */
function checkKeywords(schema: SchemaObject, path: string, problems: string[]): boolean {
  for (const keyword of Object.keys(schema)) {
    if (!KEYWORDS.has(keyword) && !ANNOTATIONS.has(keyword)) {
      problems.push(
        `${path}: the type's config_schema uses "${keyword}", which MiniMCP does not support; ask an admin to express it with the supported keywords`,
      );
      return false;
    }
  }
  return true;
}

/** False (with a problem) when "type" is invalid or the value is not of it. */
function checkType(
  schema: SchemaObject,
  value: unknown,
  path: string,
  problems: string[],
): boolean {
  if (schema.type === undefined) return true;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (!types.every((t) => typeof t === 'string' && JSON_TYPES.has(t))) {
    problems.push(`${path}: the type's config_schema has an invalid "type"`);
    return false;
  }
  if (!types.some((t) => matchesType(value, t as string))) {
    problems.push(`${path}: must be ${types.join(' or ')}, got ${show(value)}`);
    return false;
  }
  return true;
}

/** "enum" and "const". */
function checkValue(schema: SchemaObject, value: unknown, path: string, problems: string[]): void {
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => jsonEqual(option, value)))
    problems.push(
      `${path}: must be one of ${schema.enum.map(show).join(', ')}, got ${show(value)}`,
    );
  if ('const' in schema && !jsonEqual(schema.const, value))
    problems.push(`${path}: must be ${show(schema.const)}, got ${show(value)}`);
}

function checkNumber(schema: SchemaObject, value: number, path: string, problems: string[]): void {
  const { minimum, maximum, exclusiveMinimum, exclusiveMaximum } = schema;
  if (typeof minimum === 'number' && value < minimum)
    problems.push(`${path}: must be ≥ ${minimum}, got ${value}`);
  if (typeof maximum === 'number' && value > maximum)
    problems.push(`${path}: must be ≤ ${maximum}, got ${value}`);
  if (typeof exclusiveMinimum === 'number' && value <= exclusiveMinimum)
    problems.push(`${path}: must be > ${exclusiveMinimum}, got ${value}`);
  if (typeof exclusiveMaximum === 'number' && value >= exclusiveMaximum)
    problems.push(`${path}: must be < ${exclusiveMaximum}, got ${value}`);
}

function checkString(schema: SchemaObject, value: string, path: string, problems: string[]): void {
  const length = [...value].length;
  if (typeof schema.minLength === 'number' && length < schema.minLength)
    problems.push(`${path}: must be at least ${schema.minLength} characters, got ${length}`);
  if (typeof schema.maxLength === 'number' && length > schema.maxLength)
    problems.push(`${path}: must be at most ${schema.maxLength} characters, got ${length}`);
  if (typeof schema.pattern === 'string') {
    let pattern: RegExp;
    try {
      pattern = new RegExp(schema.pattern, 'u');
    } catch {
      problems.push(`${path}: the type's config_schema has an invalid pattern`);
      return;
    }
    if (!pattern.test(value))
      problems.push(`${path}: must match ${schema.pattern}, got ${show(value)}`);
  }
}

function checkArray(
  schema: SchemaObject,
  value: readonly unknown[],
  path: string,
  problems: string[],
): void {
  if (typeof schema.minItems === 'number' && value.length < schema.minItems)
    problems.push(`${path}: must have at least ${schema.minItems} items, got ${value.length}`);
  if (typeof schema.maxItems === 'number' && value.length > schema.maxItems)
    problems.push(`${path}: must have at most ${schema.maxItems} items, got ${value.length}`);
  if (schema.items !== undefined)
    value.forEach((item, i) => check(schema.items, item, `${path}[${i}]`, problems));
}

function checkObject(
  schema: SchemaObject,
  value: Record<string, unknown>,
  path: string,
  problems: string[],
): void {
  const properties = isPlainObject(schema.properties) ? schema.properties : {};
  if (Array.isArray(schema.required))
    for (const key of schema.required)
      if (typeof key === 'string' && !(key in value)) problems.push(`${path}.${key}: is required`);
  for (const [key, item] of Object.entries(value)) {
    if (key in properties) check(properties[key], item, `${path}.${key}`, problems);
    else if (schema.additionalProperties === false)
      problems.push(
        `${path}.${key}: unknown key (known keys: ${Object.keys(properties).join(', ') || 'none'})`,
      );
    else if (schema.additionalProperties !== undefined)
      check(schema.additionalProperties, item, `${path}.${key}`, problems);
  }
}

/**
 * The config an instance of the type runs with: the template's defaults,
 * overridden by the caller's keys, then checked. Without a schema, only the
 * template's keys are accepted, each with the JSON type of its default.
 */
export function resolveInstanceConfig(
  type: { name: string; config_template: JsonObject; config_schema: JsonObject | null },
  given: JsonObject | undefined,
): ConfigResult {
  const requested = given ?? {};
  if (!isPlainObject(requested)) return { ok: false, message: 'config must be a JSON object' };
  if (JSON.stringify(requested).length > MAX_CONFIG_BYTES)
    return { ok: false, message: `config must be at most ${MAX_CONFIG_BYTES} bytes of JSON` };

  if (type.config_schema === null) {
    const known = Object.keys(type.config_template);
    const problems: string[] = [];
    for (const [key, value] of Object.entries(requested)) {
      if (!(key in type.config_template)) {
        problems.push(
          `config.${key}: unknown key for type ${type.name} (known keys: ${known.join(', ') || 'none'})`,
        );
        continue;
      }
      const expected = jsonTypeOf(type.config_template[key]);
      const actual = jsonTypeOf(value);
      if (expected !== 'null' && actual !== expected)
        problems.push(
          `config.${key}: must be ${expected} like the type's default, got ${show(value)}`,
        );
    }
    if (problems.length > 0) return { ok: false, message: problems.join('; ') };
    return { ok: true, value: { ...type.config_template, ...requested } };
  }

  const schema = type.config_schema;
  const defaults: JsonObject = {};
  if (isPlainObject(schema.properties))
    for (const [key, property] of Object.entries(schema.properties))
      if (isPlainObject(property) && 'default' in property) defaults[key] = property.default;
  const merged = { ...defaults, ...type.config_template, ...requested };
  const problems: string[] = [];
  check({ type: 'object', ...schema }, merged, 'config', problems);
  if (problems.length > 0) return { ok: false, message: problems.join('; ') };
  return { ok: true, value: merged };
}
