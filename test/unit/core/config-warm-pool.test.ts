// MINIMCP_WARM_POOL: how many pre-spawned children the agent keeps per type.
// @see docs/decisions/0006-warm-pool.md
import { describe, expect, it } from '@jest/globals';
import { AgentConfigSchema, ConfigError, parseConfig } from '../../../core/config.js';

const parse = (value?: string) =>
  parseConfig(AgentConfigSchema, {
    DATABASE_URL: 'postgres://agent@localhost/minimcp',
    ...(value === undefined ? {} : { MINIMCP_WARM_POOL: value }),
  }).MINIMCP_WARM_POOL;

describe('MINIMCP_WARM_POOL', () => {
  it('pools every built-in type by default', () => {
    expect(parse()).toEqual({ demo: 2, github: 1, gmail: 1, figma: 1 });
  });

  it('reads TYPE:COUNT pairs', () => {
    expect(parse('demo:3, github:0,my-type:1')).toEqual({ demo: 3, github: 0, 'my-type': 1 });
  });

  it('turns the pool off with 0', () => {
    expect(parse('0')).toEqual({});
  });

  it.each(['demo', 'demo:two', 'demo:17', 'Demo:1', 'demo:1;github:1'])(
    'rejects %s and says what it expects',
    (value) => {
      expect(() => parse(value)).toThrow(ConfigError);
      expect(() => parse(value)).toThrow(/MINIMCP_WARM_POOL: must be TYPE:COUNT pairs/);
    },
  );
});
