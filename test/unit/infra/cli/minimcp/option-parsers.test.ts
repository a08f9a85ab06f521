// Values of options: --config k=v (string) and k:=json, --since durations.
import { describe, expect, it } from '@jest/globals';
import { InvalidArgumentError } from 'commander';
import { parseConfigPair, parseSince } from '../../../../../infra/cli/minimcp/option-parsers.js';

describe('--config key=value', () => {
  it('reads key=value as a string, keeping = and spaces in the value', () => {
    expect(parseConfigPair('api_version=v3')).toEqual({ api_version: 'v3' });
    expect(parseConfigPair('query=a=b c')).toEqual({ query: 'a=b c' });
    expect(parseConfigPair('empty=')).toEqual({ empty: '' });
    expect(parseConfigPair('n=42')).toEqual({ n: '42' });
  });

  it('reads key:=json as JSON', () => {
    expect(parseConfigPair('n:=42')).toEqual({ n: 42 });
    expect(parseConfigPair('on:=true')).toEqual({ on: true });
    expect(parseConfigPair('repos:=["a","b"]')).toEqual({ repos: ['a', 'b'] });
    expect(parseConfigPair('o:={"x":1}')).toEqual({ o: { x: 1 } });
  });

  it('accumulates repeated options', () => {
    const first = parseConfigPair('a=1');
    expect(parseConfigPair('b:=2', first)).toEqual({ a: '1', b: 2 });
  });

  it.each([
    ['no equals sign', 'novalue', 'expected key=value'],
    ['an empty key', '=v', 'expected key=value'],
    ['bad JSON after :=', 'n:=nope', 'is not JSON'],
  ])('refuses %s', (_case, raw, message) => {
    expect(() => parseConfigPair(raw)).toThrow(InvalidArgumentError);
    expect(() => parseConfigPair(raw)).toThrow(message);
  });

  it('refuses a key given twice', () => {
    expect(() => parseConfigPair('a=2', { a: '1' })).toThrow('"a" is given twice');
  });
});

describe('--since', () => {
  const now = Date.parse('2026-12-07T12:00:00.000Z');
  it('reads durations before now and ISO times', () => {
    expect(parseSince('30s', now)).toBe('2026-12-07T11:59:30.000Z');
    expect(parseSince('10m', now)).toBe('2026-12-07T11:50:00.000Z');
    expect(parseSince('2h', now)).toBe('2026-12-07T10:00:00.000Z');
    expect(parseSince('2026-12-01T00:00:00+01:00', now)).toBe('2026-11-30T23:00:00.000Z');
  });
  it('refuses anything else', () => {
    expect(() => parseSince('yesterday', now)).toThrow(InvalidArgumentError);
  });
});
