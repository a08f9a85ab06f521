// Runs a built-in McpServer over stdio the way the host agent expects: env parsed
// once, every outgoing message and stderr line redacted, and a prompt exit when
// stdin closes (the supervisor is gone) or on SIGTERM/SIGINT. Started warm
// (MINIMCP_BINDING_FD set), it first waits, code loaded, for its instance's
// environment on that pipe (./binding.ts).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type {
  Transport,
  TransportSendOptions,
} from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { applyBinding, readBinding } from './binding.js';
import { readServerEnv, type BaseConfig, type ServerEnv } from './env.js';
import { createLogger, type Logger } from './log.js';
import { createRedactor, guardStderr, type Redactor } from './redact.js';
import { warmUp } from './warm-up.js';

export interface ServerContext<C extends BaseConfig> {
  env: ServerEnv<C>;
  redactor: Redactor;
  log: Logger;
}

export interface ServerDefinition<C extends BaseConfig> {
  /** Short name used in logs, e.g. `github`. */
  name: string;
  requiresKey: boolean;
  configSchema: z.ZodType<C>;
  create(context: ServerContext<C>): McpServer;
}

/** Delegates to the stdio transport, redacting each outgoing message. */
class RedactingTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: Transport['onmessage'];

  constructor(
    private readonly inner: Transport,
    private readonly redactor: Redactor,
  ) {}

  async start(): Promise<void> {
    this.inner.onmessage = (message, extra) => this.onmessage?.(message, extra);
    this.inner.onclose = () => this.onclose?.();
    this.inner.onerror = (error) => this.onerror?.(error);
    await this.inner.start();
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.inner.send(this.redactor.value(message), options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export async function runStdioServer<C extends BaseConfig>(
  definition: ServerDefinition<C>,
): Promise<void> {
  const log = createLogger(definition.name);
  const redactor = createRedactor();
  guardStderr(redactor);

  const fail = (message: string, error?: unknown): never => {
    log.error(message, error === undefined ? undefined : { error: describe(error) });
    process.exit(1);
  };
  // Node prints uncaught errors straight to fd 2, past the stderr guard; report them ourselves.
  process.on('uncaughtException', (error) => fail('uncaught exception', error));
  process.on('unhandledRejection', (reason) => fail('unhandled rejection', reason));

  let source = process.env;
  const bindingFd = process.env.MINIMCP_BINDING_FD;
  if (bindingFd !== undefined) {
    let taken = false;
    const reading = readBinding(Number(bindingFd)).then((result) => {
      taken = true;
      return result;
    });
    await warmUp(definition, () => taken);
    const binding = await reading;
    if (!binding.ok) return fail(binding.message);
    // Released unused (the pool closed, or the agent is gone): nothing to report.
    if (binding.value === undefined) process.exit(0);
    source = applyBinding(binding.value);
  }
  if (source.MINIMCP_API_KEY) redactor.add(source.MINIMCP_API_KEY.trim());

  const env = readServerEnv(source, definition);
  if (!env.ok) return fail(env.message);

  let server: McpServer;
  try {
    server = definition.create({ env: env.value, redactor, log });
  } catch (error) {
    // A key or config the server cannot use: say why (redacted) and stop, rather than serve errors.
    return fail(`cannot start: ${(error as Error).message}`);
  }
  const transport = new RedactingTransport(new StdioServerTransport(), redactor);

  let closing = false;
  const shutdown = (reason: string): void => {
    if (closing) return;
    closing = true;
    log.info('shutting down', { reason });
    server
      .close()
      .catch((error: unknown) => log.error('close failed', { error: describe(error) }))
      .finally(() => process.exit(0));
  };
  // The agent's supervisor holds our stdin: when it closes, nobody can talk to us any more.
  process.stdin.once('end', () => shutdown('stdin closed'));
  process.stdin.once('close', () => shutdown('stdin closed'));
  process.stdout.once('error', () => shutdown('stdout closed'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  await server.connect(transport);
  log.info('ready', { upstream: env.value.upstreamUrl ?? 'default' });
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
