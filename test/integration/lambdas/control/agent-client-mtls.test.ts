// Mutual TLS between the control plane and an agent, over real gRPC on
// loopback: only a client certificate of the agents' CA, issued for client
// use, gets through; the client trusts only that CA; the standard health
// service answers.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createAgentClient, type AgentClient } from '../../../../lambdas/control/agent-client.js';
import { loadAgentProto } from '../../../../core/agent-contract.js';
import { AgentUnavailableError } from '../../../../core/errors.js';
import {
  CONTROL_PLANE_COMMON_NAME,
  ensureLocalCertificates,
  type TlsMaterial,
} from '../../../../core/tls.js';
import {
  createTestCertificates,
  startFakeAgent,
  type FakeAgent,
  type TestCertificates,
} from '../../../support/fake-agent.js';

let certs: TestCertificates;
let otherCerts: TestCertificates;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  [certs, otherCerts] = await Promise.all([createTestCertificates(), createTestCertificates()]);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function agent(tls: TlsMaterial = certs.agent): Promise<FakeAgent> {
  const fake = await startFakeAgent({ tls });
  cleanups.push(() => fake.stop());
  return fake;
}

function client(address: string, tls: TlsMaterial | 'insecure'): AgentClient {
  // One attempt: a refused handshake is UNAVAILABLE, and retrying it proves nothing here.
  const created = createAgentClient({ address, tls, retry: { maxAttempts: 1 } });
  cleanups.push(() => created.close());
  return created;
}

describe('mutual TLS', () => {
  it('accepts the control plane and tells the agent who called', async () => {
    let caller = '';
    const fake = await startFakeAgent({
      tls: certs.agent,
      handlers: {
        async health(_request, context) {
          caller = context.clientCommonName;
          return { nodeName: 'n', nodeStatus: 'active' };
        },
      },
    });
    cleanups.push(() => fake.stop());

    await client(fake.address, certs.controlPlane).health();

    expect(caller).toBe(CONTROL_PLANE_COMMON_NAME);
  });

  it('refuses a client without a certificate', async () => {
    const fake = await agent();
    const raw = new grpc.Client(
      fake.address,
      grpc.credentials.createSsl(Buffer.from(certs.ca.cert)),
    );
    cleanups.push(() => raw.close());
    const health = loadAgentProto().agentService.Health as grpc.MethodDefinition<unknown, unknown>;

    const code = await new Promise<number>((resolve) =>
      raw.makeUnaryRequest(
        health.path,
        health.requestSerialize,
        health.responseDeserialize,
        {},
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (error) => resolve(error?.code ?? grpc.status.OK),
      ),
    );

    expect(code).toBe(grpc.status.UNAVAILABLE);
    expect(fake.calls.health).toHaveLength(0);
  });

  it('refuses a client certificate from another CA', async () => {
    const fake = await agent();
    const impostor: TlsMaterial = { ...otherCerts.controlPlane, ca: certs.ca.cert };

    await expect(client(fake.address, impostor).health()).rejects.toBeInstanceOf(
      AgentUnavailableError,
    );
    expect(fake.calls.health).toHaveLength(0);
  });

  it("refuses the agent's own server certificate presented as a client's", async () => {
    const fake = await agent();

    await expect(client(fake.address, certs.agent).health()).rejects.toBeInstanceOf(
      AgentUnavailableError,
    );
    expect(fake.calls.health).toHaveLength(0);
  });

  it('a client does not talk to an agent whose certificate its CA did not sign', async () => {
    const foreign = await agent(otherCerts.agent);

    await expect(client(foreign.address, certs.controlPlane).health()).rejects.toBeInstanceOf(
      AgentUnavailableError,
    );
    expect(foreign.calls.health).toHaveLength(0);
  });

  it('refuses a plaintext client', async () => {
    const fake = await agent();

    await expect(client(fake.address, 'insecure').health()).rejects.toBeInstanceOf(
      AgentUnavailableError,
    );
    expect(fake.calls.health).toHaveLength(0);
  });

  it('works when the agent is dialled as localhost', async () => {
    const fake = await agent();

    const answer = await client(`localhost:${fake.port}`, certs.controlPlane).startInstance({
      instanceId: randomUUID(),
    });

    expect(answer.instance.status).toBe('running');
  });

  it('works with the certificate set the local stack keeps on disk', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'minimcp-mtls-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const local = await ensureLocalCertificates(path.join(dir, 'certs'));
    const fake = await agent(local.agent);

    const health = await client(fake.address, local.controlPlane).health();

    expect(health.nodeStatus).toBe('active');
  });
});

describe('the standard health service', () => {
  it('answers SERVING to Check and streams changes to Watch', async () => {
    const fake = await agent();
    expect(await client(fake.address, certs.controlPlane).checkHealth()).toBe('SERVING');

    const { healthService } = loadAgentProto();
    const watch = healthService.Watch as grpc.MethodDefinition<unknown, unknown>;
    const raw = new grpc.Client(
      fake.address,
      grpc.credentials.createSsl(
        Buffer.from(certs.controlPlane.ca),
        Buffer.from(certs.controlPlane.key),
        Buffer.from(certs.controlPlane.cert),
      ),
    );
    cleanups.push(() => raw.close());
    const call = raw.makeServerStreamRequest(
      watch.path,
      watch.requestSerialize,
      watch.responseDeserialize,
      { service: '' },
      new grpc.Metadata(),
      {},
    );
    const statuses: string[] = [];
    const ended = new Promise<void>((resolve) => call.on('end', resolve));
    call.on('data', (message: { status: string }) => {
      statuses.push(message.status);
      if (statuses.length === 1) fake.health.setStatus('', 'NOT_SERVING');
      if (statuses.length === 2) fake.health.shutdown();
    });

    // shutdown() ends the watch (so a graceful server shutdown is not held open).
    await ended;
    expect(statuses).toEqual(['SERVING', 'NOT_SERVING']);
  });
});
