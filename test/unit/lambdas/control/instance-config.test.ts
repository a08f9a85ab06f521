// An instance's config against its type's template or JSON-schema subset, and
// the opaque page cursors: pure logic, no database.
import { describe, expect, it } from '@jest/globals';
import { decodeCursor, encodeCursor } from '../../../../lambdas/control/cursor.js';
import {
  MAX_CONFIG_BYTES,
  resolveInstanceConfig,
} from '../../../../lambdas/control/instance-config.js';

const withTemplate = (config_template: Record<string, unknown>) => ({
  name: 't',
  config_template,
  config_schema: null,
});
const withSchema = (config_schema: Record<string, unknown>) => ({
  name: 't',
  config_template: {},
  config_schema,
});

describe('config against a template', () => {
  it('merges the caller’s keys over the defaults', () => {
    expect(resolveInstanceConfig(withTemplate({ a: 'x', b: 1 }), { b: 2 })).toEqual({
      ok: true,
      value: { a: 'x', b: 2 },
    });
  });

  it('refuses unknown keys and values of another JSON type, naming each', () => {
    const result = resolveInstanceConfig(withTemplate({ a: 'x', b: [1] }), { c: 1, b: {} });
    expect(result).toEqual({
      ok: false,
      message:
        "config.c: unknown key for type t (known keys: a, b); config.b: must be array like the type's default, got {}",
    });
  });

  it('accepts any value for a key whose default is null', () => {
    expect(resolveInstanceConfig(withTemplate({ a: null }), { a: { deep: true } }).ok).toBe(true);
  });

  it('refuses a config larger than the cap', () => {
    const result = resolveInstanceConfig(withTemplate({ a: '' }), {
      a: 'x'.repeat(MAX_CONFIG_BYTES),
    });
    expect(result).toEqual({
      ok: false,
      message: `config must be at most ${MAX_CONFIG_BYTES} bytes of JSON`,
    });
  });
});

describe('config against a schema', () => {
  const schema = withSchema({
    properties: {
      n: { type: 'integer', exclusiveMinimum: 0 },
      tags: { type: 'array', items: { type: 'string', minLength: 2 }, maxItems: 2 },
      id: { type: 'string', pattern: '^[a-z]+$' },
      kind: { const: 'k' },
    },
    additionalProperties: { type: 'boolean' },
  });

  it('accepts what matches, extra keys checked by additionalProperties', () => {
    expect(
      resolveInstanceConfig(schema, { n: 3, tags: ['ab'], id: 'abc', kind: 'k', flag: true }),
    ).toEqual({ ok: true, value: { n: 3, tags: ['ab'], id: 'abc', kind: 'k', flag: true } });
  });

  it('says what is wrong where, with the value sent', () => {
    const result = resolveInstanceConfig(schema, {
      n: 1.5,
      tags: ['a', 'bb', 'cc'],
      id: 'ABC',
      kind: 'z',
      flag: 'yes',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.message.split('; ')).toEqual([
      'config.n: must be integer, got 1.5',
      'config.tags: must have at most 2 items, got 3',
      'config.tags[0]: must be at least 2 characters, got 1',
      'config.id: must match ^[a-z]+$, got "ABC"',
      'config.kind: must be "k", got "z"',
      'config.flag: must be boolean, got "yes"',
    ]);
  });

  it('denies on doubt: an unsupported keyword or a broken pattern refuses the config', () => {
    expect(resolveInstanceConfig(withSchema({ allOf: [] }), {})).toEqual({
      ok: false,
      message:
        'config: the type\'s config_schema uses "allOf", which MiniMCP does not support; ask an admin to express it with the supported keywords',
    });
    const broken = withSchema({ properties: { a: { type: 'string', pattern: '(' } } });
    expect(resolveInstanceConfig(broken, { a: 'x' })).toEqual({
      ok: false,
      message: "config.a: the type's config_schema has an invalid pattern",
    });
  });
});

describe('page cursors', () => {
  const position = {
    at: '2031-06-01T09:00:00.123456Z',
    id: '6f1c3c2e-8d1b-4c39-9a55-3c1f0e7b2a10',
  };

  it('round-trip for the list they were issued for', () => {
    expect(decodeCursor('events', encodeCursor('events', position))).toEqual({
      ok: true,
      value: position,
    });
  });

  it('are refused for another list, altered, or made up', () => {
    const cursor = encodeCursor('events', position);
    for (const [kind, text] of [
      ['logs', cursor],
      ['events', cursor.slice(0, -2)],
      ['events', 'not a cursor!'],
      ['events', Buffer.from('{"k":"events","t":"now","i":"x"}').toString('base64url')],
    ] as const)
      expect(decodeCursor(kind, text).ok).toBe(false);
  });
});
