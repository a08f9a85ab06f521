// MINIMCP_METRICS_LISTEN: where the agent serves its Prometheus metrics.
import { describe, expect, it } from '@jest/globals';
import { AgentConfigSchema, ConfigError, parseConfig } from '../../../core/config.js';

const parse = (value?: string) =>
  parseConfig(AgentConfigSchema, {
    DATABASE_URL: 'postgres://agent@localhost/minimcp',
    ...(value === undefined ? {} : { MINIMCP_METRICS_LISTEN: value }),
  }).MINIMCP_METRICS_LISTEN;

describe('MINIMCP_METRICS_LISTEN', () => {
  it('listens on loopback port 9464 by default', () => {
    expect(parse()).toEqual({ host: '127.0.0.1', port: 9464 });
  });

  it('reads HOST:PORT, an IPv6 host in brackets, and port 0 (any free port)', () => {
    expect(parse('0.0.0.0:9100')).toEqual({ host: '0.0.0.0', port: 9100 });
    expect(parse('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parse('localhost:0')).toEqual({ host: 'localhost', port: 0 });
  });

  it('turns the listener off with off', () => {
    expect(parse('off')).toBeNull();
  });

  it.each(['9464', '127.0.0.1', '127.0.0.1:70000', '::1:9464', 'on'])(
    'rejects %s and says what it expects',
    (value) => {
      expect(() => parse(value)).toThrow(ConfigError);
      expect(() => parse(value)).toThrow(/MINIMCP_METRICS_LISTEN: must be HOST:PORT/);
    },
  );
});
