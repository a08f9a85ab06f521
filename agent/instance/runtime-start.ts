// How an instance runtime starts: key, environment and child, then its
// gateway on the instance's port, then the row says `running`. Any failure
// on the way ends the runtime as failed with the error's code.
import { mkdir, rm } from 'node:fs/promises';
import { isMiniMcpError, McpServerStartError } from '../../core/errors.js';
import { resolveCommand } from '../child/server-command.js';
import type { Supervisor } from '../child/supervisor.js';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { createFileSessionStore } from '../gateway/session-store.js';
import { childEnvironment } from './child-environment.js';
import { createInstanceSupervisor } from './child-launch.js';
import { armExpiry } from './expiry.js';
import { decryptInstanceKey, secretsOf } from './instance-key.js';
import type { StartFailure } from './instance-runtime.js';
import type { RuntimeContext } from './runtime-context.js';
import { recordAccess } from './runtime-logs.js';
import { fail, stop } from './runtime-stop.js';
import { writeState } from './state-writes.js';

/** Resolves once running (undefined), or with the failure; never rejects. */
export async function start(ctx: RuntimeContext): Promise<StartFailure | undefined> {
  try {
    const supervisor = await startChild(ctx);
    if (ctx.state !== 'starting') return ctx.failure; // stopped while starting
    // Sessions go on only with the child they were opened with (taken over, not restarted).
    if (ctx.sessionsFile && !ctx.reattached) await rm(ctx.sessionsFile, { force: true });
    const gateway = await openGateway(ctx, supervisor);
    if (ctx.state !== 'starting') {
      await gateway.close();
      return ctx.failure;
    }
    const moved = !(await writeState(
      ctx,
      { status: 'running', processId: supervisor.pid ?? null, errorMessage: null },
      {
        type: ctx.reattached ? 'reattached' : 'started',
        data: { pid: supervisor.pid ?? null, port: ctx.spec.assigned_port },
      },
    ));
    if (moved) {
      await stop(ctx, 'moved');
      return { code: 'MOVED', message: 'the instance is no longer assigned to this node' };
    }
    ctx.state = 'running';
    armExpiry(ctx);
    ctx.log.info({ pid: supervisor.pid }, 'instance running');
    return undefined;
  } catch (error) {
    if (ctx.state !== 'starting') return ctx.failure;
    const code = isMiniMcpError(error) ? error.code : 'START_FAILED';
    const message = error instanceof Error ? error.message : String(error);
    await fail(ctx, code, message, error instanceof McpServerStartError ? error.reason : undefined);
    return ctx.failure;
  }
}

/** The child started (or taken over); its supervisor is the runtime's from creation on. */
async function startChild(ctx: RuntimeContext): Promise<Supervisor> {
  ctx.supervisor = await prepareChild(ctx);
  await ctx.supervisor.start();
  return ctx.supervisor;
}

/**
 * Command, key and environment resolved and the working directory made. The
 * plaintext key goes no further than the child's environment and the
 * redaction list: this frame ends before the child starts.
 */
async function prepareChild(ctx: RuntimeContext): Promise<Supervisor> {
  const spec = ctx.spec;
  if (!spec.assigned_port) throw new Error('the instance has no assigned port');
  const { command, args } = resolveCommand(spec, ctx.deps.serversRoot, spec.type_name);
  const key = await decryptInstanceKey(spec, { ...ctx.deps, log: ctx.log });
  const env = childEnvironment(spec, key, ctx.deps.upstreamOverrides);
  await mkdir(ctx.workDir, { recursive: true, mode: 0o700 });
  return createInstanceSupervisor(ctx, spec, { command, args, env, secrets: secretsOf(key) });
}

async function openGateway(ctx: RuntimeContext, supervisor: Supervisor): Promise<Gateway> {
  const { deps, sessionsFile } = ctx;
  ctx.gateway = await createGateway({
    port: ctx.port,
    host: deps.bindHost,
    tokenHash: ctx.spec.access_token_hash,
    upstream: supervisor,
    ...(sessionsFile ? { sessionStore: createFileSessionStore(sessionsFile) } : {}),
    onAccess: (record) => {
      ctx.deps.metrics?.mcpRequest(ctx.spec.type_name, record);
      recordAccess(ctx, record);
    },
    logger: ctx.log,
    allowedHosts: [deps.publicHost],
    ...(deps.allowedOrigins ? { allowedOrigins: deps.allowedOrigins } : {}),
  });
  return ctx.gateway;
}
