// MINIMCP_CHILD_UIDS: the user ids MCP servers run as, one each (agent/child/child-users.ts).
import { describe, expect, it } from '@jest/globals';
import { AgentConfigSchema, ConfigError, parseConfig } from '../../../core/config.js';

const parse = (value?: string) =>
  parseConfig(AgentConfigSchema, {
    DATABASE_URL: 'postgres://agent@localhost/minimcp',
    ...(value === undefined ? {} : { MINIMCP_CHILD_UIDS: value }),
  }).MINIMCP_CHILD_UIDS;

describe('MINIMCP_CHILD_UIDS', () => {
  it('is off by default: children run as the agent user', () => {
    expect(parse()).toBeUndefined();
  });

  it('reads START-END', () => {
    expect(parse('200000-200999')).toEqual({ start: 200000, end: 200999 });
  });

  it.each(['1000-1099', '65534-65600', '99999-100100'])(
    'refuses %s: real accounts (ec2-user, nobody) live below 100000',
    (value) => {
      expect(() => parse(value)).toThrow(ConfigError);
      expect(() => parse(value)).toThrow(/MINIMCP_CHILD_UIDS/);
    },
  );

  it.each(['200999-200000', '200000', 'abc-def', '200000-4294967295'])('refuses %s', (value) => {
    expect(() => parse(value)).toThrow(ConfigError);
  });
});
