// One instance on this node: its supervised child, its gateway port, its
// expiry timer, its recent log lines, and the row changes and events its
// lifecycle writes. The reconciler owns the set of runtimes. This module is
// the runtime's face; start, stop, expiry, state writes, key and environment
// have modules of their own next to it.
import type { DatabasePool } from 'slonik';
import type { Logger } from '../../core/logger.js';
import type { EnvelopeCipher } from '../../core/crypto/envelope.js';
import type { InstanceStopReason, StartFailure } from '../../core/agent-contract.js';
import type { RuntimeSpecRow } from '../../core/db/instances.js';
import type { AccessRecord, Gateway } from '../gateway/gateway.js';
import type { LogShipper } from '../node/log-shipper.js';
import type { WarmPool } from '../child/warm-pool.js';
import type { ChildRegistry, Supervisor, SupervisorEvent } from '../child/supervisor.js';
import type { Survivors } from '../child/survivors.js';
import type { ChildUsers } from '../child/child-users.js';
import { armExpiry } from './expiry.js';
import { createRuntimeContext } from './runtime-context.js';
import { start } from './runtime-start.js';
import { fail, stop } from './runtime-stop.js';

export type RuntimeState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Why a runtime stops; decides what is written to its row. */
export type StopReason = InstanceStopReason;

/** What instances count for the node's metrics (agent/node/metrics.ts), labelled by type name only. */
export interface InstanceMetrics {
  /** One MCP request answered through an instance's gateway. */
  mcpRequest(type: string, record: AccessRecord): void;
  /** An event of an instance's child: spawns and restarts are counted. */
  childEvent(type: string, event: SupervisorEvent): void;
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
  /** Access records go to the logs as source `access` unless disabled. */
  recordAccess: boolean;
  metrics?: InstanceMetrics;
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
}

export function createInstanceRuntime(
  initialSpec: RuntimeSpecRow,
  deps: RuntimeDeps,
): InstanceRuntime {
  const ctx = createRuntimeContext(initialSpec, deps);
  const ready = start(ctx);

  return {
    id: ctx.id,
    get state() {
      return ctx.state;
    },
    port: ctx.port,
    get pid() {
      return ctx.supervisor?.pid;
    },
    get spec() {
      return ctx.spec;
    },
    get failure() {
      return ctx.failure;
    },
    ready,
    refresh(next) {
      const tokenChanged = next.access_token_hash !== ctx.spec.access_token_hash;
      const expiryChanged = next.expires_at.getTime() !== ctx.spec.expires_at.getTime();
      ctx.spec = next;
      if (tokenChanged) ctx.gateway?.setTokenHash(next.access_token_hash);
      if (expiryChanged && ctx.state === 'running') armExpiry(ctx);
    },
    stop: (reason) => stop(ctx, reason),
    async kill(code, reason) {
      if (ctx.state !== 'running' && ctx.state !== 'starting') return;
      await fail(ctx, code, reason);
    },
    gateway: () => ctx.gateway,
    supervisor: () => ctx.supervisor,
  };
}
