// Diagnostic tools of the demo server: slow_count (progress notifications and
// cancellation) and log_to_stderr (log capture), used by the gateway tests.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Logger } from '../../shared/log.js';
import { toolResult } from '../../shared/tool-result.js';

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function registerDiagnosticTools(server: McpServer, log: Logger): void {
  server.registerTool(
    'slow_count',
    {
      title: 'Count slowly',
      description:
        'Counts from 1 to `to`, waiting `delay_ms` before each step. When the request carries a progressToken, sends a notifications/progress after every step. Stops early when the call is cancelled. Use it to test progress, cancellation and timeouts.',
      inputSchema: {
        to: z.number().int().min(1).max(10_000).describe('Number to count to'),
        delay_ms: z
          .number()
          .int()
          .min(0)
          .max(60_000)
          .default(100)
          .describe('Delay before each step, in milliseconds'),
      },
      outputSchema: { counted: z.number().int(), to: z.number().int(), completed: z.boolean() },
      annotations: {
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    async ({ to, delay_ms }, extra) => {
      const progressToken = extra._meta?.progressToken;
      let counted = 0;
      while (counted < to && (await wait(delay_ms, extra.signal))) {
        counted++;
        if (progressToken !== undefined)
          await extra.sendNotification({
            method: 'notifications/progress',
            params: {
              progressToken,
              progress: counted,
              total: to,
              message: `counted ${counted} of ${to}`,
            },
          });
      }
      if (counted < to) log.info('slow_count cancelled', { counted, to });
      return toolResult({ counted, to, completed: counted === to });
    },
  );

  server.registerTool(
    'log_to_stderr',
    {
      title: 'Write to stderr',
      description:
        'Writes a line to the server process\'s stderr (where the host captures logs), `repeat` times. Without `level` the line is written as is; with a level it is prefixed ("ERROR: ...") or, with format "json", wrapped as a JSON log object.',
      inputSchema: {
        line: z.string().max(10_000).describe('The text to write'),
        level: z.enum(['debug', 'info', 'warn', 'error']).optional(),
        format: z.enum(['prefix', 'json']).default('prefix'),
        repeat: z.number().int().min(1).max(1000).default(1),
      },
      outputSchema: { written: z.string(), times: z.number().int() },
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    ({ line, level, format, repeat }) => {
      const written =
        level === undefined
          ? line
          : format === 'json'
            ? JSON.stringify({ level, msg: line, time: new Date().toISOString() })
            : `${level.toUpperCase()}: ${line}`;
      process.stderr.write(`${written}\n`.repeat(repeat));
      return toolResult({ written, times: repeat });
    },
  );
}
