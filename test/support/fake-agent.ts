// A small real agent for tests: a grpc-js server on 127.0.0.1 implementing
// proto/agent.proto and the health service, with in-memory answers that a
// test can override per RPC, and a record of every request it received.
import { setTimeout as delay } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  createAgentServiceImplementation,
  createHealthService,
  loadAgentProto,
  type AgentCallContext,
  type AgentServiceHandlers,
  type GetInstanceRequest,
  type HealthRequest,
  type HealthService,
  type InstanceState,
  type ListInstancesRequest,
  type LogEntry,
  type LogEntryInput,
  type StartInstanceRequest,
  type StopInstanceRequest,
  type TailLogsRequest,
} from '../../core/agent-contract.js';
import type { LogLevel, LogSource } from '../../core/domain.js';
import { NotFoundError } from '../../core/errors.js';
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
  getInstance: GetInstanceRequest[];
  listInstances: ListInstancesRequest[];
  health: HealthRequest[];
  tailLogs: TailLogsRequest[];
}

export interface FakeAgent {
  /** 127.0.0.1:port */
  address: string;
  port: number;
  /** Every parsed request, per RPC, in arrival order. */
  calls: FakeAgentCalls;
  /** What the default handlers know, by instance id (tests may seed or inspect it). */
  instances: Map<string, InstanceState>;
  /** Appends a log line to an instance's buffer; following TailLogs calls get it at once. */
  emitLog(
    instanceId: string,
    line: { message: string; level?: LogLevel; source?: LogSource },
  ): LogEntry;
  /** TailLogs streams the agent is serving right now (a cancelled one ends on the agent too). */
  openTailLogs(): number;
  health: HealthService;
  stop(): Promise<void>;
}

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export async function startFakeAgent(options: FakeAgentOptions): Promise<FakeAgent> {
  const startDelayMs = options.startDelayMs ?? 0;
  const nodeName = options.nodeName ?? 'fake-agent';
  const startedAtUnixMs = Date.now();
  const instances = new Map<string, InstanceState>();
  const logs = new Map<string, LogEntry[]>();
  const followers = new Set<() => void>();
  const lifetime = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const readyAt = new Map<string, number>();
  let nextPort = options.firstPort ?? 3001;
  let nextPid = 40000;
  const calls: FakeAgentCalls = {
    startInstance: [],
    stopInstance: [],
    getInstance: [],
    listInstances: [],
    health: [],
    tailLogs: [],
  };

  function emitLog(
    instanceId: string,
    line: { message: string; level?: LogLevel; source?: LogSource },
  ): LogEntry {
    const buffer = logs.get(instanceId) ?? [];
    logs.set(instanceId, buffer);
    const entry: LogEntry = {
      instanceId,
      sequence: buffer.length + 1,
      timestampUnixMs: Date.now(),
      level: line.level ?? 'info',
      source: line.source ?? 'system',
      message: line.message,
    };
    buffer.push(entry);
    for (const wake of [...followers]) wake();
    return entry;
  }

  function markReady(instanceId: string): void {
    const state = instances.get(instanceId);
    if (state?.status !== 'starting') return;
    instances.set(instanceId, { ...state, status: 'running', ready: true });
    emitLog(instanceId, { message: 'ready' });
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
        emitLog(request.instanceId, { message: `spawned pid ${state.pid}` });
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
      if (previous && previous.status !== 'stopped')
        emitLog(request.instanceId, { message: `stopped (${request.reason})` });
      return { instance: state };
    },

    async getInstance(request) {
      const state = instances.get(request.instanceId);
      if (!state)
        throw new NotFoundError(`instance ${request.instanceId} is not on node ${nodeName}`, {
          instanceId: request.instanceId,
        });
      return { instance: state };
    },

    async listInstances(request) {
      const wanted = new Set(request.instanceIds);
      return {
        instances: [...instances.values()].filter(
          (state) => wanted.size === 0 || wanted.has(state.instanceId),
        ),
      };
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

    async *tailLogs(request, context) {
      if (!instances.has(request.instanceId) && !logs.has(request.instanceId))
        throw new NotFoundError(`instance ${request.instanceId} is not on node ${nodeName}`, {
          instanceId: request.instanceId,
        });
      const minRank = request.minLevel === '' ? 0 : LEVEL_RANK[request.minLevel];
      const buffer = (): LogEntry[] => logs.get(request.instanceId) ?? [];
      const backlog = request.backlogLines === 0 ? [] : buffer().slice(-request.backlogLines);
      for (const entry of backlog) if (LEVEL_RANK[entry.level] >= minRank) yield entry;
      if (!request.follow) return;
      let sent = buffer().length;
      const ended = AbortSignal.any([context.signal, lifetime.signal]);
      while (!ended.aborted) {
        const fresh = buffer().slice(sent);
        sent += fresh.length;
        for (const entry of fresh) if (LEVEL_RANK[entry.level] >= minRank) yield entry;
        if (fresh.length > 0) continue;
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            followers.delete(wake);
            ended.removeEventListener('abort', wake);
            resolve();
          };
          followers.add(wake);
          ended.addEventListener('abort', wake);
        });
      }
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
    getInstance: (request, context) => {
      calls.getInstance.push(request);
      return chosen.getInstance(request, context);
    },
    listInstances: (request, context) => {
      calls.listInstances.push(request);
      return chosen.listInstances(request, context);
    },
    health: (request, context) => {
      calls.health.push(request);
      return chosen.health(request, context);
    },
    tailLogs: (request, context) => {
      calls.tailLogs.push(request);
      return tracked(chosen.tailLogs(request, context));
    },
  };

  let openTailLogs = 0;
  async function* tracked(source: AsyncIterable<LogEntryInput>): AsyncIterable<LogEntryInput> {
    openTailLogs++;
    try {
      yield* source;
    } finally {
      openTailLogs--;
    }
  }

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
    emitLog,
    openTailLogs: () => openTailLogs,
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
