// The gateway's admission checks as results: Host (DNS rebinding), Origin and
// the bearer token, each allowing what it should and denying on any doubt.
// @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#security-warning
import { describe, expect, it } from '@jest/globals';
import { issueToken, tokenDigest } from '../../../../core/tokens.js';
import {
  checkBearer,
  checkHost,
  checkOrigin,
  createGuard,
  hostAllowList,
} from '../../../../agent/gateway/guard.js';

describe('hostAllowList', () => {
  it('checks loopback names only when the gateway listens on a loopback address', () => {
    for (const bind of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]'])
      expect([...hostAllowList(bind, undefined)!].sort()).toEqual([
        '127.0.0.1',
        '[::1]',
        'localhost',
      ]);
  });

  it('checks nothing on any other address unless names are configured', () => {
    expect(hostAllowList('0.0.0.0', undefined)).toBeUndefined();
    expect(hostAllowList('10.0.0.5', undefined)).toBeUndefined();
  });

  it('adds configured names, lower-cased, IPv6 addresses in brackets, to the loopback ones', () => {
    const names = hostAllowList('0.0.0.0', ['MCP.example.test', 'fd00::1'])!;

    expect(names.has('mcp.example.test')).toBe(true);
    expect(names.has('[fd00::1]')).toBe(true);
    expect(names.has('localhost')).toBe(true);
  });
});

describe('checkHost', () => {
  const allowed = hostAllowList('127.0.0.1', ['mcp.example.test']);

  it('allows an allowed name with or without a port, in any case', () => {
    for (const header of [
      'localhost',
      'localhost:8080',
      '127.0.0.1:9',
      '[::1]:80',
      'MCP.Example.Test',
    ])
      expect(checkHost(header, allowed)).toEqual({ ok: true, value: header });
  });

  it('denies another name, a tricky one, a missing header and garbage with 403', () => {
    for (const header of [
      'attacker.example:8080',
      'attacker.example@127.0.0.1:8080',
      'localhost.attacker.example',
      'localhost:99999999',
      '',
      undefined,
    ])
      expect(checkHost(header, allowed)).toEqual({
        ok: false,
        status: 403,
        code: 'host_not_allowed',
        message: `host ${header ?? '(none)'} is not allowed`,
      });
  });

  it('allows any header when there is no allow list', () => {
    expect(checkHost('anything.example', undefined)).toEqual({
      ok: true,
      value: 'anything.example',
    });
    expect(checkHost(undefined, undefined)).toEqual({ ok: true, value: undefined });
  });
});

describe('checkOrigin', () => {
  it('allows loopback origins on any port by default', () => {
    for (const origin of ['http://localhost:6274', 'https://127.0.0.1', 'http://[::1]:3000'])
      expect(checkOrigin(origin, undefined)).toEqual({ ok: true, value: origin });
  });

  it('denies foreign, opaque and malformed origins by default', () => {
    for (const origin of ['http://evil.example', 'null', 'not a url', 'file://localhost', ''])
      expect(checkOrigin(origin, undefined)).toEqual({
        ok: false,
        status: 403,
        code: 'origin_not_allowed',
        message: `origin ${origin} is not allowed`,
      });
  });

  it('allows exactly the configured origins, case-insensitively, and no loopback default', () => {
    const allowed = new Set(['https://app.example.test']);

    expect(checkOrigin('HTTPS://APP.example.test', allowed).ok).toBe(true);
    expect(checkOrigin('https://app.example.test:8443', allowed).ok).toBe(false);
    expect(checkOrigin('http://localhost:6274', allowed).ok).toBe(false);
  });
});

describe('checkBearer', () => {
  const { token, hash } = issueToken('access');
  const digest = Buffer.from(hash, 'hex');

  it('allows the token, whatever the case of the scheme and surrounding blanks', () => {
    for (const header of [`Bearer ${token}`, `bearer ${token}`, `BEARER   ${token}  `])
      expect(checkBearer(header, digest)).toEqual({ ok: true, value: undefined });
  });

  /** The 401 a denied header gets: its code, message and WWW-Authenticate challenge. */
  const unauthorized = (code: string, message: string, challenge: string) => ({
    ok: false,
    status: 401,
    code,
    message,
    headers: { 'www-authenticate': challenge },
  });

  it('denies a missing header or another scheme with 401 and the realm challenge', () => {
    for (const header of [undefined, '', 'Bearer', 'Bearer ', `Basic ${token}`, token])
      expect(checkBearer(header, digest)).toEqual(
        unauthorized(
          'missing_token',
          'missing bearer token: send Authorization: Bearer <access_token>',
          'Bearer realm="minimcp"',
        ),
      );
  });

  it('denies another token with 401 and error="invalid_token"', () => {
    for (const header of ['Bearer mcp_wrong', `Bearer ${token}x`, `Bearer ${hash}`])
      expect(checkBearer(header, digest)).toEqual(
        unauthorized(
          'invalid_token',
          'invalid access token',
          'Bearer realm="minimcp", error="invalid_token"',
        ),
      );
  });

  it('denies every token when the expected digest is malformed', () => {
    expect(checkBearer(`Bearer ${token}`, Buffer.from('not-hex', 'hex')).ok).toBe(false);
  });

  it('compares with the digest core/tokens.ts stores', () => {
    expect(tokenDigest(token).toString('hex')).toBe(hash);
  });
});

describe('createGuard', () => {
  it('checks the same header again after allowing it once (the cache allows, never denies)', () => {
    const guard = createGuard({ bindHost: '127.0.0.1', tokenHash: issueToken('access').hash });

    expect(guard.host('localhost:1').ok).toBe(true);
    expect(guard.host('localhost:1').ok).toBe(true);
    expect(guard.host('attacker.example:1').ok).toBe(false);
    expect(guard.origin('http://localhost:1').ok).toBe(true);
    expect(guard.origin('http://localhost:1').ok).toBe(true);
    expect(guard.origin('http://evil.example').ok).toBe(false);
  });

  it('does not check the Host header on a non-loopback address without configured names', () => {
    const guard = createGuard({ bindHost: '0.0.0.0', tokenHash: issueToken('access').hash });

    expect(guard.host('anything.example').ok).toBe(true);
    expect(guard.host(undefined).ok).toBe(true);
  });

  it('refuses the old token and allows the new one after setTokenHash', () => {
    const old = issueToken('access');
    const rotated = issueToken('access');
    const guard = createGuard({ bindHost: '127.0.0.1', tokenHash: old.hash });
    expect(guard.bearer(`Bearer ${old.token}`).ok).toBe(true);

    guard.setTokenHash(rotated.hash);

    expect(guard.bearer(`Bearer ${old.token}`)).toMatchObject({ ok: false, code: 'invalid_token' });
    expect(guard.bearer(`Bearer ${rotated.token}`).ok).toBe(true);
  });

  it('uses the configured origins instead of the loopback default', () => {
    const guard = createGuard({
      bindHost: '127.0.0.1',
      tokenHash: issueToken('access').hash,
      allowedOrigins: ['https://App.example.test'],
    });

    expect(guard.origin('https://app.example.test').ok).toBe(true);
    expect(guard.origin('http://localhost:6274').ok).toBe(false);
  });
});
