// Drives MCP tool calls through the official SDK client: N workers share one
// client (one MCP session, N calls in flight), each calling in a loop until a
// call count or a time budget runs out, recording each call's latency.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { nodeHttpFetch } from './http-fetch.js';

export interface LoadResult {
  latenciesMs: number[];
  calls: number;
  errors: number;
  elapsedMs: number;
}

export interface LoadOptions {
  concurrency: number;
  maxCalls: number;
  maxMs: number;
}

export async function runLoad(
  call: () => Promise<unknown>,
  options: LoadOptions,
): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let started = 0;
  let errors = 0;
  const startedAt = performance.now();
  const deadline = startedAt + options.maxMs;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (started < options.maxCalls && performance.now() < deadline) {
        started++;
        const t0 = performance.now();
        try {
          await call();
          latenciesMs.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  return {
    latenciesMs,
    calls: latenciesMs.length,
    errors,
    elapsedMs: performance.now() - startedAt,
  };
}

/** Sums several runs of the same configuration (rounds interleaved with other configurations). */
export function mergeLoad(results: readonly LoadResult[]): LoadResult {
  return {
    latenciesMs: results.flatMap((r) => r.latenciesMs),
    calls: results.reduce((n, r) => n + r.calls, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    elapsedMs: results.reduce((n, r) => n + r.elapsedMs, 0),
  };
}

/**
 * An SDK client over Streamable HTTP with fixed headers (bearer token, Origin),
 * its requests sent by node:http (see http-fetch.ts).
 */
export async function connectHttpClient(
  url: string,
  headers: Record<string, string>,
): Promise<Client> {
  const client = new Client({ name: 'minimcp-bench', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers },
      fetch: nodeHttpFetch,
    }),
  );
  return client;
}
