// The control plane's agent client against a real gRPC agent (the fake, over
// mutual TLS on loopback): every RPC round-trips with its types, deadlines
// and errors map to typed errors, and only UNAVAILABLE is retried.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  createAgentClient,
  type AgentClient,
  type AgentClientOptions,
} from '../../../../lambdas/control/agent-client.js';
import { loadAgentProto } from '../../../../core/agent-contract.js';
import {
  AgentCallError,
  AgentTimeoutError,
  AgentUnavailableError,
  KeyMissingError,
  NotFoundError,
  PortInUseError,
  ValidationError,
} from '../../../../core/errors.js';
import {
  createTestCertificates,
  startFakeAgent,
  type FakeAgent,
  type FakeAgentOptions,
  type TestCertificates,
} from '../../../support/fake-agent.js';

let certs: TestCertificates;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  certs = await createTestCertificates();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function agent(options: Partial<FakeAgentOptions> = {}): Promise<FakeAgent> {
  const fake = await startFakeAgent({ tls: certs.agent, ...options });
  cleanups.push(() => fake.stop());
  return fake;
}

function client(address: string, options: Partial<AgentClientOptions> = {}): AgentClient {
  const created = createAgentClient({
    address,
    tls: certs.controlPlane,
    retry: { initialDelayMs: 20, maxDelayMs: 100 },
    ...options,
  });
  cleanups.push(() => created.close());
  return created;
}

describe('every RPC round-trips over mutual TLS', () => {
  it('starts and stops an instance, answering what the agent observes', async () => {
    const fake = await agent();
    const agentClient = client(fake.address);
    const instanceId = randomUUID();

    const started = await agentClient.startInstance({
      instanceId,
      requestId: 'req-42',
      reason: 'START_REASON_CREATED',
      readyTimeoutMs: 5000,
    });
    expect(started.instance).toMatchObject({
      instanceId,
      status: 'running',
      ready: true,
      port: 3001,
      error: null,
    });
    expect(started.instance.pid).toBeGreaterThan(0);
    expect(fake.calls.startInstance).toEqual([
      { instanceId, requestId: 'req-42', reason: 'START_REASON_CREATED', readyTimeoutMs: 5000 },
    ]);

    // Repeated (a retry after a timeout): same process, same port.
    const again = await agentClient.startInstance({ instanceId });
    expect(again.instance).toEqual(started.instance);

    const stopped = await agentClient.stopInstance({
      instanceId,
      reason: 'STOP_REASON_DELETED',
      gracePeriodMs: 2000,
    });
    expect(stopped.instance).toMatchObject({
      instanceId,
      status: 'stopped',
      ready: false,
      pid: 0,
      port: 0,
    });
    expect(fake.calls.stopInstance[0]).toEqual({
      instanceId,
      requestId: '',
      reason: 'STOP_REASON_DELETED',
      gracePeriodMs: 2000,
    });
  });

  it('answers "starting" when the instance is not ready within ready_timeout_ms', async () => {
    const fake = await agent({ startDelayMs: 60_000 });
    const instanceId = randomUUID();

    const started = await client(fake.address).startInstance({ instanceId, readyTimeoutMs: 1 });

    expect(started.instance).toMatchObject({ instanceId, status: 'starting', ready: false });
  });

  it('reports the node through Health and SERVING through grpc.health.v1', async () => {
    const fake = await agent({ nodeName: 'node-a' });
    const agentClient = client(fake.address);
    await agentClient.startInstance({ instanceId: randomUUID() });

    const health = await agentClient.health();
    expect(health).toMatchObject({
      nodeName: 'node-a',
      nodeStatus: 'active',
      instancesRunning: 1,
      databaseReachable: true,
    });
    expect(await agentClient.checkHealth()).toBe('SERVING');
    expect(await agentClient.checkHealth('minimcp.agent.v1.AgentService')).toBe('SERVING');

    fake.health.setStatus('', 'NOT_SERVING');
    expect(await agentClient.checkHealth()).toBe('NOT_SERVING');
    await expect(agentClient.checkHealth('no.such.Service')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('parses what the agent answers: an answer outside the contract is an AgentCallError', async () => {
    // A raw server without the contract's checks, answering a malformed instance.
    const server = new grpc.Server();
    server.addService(loadAgentProto().agentService, {
      StopInstance: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, { instance: { instanceId: 'not-a-uuid', status: 'dancing' } }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    cleanups.push(() => server.forceShutdown());

    const error = await client(`127.0.0.1:${port}`, { tls: 'insecure' })
      .stopInstance({ instanceId: randomUUID() })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AgentCallError);
    expect((error as Error).message).toMatch(
      /instance\.instanceId.*instance\.status|instance\.status/s,
    );
  });

  it('refuses to send a request outside the contract', async () => {
    const fake = await agent();

    await expect(client(fake.address).startInstance({ instanceId: 'nope' })).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(fake.calls.startInstance).toHaveLength(0);
  });
});

describe('deadlines', () => {
  it('a call the agent does not answer in time fails with AgentTimeoutError, and the agent is told', async () => {
    let agentSignal: AbortSignal | undefined;
    const fake = await agent({
      handlers: {
        startInstance: (_request, context) =>
          new Promise((_resolve, reject) => {
            agentSignal = context.signal;
            context.signal.addEventListener('abort', () => reject(new Error('caller gave up')));
          }),
      },
    });

    const error = await client(fake.address)
      .startInstance({ instanceId: randomUUID() }, { deadlineMs: 200 })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AgentTimeoutError);
    expect((error as AgentTimeoutError).context).toMatchObject({ deadlineMs: 200 });
    expect(fake.calls.startInstance).toHaveLength(1); // never retried
    await waitFor(() => agentSignal?.aborted === true);
  });

  it('uses the default deadline when the call gives none', async () => {
    const fake = await agent({
      handlers: {
        stopInstance: (_request, context) =>
          new Promise((_resolve, reject) =>
            context.signal.addEventListener('abort', () => reject(new Error('caller gave up'))),
          ),
      },
    });

    await expect(
      client(fake.address, { defaultDeadlineMs: 150 }).stopInstance({ instanceId: randomUUID() }),
    ).rejects.toBeInstanceOf(AgentTimeoutError);
  });
});

describe('retries and error mapping', () => {
  it('retries UNAVAILABLE and succeeds when the agent recovers', async () => {
    let failuresLeft = 2;
    const fake = await agent({
      handlers: {
        async health() {
          if (failuresLeft-- > 0) throw new AgentUnavailableError('warming up');
          return { nodeName: 'recovered', nodeStatus: 'active' };
        },
      },
    });
    const retries: number[] = [];

    const health = await client(fake.address, {
      onRetry: (event) => retries.push(event.attempt),
    }).health();

    expect(health.nodeName).toBe('recovered');
    expect(fake.calls.health).toHaveLength(3);
    expect(retries).toEqual([1, 2]);
  });

  it('gives up after maxAttempts with AgentUnavailableError', async () => {
    const fake = await agent({
      handlers: {
        async stopInstance() {
          throw new AgentUnavailableError('still down');
        },
      },
    });

    const error = await client(fake.address, { retry: { maxAttempts: 3, initialDelayMs: 10 } })
      .stopInstance({ instanceId: randomUUID() })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AgentUnavailableError);
    expect(fake.calls.stopInstance).toHaveLength(3);
  });

  it('reaches an agent that starts only after the first attempt failed', async () => {
    // Learn a free port, then free it: nothing listens there when the call begins.
    const probe = await startFakeAgent({ tls: certs.agent });
    const port = probe.port;
    await probe.stop();
    let late: FakeAgent | undefined;
    const attemptsFailed: number[] = [];

    const answer = await client(`127.0.0.1:${port}`, {
      retry: { maxAttempts: 10, initialDelayMs: 100, maxDelayMs: 400 },
      defaultDeadlineMs: 10_000,
      onRetry: (event) => {
        attemptsFailed.push(event.attempt);
        if (event.attempt === 1)
          void agent({ port }).then((started) => {
            late = started;
          });
      },
    }).health();

    expect(answer.nodeStatus).toBe('active');
    expect(attemptsFailed[0]).toBe(1);
    expect(late?.calls.health).toHaveLength(1);
  });

  it('fails with AgentUnavailableError when nothing listens', async () => {
    const probe = await startFakeAgent({ tls: certs.agent });
    await probe.stop();
    const retries: number[] = [];

    const error = await client(probe.address, {
      retry: { maxAttempts: 2, initialDelayMs: 10 },
      onRetry: (event) => retries.push(event.attempt),
    })
      .health()
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AgentUnavailableError);
    expect(retries).toEqual([1]);
  });

  it.each([
    ['NOT_FOUND', new NotFoundError('instance not on this node'), NotFoundError],
    ['FAILED_PRECONDITION with its code', new KeyMissingError('no github key'), KeyMissingError],
    ['INTERNAL', new Error('boom with a secret sk-123'), AgentCallError],
    [
      'UNAVAILABLE carrying a non-transient code',
      new PortInUseError('port 3005 is taken'),
      AgentCallError,
    ],
  ])('does not retry %s and maps it to its type', async (_name, thrown, expected) => {
    const fake = await agent({
      handlers: {
        async stopInstance() {
          throw thrown;
        },
      },
    });

    const error = await client(fake.address)
      .stopInstance({ instanceId: randomUUID() })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(expected);
    expect(fake.calls.stopInstance).toHaveLength(1);
    // Non-MiniMCP errors are answered without their message.
    expect((error as Error).message).not.toContain('sk-123');
  });

  it('keeps the code of an error it has no type for', async () => {
    const fake = await agent({
      handlers: {
        async startInstance() {
          throw new PortInUseError('port 3005 is taken');
        },
      },
    });

    const error = await client(fake.address)
      .startInstance({ instanceId: randomUUID() })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AgentCallError);
    expect((error as AgentCallError).context).toMatchObject({
      remoteCode: 'PORT_IN_USE',
      grpcCode: grpc.status.UNAVAILABLE,
    });
  });

  it('a closed client refuses further calls', async () => {
    const fake = await agent();
    const agentClient = client(fake.address);
    await agentClient.health();
    agentClient.close();

    await expect(agentClient.health()).rejects.toBeInstanceOf(AgentUnavailableError);
    expect(fake.calls.health).toHaveLength(1);
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
