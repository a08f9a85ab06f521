// The label values of the agent's metrics stay within fixed sets, whatever a
// client sends: MCP methods outside the specification, HTTP methods, statuses.
import { describe, expect, it } from '@jest/globals';
import { ConnectionError, StatementTimeoutError } from 'slonik';
import { databaseErrorKind, methodLabel, outcomeLabel } from '../../../../agent/node/metrics.js';

describe('metric labels', () => {
  it('keeps the methods of the specification and folds any other into `other`', () => {
    expect(methodLabel({ mcpMethod: 'tools/call', httpMethod: 'POST' })).toBe('tools/call');
    expect(methodLabel({ mcpMethod: 'resources/templates/list', httpMethod: 'POST' })).toBe(
      'resources/templates/list',
    );
    expect(methodLabel({ mcpMethod: 'tools/call/../../x', httpMethod: 'POST' })).toBe('other');
    expect(methodLabel({ mcpMethod: 'a'.repeat(10_000), httpMethod: 'POST' })).toBe('other');
  });

  it('names a request without a JSON-RPC method by its HTTP method', () => {
    expect(methodLabel({ mcpMethod: undefined, httpMethod: 'GET' })).toBe('http_get');
    expect(methodLabel({ mcpMethod: undefined, httpMethod: 'DELETE' })).toBe('http_delete');
    expect(methodLabel({ mcpMethod: undefined, httpMethod: 'PROPFIND' })).toBe('http_other');
  });

  it('tells the outcomes apart: ok, JSON-RPC error, the client’s fault, the server’s, cancelled', () => {
    expect(outcomeLabel({ status: 200, rpcErrorCode: undefined })).toBe('ok');
    expect(outcomeLabel({ status: 202, rpcErrorCode: undefined })).toBe('ok');
    expect(outcomeLabel({ status: 200, rpcErrorCode: -32602 })).toBe('rpc_error');
    expect(outcomeLabel({ status: 401, rpcErrorCode: -32000 })).toBe('client_error');
    expect(outcomeLabel({ status: 502, rpcErrorCode: -32000 })).toBe('server_error');
    expect(outcomeLabel({ status: 499, rpcErrorCode: undefined })).toBe('cancelled');
  });

  it('counts as database errors only what the database or the way to it said', () => {
    expect(databaseErrorKind(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe(
      'unavailable',
    );
    expect(databaseErrorKind(new ConnectionError('down'))).toBe('unavailable');
    expect(databaseErrorKind(new StatementTimeoutError(new Error('too slow')))).toBe('query');
    expect(databaseErrorKind(Object.assign(new Error('no such table'), { code: '42P01' }))).toBe(
      'query',
    );
    expect(databaseErrorKind(new Error('the caller’s own'))).toBeUndefined();
  });
});
