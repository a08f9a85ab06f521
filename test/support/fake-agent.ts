// A small real agent for tests: a grpc-js server on 127.0.0.1 implementing
// proto/agent.proto and the health service, with in-memory answers that a
// test can override per RPC, and a record of every request it received.
import { setTimeout as delay } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  loadAgentProto,
  type HealthRequest,
  type InstanceState,
  type StartInstanceRequest,
  type StopInstanceRequest,
} from '../../core/agent-contract.js';
import {
  createAgentServiceImplementation,
  createHealthService,
  type AgentCallContext,
  type AgentServiceHandlers,
  type HealthService,
} from '../../agent/node/grpc-service.js';
import {
  AGENT_COMMON_NAME,
  CONTROL_PLANE_COMMON_NAME,
  createServerCredentials,
  generateCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
  type TlsMaterial,
} from '../../core/tls.js';

export interface TestCertificates {
  ca: CertificateAuthority;
  /** For startFakeAgent (or a real agent) as the server. */
  agent: TlsMaterial;
  /** For createAgentClient as the control plane. */
  controlPlane: TlsMaterial;
}

/** A fresh CA with an agent server certificate and a control-plane client certificate. */
export async function createTestCertificates(): Promise<TestCertificates> {
  const ca = await generateCertificateAuthority({ commonName: 'MiniMCP test CA' });
  const [agent, controlPlane] = await Promise.all([
    issueCertificate(ca, { commonName: AGENT_COMMON_NAME, usage: 'server' }),
    issueCertificate(ca, { commonName: CONTROL_PLANE_COMMON_NAME, usage: 'client' }),
  ]);
  return {
    ca,
    agent: { ca: ca.cert, ...agent },
    controlPlane: { ca: ca.cert, ...controlPlane },
  };
}

export interface FakeAgentOptions {
  tls: TlsMaterial | 'insecure';
  /** Replace the default answer of some RPCs (requests are recorded either way). */
  handlers?: Partial<AgentServiceHandlers>;
  /** How long the default StartInstance takes to become ready. Default 0. */
  startDelayMs?: number;
  /** Listen on this port; default any free one. */
  port?: number;
  nodeName?: string;
  /** First port the default StartInstance hands out (then +1 per new instance). Default 3001. */
  firstPort?: number;
}

export interface FakeAgentCalls {
  startInstance: StartInstanceRequest[];
  stopInstance: StopInstanceRequest[];
  health: HealthRequest[];
}

export interface FakeAgent {
  /** 127.0.0.1:port */
  address: string;
  port: number;
  /** Every parsed request, per RPC, in arrival order. */
  calls: FakeAgentCalls;
  /** What the default handlers know, by instance id (tests may seed or inspect it). */
  instances: Map<string, InstanceState>;
  health: HealthService;
  stop(): Promise<void>;
}

export async function startFakeAgent(options: FakeAgentOptions): Promise<FakeAgent> {
  const startDelayMs = options.startDelayMs ?? 0;
  const nodeName = options.nodeName ?? 'fake-agent';
  const startedAtUnixMs = Date.now();
  const instances = new Map<string, InstanceState>();
  const lifetime = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const readyAt = new Map<string, number>();
  let nextPort = options.firstPort ?? 3001;
  let nextPid = 40000;
  const calls: FakeAgentCalls = {
    startInstance: [],
    stopInstance: [],
    health: [],
  };

  function markReady(instanceId: string): void {
    const state = instances.get(instanceId);
    if (state?.status !== 'starting') return;
    instances.set(instanceId, { ...state, status: 'running', ready: true });
  }

  /** Resolves after `ms`, or early when the call or the fake ends; never rejects. */
  async function wait(ms: number, signal: AbortSignal): Promise<void> {
    await delay(ms, undefined, { signal: AbortSignal.any([signal, lifetime.signal]) }).catch(
      (error: unknown) => {
        // Aborting is how a cancelled call or a stopped fake ends the wait.
        if ((error as Error).name !== 'AbortError') throw error;
      },
    );
  }

  const defaults: AgentServiceHandlers = {
    async startInstance(request, context) {
      const known = instances.get(request.instanceId);
      if (known === undefined || known.status === 'stopped') {
        const state: InstanceState = {
          instanceId: request.instanceId,
          status: 'starting',
          ready: false,
          pid: nextPid++,
          port: nextPort++,
          startedAtUnixMs: Date.now(),
          expiresAtUnixMs: 0,
          restartCount: 0,
          error: null,
        };
        instances.set(request.instanceId, state);
        readyAt.set(request.instanceId, Date.now() + startDelayMs);
        if (startDelayMs === 0) markReady(request.instanceId);
        else {
          // Becomes ready on its own even if no call waits for it (like the real agent).
          const timer = setTimeout(() => {
            timers.delete(timer);
            markReady(request.instanceId);
          }, startDelayMs);
          timers.add(timer);
        }
      }
      // A start repeated while starting waits like the first one (idempotent).
      const ready = readyAt.get(request.instanceId) ?? 0;
      if (instances.get(request.instanceId)?.status === 'starting') {
        const patience = request.readyTimeoutMs > 0 ? request.readyTimeoutMs : startDelayMs;
        await wait(Math.min(patience, ready - Date.now()), context.signal);
        if (Date.now() >= ready) markReady(request.instanceId);
      }
      const state = instances.get(request.instanceId);
      if (!state) throw new Error(`instance ${request.instanceId} vanished`);
      return { instance: state };
    },

    async stopInstance(request) {
      const previous = instances.get(request.instanceId);
      const state: InstanceState = {
        instanceId: request.instanceId,
        status: 'stopped',
        ready: false,
        pid: 0,
        port: 0,
        startedAtUnixMs: 0,
        expiresAtUnixMs: previous?.expiresAtUnixMs ?? 0,
        restartCount: previous?.restartCount ?? 0,
        error: null,
      };
      instances.set(request.instanceId, state);
      return { instance: state };
    },

    async health() {
      const states = [...instances.values()];
      const used = states.filter((s) => s.port !== 0).length;
      return {
        nodeName,
        nodeStatus: 'active',
        agentVersion: 'fake',
        startedAtUnixMs,
        instancesRunning: states.filter((s) => s.status === 'running').length,
        instancesStarting: states.filter((s) => s.status === 'starting').length,
        capacity: 100,
        portsFree: 100 - used,
        databaseReachable: true,
      };
    },
  };

  const chosen: AgentServiceHandlers = { ...defaults, ...options.handlers };
  // Every RPC records its request first, whichever handler answers it.
  const recorded: AgentServiceHandlers = {
    startInstance: (request, context: AgentCallContext) => {
      calls.startInstance.push(request);
      return chosen.startInstance(request, context);
    },
    stopInstance: (request, context) => {
      calls.stopInstance.push(request);
      return chosen.stopInstance(request, context);
    },
    health: (request, context) => {
      calls.health.push(request);
      return chosen.health(request, context);
    },
  };

  const { agentService, healthService } = loadAgentProto();
  const health = createHealthService();
  const server = new grpc.Server();
  server.addService(agentService, createAgentServiceImplementation(recorded));
  server.addService(healthService, health.implementation);
  const credentials =
    options.tls === 'insecure'
      ? grpc.ServerCredentials.createInsecure()
      : createServerCredentials(options.tls);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );

  let stopped = false;
  return {
    address: `127.0.0.1:${port}`,
    port,
    calls,
    instances,
    health,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        health.shutdown();
        lifetime.abort();
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
      } finally {
        // Tests may leave calls hanging on purpose (deadline tests): do not wait for them.
        server.forceShutdown();
      }
    },
  };
}
