// What one instance runtime holds while it lives: its spec, lifecycle state,
// child, gateway, expiry timer and recent log lines. The runtime's parts
// (start, stop, expiry, state writes, logs) are functions over it.
import path from 'node:path';
import type { RuntimeSpecRow } from '../../core/db/instances.js';
import type { Logger } from '../../core/logger.js';
import type { Supervisor } from '../child/supervisor.js';
import type { Gateway } from '../gateway/gateway.js';
import type { RuntimeDeps, RuntimeState, StartFailure } from './instance-runtime.js';

export interface RuntimeContext {
  readonly id: string;
  readonly port: number;
  readonly deps: RuntimeDeps;
  readonly log: Logger;
  readonly workDir: string;
  /** Where the gateway keeps client sessions across agent restarts; unset: not kept. */
  readonly sessionsFile: string | undefined;
  /** The row's values; refresh() replaces them. */
  spec: RuntimeSpecRow;
  state: RuntimeState;
  failure: StartFailure | undefined;
  supervisor: Supervisor | undefined;
  gateway: Gateway | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  /** The one stop in progress or done. */
  stopping: Promise<void> | undefined;
  /** Children that completed their handshake (the first, then restarts). */
  readyCount: number;
  /** The first child was a previous agent's, taken over rather than spawned. */
  reattached: boolean;
}

export function createRuntimeContext(spec: RuntimeSpecRow, deps: RuntimeDeps): RuntimeContext {
  const id = spec.id;
  const port = spec.assigned_port ?? 0;
  return {
    id,
    port,
    deps,
    log: deps.logger.child({ instanceId: id, port }),
    workDir: path.join(deps.workRoot, id),
    sessionsFile: deps.sessionsRoot ? path.join(deps.sessionsRoot, `${id}.json`) : undefined,
    spec,
    state: 'starting',
    failure: undefined,
    supervisor: undefined,
    gateway: undefined,
    expiryTimer: undefined,
    stopping: undefined,
    readyCount: 0,
    reattached: false,
  };
}
