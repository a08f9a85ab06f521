// The agent contract: the proto loads from source and from dist/, every zod
// schema matches its proto message field for field, messages survive the
// wire with their types and proto3 defaults, and start failures and stop
// reasons translate by code and reason alone.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from '@jest/globals';
import type { z } from 'zod';
import {
  AGENT_METHODS,
  HealthCheckRequest,
  HealthCheckResponse,
  InstanceError,
  InstanceState,
  INSTANCE_STOP_REASONS,
  StartInstanceRequest,
  StartInstanceResponse,
  instanceErrorCode,
  loadAgentProto,
  wireStopReason,
} from '../../../core/agent-contract.js';
import { McpServerStartError, type McpServerStartReason } from '../../../core/errors.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Field names of a loaded message type, as proto-loader hands them to JS (camelCase). */
function protoFields(name: string): string[] {
  const definition = loadAgentProto().packageDefinition[name] as {
    type: { field: { name: string }[] };
  };
  return definition.type.field
    .map((field) => field.name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()))
    .sort();
}

function schemaFields(schema: z.ZodObject): string[] {
  return Object.keys(schema.shape).sort();
}

describe('loading the proto', () => {
  it('exposes AgentService with its three RPCs and the standard health service', () => {
    const { agentService, healthService } = loadAgentProto();
    expect(Object.keys(agentService).sort()).toEqual(
      ['Health', 'StartInstance', 'StopInstance'].sort(),
    );
    expect(agentService.StartInstance?.path).toBe('/minimcp.agent.v1.AgentService/StartInstance');
    expect(agentService.StartInstance?.responseStream).toBe(false);
    expect(healthService.Check?.path).toBe('/grpc.health.v1.Health/Check');
    expect(healthService.Watch?.responseStream).toBe(true);
  });

  it('loads from dist/ after a build, where proto/ is copied beside the code', async () => {
    const script = `
      const m = await import('./dist/core/agent-contract.js');
      const { agentService } = m.loadAgentProto();
      console.log(JSON.stringify({ dir: m.PROTO_DIR, rpcs: Object.keys(agentService).length }));`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: repoRoot },
    );
    const result = JSON.parse(stdout) as { dir: string; rpcs: number };
    expect(result.dir).toBe(`${repoRoot}dist/proto/`);
    expect(result.rpcs).toBe(3);
  });
});

describe('zod schemas mirror the proto messages', () => {
  const pairs: [string, z.ZodObject][] = [
    ...Object.values(AGENT_METHODS).flatMap((spec): [string, z.ZodObject][] => {
      const { requestType, responseType } = loadAgentProto().agentService[spec.rpc] as unknown as {
        requestType: { type: { name: string } };
        responseType: { type: { name: string } };
      };
      return [
        [`minimcp.agent.v1.${requestType.type.name}`, spec.request],
        [`minimcp.agent.v1.${responseType.type.name}`, spec.response],
      ];
    }),
    ['minimcp.agent.v1.InstanceState', InstanceState],
    ['minimcp.agent.v1.InstanceError', InstanceError],
    ['grpc.health.v1.HealthCheckRequest', HealthCheckRequest],
    ['grpc.health.v1.HealthCheckResponse', HealthCheckResponse],
  ];

  it.each(pairs)('%s has exactly the fields of its schema', (name, schema) => {
    expect(schemaFields(schema)).toEqual(protoFields(name));
  });
});

describe('messages on the wire', () => {
  const { agentService } = loadAgentProto();
  const method = (name: string) => agentService[name] as grpc.MethodDefinition<unknown, unknown>;

  it('fills proto3 defaults that the schemas accept, with an unset error as null', () => {
    const instanceId = randomUUID();
    const start = method('StartInstance');
    const wire = start.requestDeserialize(start.requestSerialize({ instanceId }));
    expect(StartInstanceRequest.parse(wire)).toEqual({
      instanceId,
      requestId: '',
      reason: 'START_REASON_UNSPECIFIED',
      readyTimeoutMs: 0,
    });

    const answer = start.responseDeserialize(
      start.responseSerialize({ instance: { instanceId, status: 'starting' } }),
    );
    expect(StartInstanceResponse.parse(answer).instance).toEqual({
      instanceId,
      status: 'starting',
      ready: false,
      pid: 0,
      port: 0,
      startedAtUnixMs: 0,
      expiresAtUnixMs: 0,
      restartCount: 0,
      error: null,
    });
  });

  it('keeps enums as names, int64 milliseconds as numbers, and a set error', () => {
    const instanceId = randomUUID();
    const start = method('StartInstance');
    const sent = StartInstanceResponse.parse({
      instance: {
        instanceId,
        status: 'error',
        pid: 12345,
        port: 3007,
        startedAtUnixMs: 1_764_000_000_123,
        expiresAtUnixMs: 1_764_003_600_123,
        restartCount: 3,
        error: { code: 'CHILD_EXITED', message: 'exited with code 1' },
      },
    });
    expect(
      StartInstanceResponse.parse(start.responseDeserialize(start.responseSerialize(sent))),
    ).toEqual(sent);

    const request = StartInstanceRequest.parse({
      instanceId,
      requestId: 'req-1',
      reason: 'START_REASON_RESTORED',
      readyTimeoutMs: 2500,
    });
    expect(start.requestDeserialize(start.requestSerialize(request))).toEqual(request);
  });

  it('refuses statuses, reasons and ids outside the contract', () => {
    const instanceId = randomUUID();
    expect(InstanceState.safeParse({ instanceId, status: 'sleeping' }).success).toBe(false);
    expect(InstanceState.safeParse({ instanceId: 'not-a-uuid', status: 'running' }).success).toBe(
      false,
    );
    expect(InstanceState.safeParse({ instanceId, status: 'running', port: 70000 }).success).toBe(
      false,
    );
    expect(
      InstanceState.safeParse({
        instanceId,
        status: 'error',
        error: { code: 'SOMETHING', message: '' },
      }).success,
    ).toBe(false);
    expect(StartInstanceRequest.safeParse({ instanceId, reason: 'BECAUSE' }).success).toBe(false);
    // Every status of the schema is also an agent status.
    for (const status of [
      'pending',
      'running',
      'expired',
      'disconnected',
      'error',
      'starting',
      'stopping',
      'stopped',
    ])
      expect(InstanceState.safeParse({ instanceId, status }).success).toBe(true);
  });
});

describe('start failures', () => {
  /** What the supervisor throws, as the runtime reports it. */
  const failureOf = (reason: McpServerStartReason) => {
    const error = new McpServerStartError(`MCP server x failed (${reason})`, {
      label: 'x',
      reason,
    });
    return { code: error.code, message: error.message, reason: error.reason };
  };

  it.each<[McpServerStartReason, string]>([
    ['no_child_user', 'SPAWN_FAILED'],
    ['spawn_failed', 'SPAWN_FAILED'],
    ['stopped', 'SPAWN_FAILED'],
    ['exited', 'CHILD_EXITED'],
    ['protocol_error', 'READY_TIMEOUT'],
    ['handshake_timeout', 'READY_TIMEOUT'],
    ['handshake_failed', 'READY_TIMEOUT'],
  ])('maps an MCP server that could not start (%s) to %s', (reason, code) => {
    expect(instanceErrorCode(failureOf(reason))).toBe(code);
  });

  it('reads the reason, never the message', () => {
    const failure = { ...failureOf('spawn_failed'), message: 'exited before answering initialize' };
    expect(instanceErrorCode(failure)).toBe('SPAWN_FAILED');
  });

  it.each([
    ['KEY_MISSING', 'KEY_MISSING'],
    ['KEY_UNDECRYPTABLE', 'KEY_UNDECRYPTABLE'],
    ['KEY_PROVIDER_UNAVAILABLE', 'KEY_UNDECRYPTABLE'],
    ['PORT_IN_USE', 'PORT_BUSY'],
    ['CHILD_EXITED', 'CHILD_EXITED'],
    ['START_FAILED', 'INTERNAL'],
    ['MOVED', 'INTERNAL'],
  ])('maps the runtime code %s to %s', (code, expected) => {
    expect(instanceErrorCode({ code, message: 'anything' })).toBe(expected);
  });
});

describe('stop reasons', () => {
  it('names the same cause on the wire, and none for the agent-only reasons', () => {
    expect(Object.fromEntries(INSTANCE_STOP_REASONS.map((r) => [r, wireStopReason(r)]))).toEqual({
      deleted: 'STOP_REASON_DELETED',
      expired: 'STOP_REASON_EXPIRED',
      moved: 'STOP_REASON_MOVED',
      shutdown: 'STOP_REASON_UNSPECIFIED',
      superseded: 'STOP_REASON_UNSPECIFIED',
    });
  });
});
