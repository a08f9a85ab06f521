// MINIMCP_PORT_RANGE is optional: unset, the agent takes its pool from the
// port.range_* system settings (agent/node/node-registration.ts).
import { describe, expect, it } from '@jest/globals';
import { AgentConfigSchema, ConfigError, parseConfig } from '../../../core/config.js';

const agent = (env: Record<string, string>) =>
  parseConfig(AgentConfigSchema, { DATABASE_URL: 'postgres://u:p@127.0.0.1/db', ...env });

describe('MINIMCP_PORT_RANGE', () => {
  it('is unset by default (and when empty), leaving the pool to the settings', () => {
    expect(agent({}).MINIMCP_PORT_RANGE).toBeUndefined();
    expect(agent({ MINIMCP_PORT_RANGE: '' }).MINIMCP_PORT_RANGE).toBeUndefined();
  });

  it('parses START-END when set', () => {
    expect(agent({ MINIMCP_PORT_RANGE: '4000-4099' }).MINIMCP_PORT_RANGE).toEqual({
      start: 4000,
      end: 4099,
    });
  });

  it('refuses a decreasing range', () => {
    expect(() => agent({ MINIMCP_PORT_RANGE: '4099-4000' })).toThrow(ConfigError);
  });
});

describe('MINIMCP_SETTINGS_REFRESH_SECONDS', () => {
  it('defaults to 30 seconds', () => {
    expect(agent({}).MINIMCP_SETTINGS_REFRESH_SECONDS).toBe(30);
    expect(agent({ MINIMCP_SETTINGS_REFRESH_SECONDS: '1' }).MINIMCP_SETTINGS_REFRESH_SECONDS).toBe(
      1,
    );
  });
});
