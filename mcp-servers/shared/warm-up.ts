// Exercises a just-loaded server once, in memory, while it waits in the agent's
// warm pool: building an McpServer and answering initialize and tools/list
// (zod → JSON Schema for every tool) compiles those paths, so the instance that
// takes this process answers its first requests at warm speed. Best effort, and
// nothing leaves the process: no tool is called, the key is a placeholder. It
// yields to I/O between steps and stops as soon as `taken()` says the binding came.
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { BaseConfig } from './env.js';
import type { Logger } from './log.js';
import { createRedactor } from './redact.js';
import type { ServerDefinition } from './stdio-server.js';

const WARM_UP_TIMEOUT_MS = 5_000;
const TOOLS_LIST_ROUNDS = 3;
const WARM_UP_UPSTREAM = 'http://127.0.0.1:9';
const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Lets pending I/O callbacks (the binding pipe) run: the in-memory exchange is all microtasks. */
const yieldToIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function warmUp<C extends BaseConfig>(
  definition: ServerDefinition<C>,
  taken: () => boolean,
): Promise<void> {
  const config = definition.configSchema.safeParse({});
  if (!config.success) return;
  let timer: NodeJS.Timeout | undefined;
  const [client, serverSide] = InMemoryTransport.createLinkedPair();
  const pending = new Map<number, () => void>();
  client.onmessage = (message: JSONRPCMessage) => {
    if ('id' in message && typeof message.id === 'number') pending.get(message.id)?.();
  };
  const ask = (id: number, method: string, params: Record<string, unknown>): Promise<void> =>
    new Promise((resolve) => {
      pending.set(id, resolve);
      void client.send({ jsonrpc: '2.0', id, method, params });
    });
  try {
    const server = definition.create({
      // Should a server ever call out while being built, it reaches a closed local port, not its service.
      env: {
        apiKey: 'warm-up-placeholder-key',
        config: config.data,
        upstreamUrl: WARM_UP_UPSTREAM,
      },
      redactor: createRedactor(),
      log: silent,
    });
    const exercise = async (): Promise<void> => {
      await yieldToIo();
      if (taken()) return;
      await server.connect(serverSide);
      await client.start();
      await ask(0, 'initialize', {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'minimcp-warm-up', version: '0' },
      });
      await client.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      for (let round = 1; round <= TOOLS_LIST_ROUNDS; round++) {
        await yieldToIo();
        if (taken()) return;
        await ask(round, 'tools/list', {});
      }
    };
    await Promise.race([
      exercise(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, WARM_UP_TIMEOUT_MS);
        timer.unref();
      }),
    ]);
    await server.close();
  } catch {
    // A server that cannot be built without its real key or config just starts
    // unwarmed: the real binding decides whether it can run at all.
  } finally {
    clearTimeout(timer);
  }
}
