// One instance on this node: its supervised child, its gateway port, its
// expiry timer, its recent log lines, and the row changes and events its
// lifecycle writes. The reconciler owns the set of runtimes.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DatabasePool } from 'slonik';
import type { Logger } from '../../core/logger.js';
import type { EnvelopeCipher } from '../../core/crypto/envelope.js';
import { envelopeFromRow, findApiKeyById } from '../../core/db/api-keys.js';
import { insertEvent } from '../../core/db/events.js';
import {
  findRuntimeSpec,
  updateInstanceRuntime,
  type RuntimeSpecRow,
} from '../../core/db/instances.js';
import { releasePortsOfInstance } from '../../core/db/ports.js';
import type {
  EventType,
  InstanceStatus,
  JsonObject,
  LogLevel,
  LogSource,
} from '../../core/domain.js';
import type { InstanceStopReason, StartFailure } from '../../core/agent-contract.js';
import {
  DecryptionError,
  isMiniMcpError,
  KeyMissingError,
  McpServerStartError,
  type McpServerStartReason,
} from '../../core/errors.js';
import { createGateway, type AccessRecord, type Gateway } from '../gateway/gateway.js';
import { createFileSessionStore } from '../gateway/session-store.js';
import type { LogShipper } from '../node/log-shipper.js';
import type { WarmPool } from '../child/warm-pool.js';
import { parseLogLevel } from '../child/log-levels.js';
import { isPoolable, resolveCommand } from '../child/server-command.js';
import {
  createSupervisor,
  type ChildRegistry,
  type Supervisor,
  type SupervisorEvent,
} from '../child/supervisor.js';
import { launchFingerprint, type Survivors } from '../child/survivors.js';
import type { ChildUsers } from '../child/child-users.js';

export type RuntimeState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Why a runtime stops; decides what is written to its row. */
export type StopReason = InstanceStopReason;

export interface RuntimeLogLine {
  at: Date;
  level: LogLevel;
  source: LogSource;
  message: string;
}

export interface RuntimeDeps {
  nodeId: string;
  pool: DatabasePool;
  cipher: EnvelopeCipher;
  shipper: LogShipper;
  registry: ChildRegistry;
  /** Where children's stdio FIFO folders go (agent/child/child-stdio.ts). */
  stdioRoot?: string;
  /** Children a previous agent left running, for their instances to take over. */
  survivors?: Survivors;
  /** OS users for children (MINIMCP_CHILD_UIDS); unset: children run as the agent's user. */
  users?: ChildUsers;
  /** Where client sessions are kept across agent restarts (agent/gateway/session-store.ts). */
  sessionsRoot?: string;
  /** Pre-spawned children of built-in types; unset or empty: every start spawns. */
  warmPool?: WarmPool;
  /** Folder the built-in `server_script` paths are relative to (dist/). */
  serversRoot: string;
  /** Each instance's working directory is created under it. */
  workRoot: string;
  bindHost: string;
  /** Host names clients use (the node's public host); loopback names are always allowed. */
  publicHost: string;
  allowedOrigins?: readonly string[];
  /** Operator-set upstream base URLs by type name (GitHub Enterprise, tests). */
  upstreamOverrides: Readonly<Record<string, string>>;
  handshakeTimeoutMs: number;
  stopGraceMs: number;
  maxRestarts: number;
  logger: Logger;
  /** Access records go to the logs as source `api` unless disabled. */
  recordAccess: boolean;
}

export type { StartFailure };

export interface InstanceRuntime {
  readonly id: string;
  readonly state: RuntimeState;
  readonly port: number;
  readonly pid: number | undefined;
  readonly spec: RuntimeSpecRow;
  readonly failure: StartFailure | undefined;
  /** Resolves once running, or with the failure. */
  readonly ready: Promise<StartFailure | undefined>;
  /** New row values (token rotation, extension) without a restart. */
  refresh(spec: RuntimeSpecRow): void;
  stop(reason: StopReason): Promise<void>;
  /** Ends a misbehaving instance: child killed, row `error` with the reason, port released. */
  kill(code: string, reason: string): Promise<void>;
  gateway(): Gateway | undefined;
  supervisor(): Supervisor | undefined;
  recentLogs(): readonly RuntimeLogLine[];
  subscribeLogs(listener: (line: RuntimeLogLine) => void): () => void;
}

const RECENT_LOG_LINES = 200;
/** Statuses the agent may end itself; anything else was decided by someone else first. */
const LIVE: readonly InstanceStatus[] = ['pending', 'running'];
/** setTimeout's ceiling; longer expiries re-arm when it fires. */
const MAX_TIMER_MS = 2_147_000_000;

/** Strings inside a JSON key (e.g. a refresh token and client secret) are secrets too. */
function secretsOf(key: string | undefined): string[] {
  if (!key) return [];
  const secrets = [key];
  try {
    const parsed: unknown = JSON.parse(key);
    if (parsed && typeof parsed === 'object') {
      for (const value of Object.values(parsed))
        if (typeof value === 'string' && value.length >= 8) secrets.push(value);
    }
  } catch {
    // A plain token: the whole string is the secret.
  }
  return secrets;
}

function describeEvent(event: SupervisorEvent): { level: LogLevel; message: string } | undefined {
  switch (event.type) {
    case 'spawned':
      return {
        level: 'info',
        message: `spawned pid ${event.pid} (attempt ${event.attempt}${event.warm ? ', from the warm pool' : ''})`,
      };
    case 'ready':
      if (event.adopted)
        return {
          level: 'info',
          message: `re-attached to pid ${event.pid} (started by a previous agent): ${event.initializeResult.serverInfo.name} ${event.initializeResult.serverInfo.version}`,
        };
      return {
        level: 'info',
        message: `ready in ${Math.round(event.handshakeMs)} ms: ${event.initializeResult.serverInfo.name} ${event.initializeResult.serverInfo.version}`,
      };
    case 'exited':
      return event.expected
        ? { level: 'info', message: `stopped: ${event.reason}` }
        : { level: 'error', message: `exited unexpectedly: ${event.reason}` };
    case 'restarting':
      return {
        level: 'warn',
        message: `restarting in ${event.delayMs} ms (attempt ${event.attempt}): ${event.reason}`,
      };
    case 'failed':
      return { level: 'error', message: `gave up restarting: ${event.reason}` };
    default:
      return undefined;
  }
}

export function createInstanceRuntime(
  initialSpec: RuntimeSpecRow,
  deps: RuntimeDeps,
): InstanceRuntime {
  let spec = initialSpec;
  const id = spec.id;
  const port = spec.assigned_port ?? 0;
  let state: RuntimeState = 'starting';
  let failure: StartFailure | undefined;
  let supervisor: Supervisor | undefined;
  let gateway: Gateway | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  let readyCount = 0;
  /** The first child was a previous agent's, taken over rather than spawned. */
  let reattached = false;
  const recent: RuntimeLogLine[] = [];
  const logListeners = new Set<(line: RuntimeLogLine) => void>();
  const log = deps.logger.child({ instanceId: id, port });
  const workDir = path.join(deps.workRoot, id);
  const sessionsFile = deps.sessionsRoot ? path.join(deps.sessionsRoot, `${id}.json`) : undefined;

  const emit = (
    level: LogLevel,
    source: LogSource,
    message: string,
    metadata?: JsonObject,
    at = new Date(),
  ): boolean => {
    const line = { at, level, source, message };
    recent.push(line);
    if (recent.length > RECENT_LOG_LINES) recent.shift();
    for (const listener of logListeners) listener(line);
    // false: the shipper's queue is full (the child's output is paused on it).
    return deps.shipper.push({
      instanceId: id,
      timestamp: at,
      level,
      source,
      message,
      ...(metadata ? { metadata } : {}),
    });
  };

  /** Row change + event in one transaction; false if the row moved away from this node. */
  const writeState = async (
    change: { status?: InstanceStatus; processId?: number | null; errorMessage?: string | null },
    event: { type: EventType; data?: JsonObject },
    options: { releasePort?: boolean; fromStatuses?: readonly InstanceStatus[] } = {},
  ): Promise<boolean> =>
    deps.pool.transaction(async (tx) => {
      const updated = await updateInstanceRuntime(
        tx,
        id,
        deps.nodeId,
        change,
        options.fromStatuses,
      );
      if (!updated) return false;
      if (options.releasePort) await releasePortsOfInstance(tx, id);
      await insertEvent(tx, {
        instanceId: id,
        userId: spec.user_id,
        type: event.type,
        data: { node_id: deps.nodeId, ...event.data },
      });
      return true;
    });

  const armExpiry = () => {
    if (expiryTimer) clearTimeout(expiryTimer);
    const delay = Math.max(0, Math.min(spec.expires_at.getTime() - Date.now(), MAX_TIMER_MS));
    expiryTimer = setTimeout(() => void onExpiryTimer(), delay);
    expiryTimer.unref();
  };

  const onExpiryTimer = async () => {
    if (state === 'stopping' || state === 'stopped') return;
    try {
      const current = await findRuntimeSpec(deps.pool, id);
      if (current && current.expires_at.getTime() > Date.now() && !current.deleted_at) {
        spec = current; // extended meanwhile
        armExpiry();
        return;
      }
    } catch (error) {
      log.warn(
        { err: String(error) },
        'could not re-read the instance at expiry; expiring it as scheduled',
      );
    }
    await stop('expired');
  };

  const fail = async (code: string, message: string, reason?: McpServerStartReason) => {
    failure = { code, message, reason };
    state = 'failed';
    emit('error', 'system', `failed to run: ${message}`);
    if (expiryTimer) clearTimeout(expiryTimer);
    await gateway?.close().catch(() => undefined);
    await supervisor?.stop().catch(() => undefined);
    await writeState(
      { status: 'error', processId: null, errorMessage: message },
      { type: 'error', data: { code, message } },
      { releasePort: true },
    ).catch((error: unknown) => log.error({ err: String(error) }, 'could not record the failure'));
  };

  const onSupervisorEvent = (event: SupervisorEvent) => {
    const described = describeEvent(event);
    if (described) emit(described.level, 'system', described.message);
    if (event.type === 'ready') {
      readyCount++;
      if (readyCount === 1) reattached = event.adopted;
      if (readyCount > 1 && state === 'running') {
        void writeState(
          { processId: event.pid, status: 'running', errorMessage: null },
          { type: 'restarted', data: { pid: event.pid } },
        ).catch((error: unknown) =>
          log.warn({ err: String(error) }, 'could not record the restart'),
        );
      }
    }
    // While starting, start() itself reports the failure with its precise cause.
    if (event.type === 'failed' && state === 'running') {
      void fail(
        'CHILD_EXITED',
        `the MCP server kept exiting: ${event.reason}${event.stderrTail.length ? ` — last stderr: ${event.stderrTail.slice(-3).join(' | ')}` : ''}`,
      );
    }
  };

  const onAccess = (record: AccessRecord) => {
    if (!deps.recordAccess) return;
    const what = record.toolName
      ? `${record.mcpMethod} ${record.toolName}`
      : (record.mcpMethod ?? record.httpMethod);
    deps.shipper.push({
      instanceId: id,
      timestamp: new Date(record.at),
      level:
        record.status >= 500
          ? 'error'
          : record.status >= 400 || record.rpcErrorCode !== undefined
            ? 'warn'
            : 'info',
      source: 'api',
      message: `${what} → ${record.status} in ${record.latencyMs.toFixed(1)} ms`,
      metadata: {
        http_method: record.httpMethod,
        mcp_method: record.mcpMethod ?? null,
        tool: record.toolName ?? null,
        status: record.status,
        rpc_error_code: record.rpcErrorCode ?? null,
        latency_ms: record.latencyMs,
        session_id: record.sessionId ?? null,
      },
    });
  };

  const start = async (): Promise<StartFailure | undefined> => {
    try {
      if (!spec.assigned_port) throw new Error('the instance has no assigned port');
      const { command, args } = resolveCommand(spec, deps.serversRoot, spec.type_name);
      let key: string | undefined;
      if (spec.api_key_id) {
        const row = await findApiKeyById(deps.pool, spec.api_key_id);
        if (!row)
          throw new KeyMissingError(`the ${spec.type_name} key of this instance was deleted`, {
            instanceId: id,
          });
        if (!spec.user_id)
          throw new KeyMissingError('the instance has no owner to decrypt its key for', {
            instanceId: id,
          });
        try {
          key = await deps.cipher.decrypt(envelopeFromRow(row), {
            userId: spec.user_id,
            mcpType: spec.type_name,
          });
        } catch (error) {
          if (!(error instanceof DecryptionError)) throw error;
          // The provider's reason (master key id or ARN, KMS error) is for
          // operators; the owner reads the failure (instance error, its log,
          // the API's 502) and is told what to do.
          log.warn({ err: error.message }, 'the stored key of this instance cannot be decrypted');
          const type = spec.type_name;
          throw new DecryptionError(
            `the stored ${type} key cannot be decrypted (altered, or not this user's or type's key); store it again with PUT /v1/keys/${type}`,
            { instanceId: id },
            { cause: error },
          );
        }
      } else if (spec.requires_key) {
        throw new KeyMissingError(`type ${spec.type_name} needs a key and the instance has none`, {
          instanceId: id,
        });
      }
      const env: Record<string, string> = {
        MINIMCP_CONFIG: JSON.stringify({ ...spec.config_template, ...(spec.config ?? {}) }),
        MINIMCP_INSTANCE_ID: id,
      };
      if (key !== undefined) env.MINIMCP_API_KEY = key;
      const upstream = deps.upstreamOverrides[spec.type_name];
      if (upstream) env.MINIMCP_UPSTREAM_URL = upstream;
      for (const [name, template] of Object.entries(spec.env_mapping)) {
        env[name] = template.replaceAll('{{key}}', key ?? '');
      }

      await mkdir(workDir, { recursive: true, mode: 0o700 });
      const fingerprint = launchFingerprint({
        command,
        args,
        env,
        runAs: deps.users ? 'own-user' : 'agent-user',
      });
      const survivor = deps.survivors?.claim(id, fingerprint);
      supervisor = createSupervisor({
        command,
        args,
        env,
        cwd: workDir,
        secrets: secretsOf(key),
        label: id,
        registry: deps.registry,
        fingerprint,
        ...(survivor ? { adopt: survivor } : {}),
        ...(deps.stdioRoot ? { stdioRoot: deps.stdioRoot } : {}),
        ...(deps.users ? { users: deps.users } : {}),
        handshakeTimeoutMs: deps.handshakeTimeoutMs,
        stopGraceMs: deps.stopGraceMs,
        maxRestarts: deps.maxRestarts,
        ...(deps.warmPool && isPoolable(spec)
          ? { takeWarmChild: () => deps.warmPool?.take(spec.type_name, command, args) }
          : {}),
        onLog: (line) =>
          emit(
            line.stream === 'system' ? 'warn' : parseLogLevel(line.text),
            line.stream === 'system' ? 'system' : 'process',
            line.text,
            undefined,
            new Date(line.at),
          ),
        // Backpressure: a child whose lines the shipper cannot take yet is not read.
        whenLogRoom: (resume) => deps.shipper.onDrain(resume),
        onEvent: onSupervisorEvent,
      });
      key = undefined;
      await supervisor.start();
      if (state !== 'starting') return failure; // stopped while starting
      // Sessions go on only with the child they were opened with (taken over, not restarted).
      if (sessionsFile && !reattached) await rm(sessionsFile, { force: true });
      gateway = await createGateway({
        port: spec.assigned_port,
        host: deps.bindHost,
        tokenHash: spec.access_token_hash,
        upstream: supervisor,
        ...(sessionsFile ? { sessionStore: createFileSessionStore(sessionsFile) } : {}),
        onAccess,
        allowedHosts: [deps.publicHost],
        ...(deps.allowedOrigins ? { allowedOrigins: deps.allowedOrigins } : {}),
      });
      if (state !== 'starting') {
        await gateway.close();
        return failure;
      }
      const moved = !(await writeState(
        { status: 'running', processId: supervisor.pid ?? null, errorMessage: null },
        {
          type: reattached ? 'reattached' : 'started',
          data: { pid: supervisor.pid ?? null, port: spec.assigned_port },
        },
      ));
      if (moved) {
        await stop('moved');
        return { code: 'MOVED', message: 'the instance is no longer assigned to this node' };
      }
      state = 'running';
      armExpiry();
      log.info({ pid: supervisor.pid }, 'instance running');
      return undefined;
    } catch (error) {
      if (state !== 'starting') return failure;
      const code = isMiniMcpError(error) ? error.code : 'START_FAILED';
      const message = error instanceof Error ? error.message : String(error);
      await fail(code, message, error instanceof McpServerStartError ? error.reason : undefined);
      return failure;
    }
  };

  const stop = (reason: StopReason): Promise<void> => {
    stopping ??= (async () => {
      const wasRunning = state === 'running';
      state = 'stopping';
      if (expiryTimer) clearTimeout(expiryTimer);
      try {
        await gateway?.close();
      } finally {
        await supervisor?.stop();
      }
      state = 'stopped';
      emit('info', 'system', `stopped (${reason})`);
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
      if (sessionsFile) await rm(sessionsFile, { force: true }).catch(() => undefined);
      try {
        if (reason === 'expired') {
          await writeState(
            { status: 'expired', processId: null },
            { type: 'expired', data: { port } },
            { releasePort: true, fromStatuses: LIVE },
          );
        } else if (reason === 'shutdown' && wasRunning) {
          await writeState(
            { status: 'disconnected', processId: null },
            { type: 'disconnected', data: { reason: 'agent shutdown' } },
            { releasePort: true, fromStatuses: LIVE },
          );
        } else if (reason === 'deleted') {
          await updateInstanceRuntime(deps.pool, id, deps.nodeId, { processId: null });
        }
      } catch (error) {
        log.error({ err: String(error), reason }, 'could not record the stop');
      }
    })();
    return stopping;
  };

  const ready = start();

  return {
    id,
    get state() {
      return state;
    },
    port,
    get pid() {
      return supervisor?.pid;
    },
    get spec() {
      return spec;
    },
    get failure() {
      return failure;
    },
    ready,
    refresh(next) {
      const tokenChanged = next.access_token_hash !== spec.access_token_hash;
      const expiryChanged = next.expires_at.getTime() !== spec.expires_at.getTime();
      spec = next;
      if (tokenChanged) gateway?.setTokenHash(next.access_token_hash);
      if (expiryChanged && state === 'running') armExpiry();
    },
    stop,
    async kill(code, reason) {
      if (state !== 'running' && state !== 'starting') return;
      await fail(code, reason);
    },
    gateway: () => gateway,
    supervisor: () => supervisor,
    recentLogs: () => [...recent],
    subscribeLogs(listener) {
      logListeners.add(listener);
      return () => logListeners.delete(listener);
    },
  };
}
