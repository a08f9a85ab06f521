// The demo's everyday tools: echo, add and current_time.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { toolResult } from '../../shared/tool-result.js';

const pure = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
} as const;

export function registerBasicTools(server: McpServer): void {
  server.registerTool(
    'echo',
    {
      title: 'Echo',
      description: 'Returns the given text unchanged. Use it to check that the server answers.',
      inputSchema: { text: z.string().max(100_000).describe('Text to send back') },
      outputSchema: { text: z.string() },
      annotations: pure,
    },
    ({ text }) => ({ content: [{ type: 'text', text }], structuredContent: { text } }),
  );

  server.registerTool(
    'add',
    {
      title: 'Add numbers',
      description:
        'Adds a list of numbers and returns the sum, e.g. numbers [2, 3.5, -1] gives 4.5.',
      inputSchema: {
        numbers: z.array(z.number()).min(1).max(1000).describe('The numbers to add (1 to 1000)'),
      },
      outputSchema: { sum: z.number(), count: z.number().int() },
      annotations: pure,
    },
    ({ numbers }) => {
      const sum = numbers.reduce((total, n) => total + n, 0);
      if (!Number.isFinite(sum))
        throw new Error('The sum is too large to represent as a number; add smaller values.');
      return toolResult({ sum, count: numbers.length });
    },
  );

  server.registerTool(
    'current_time',
    {
      title: 'Current time',
      description:
        'Returns the current date and time: ISO 8601 (UTC), Unix milliseconds, and the wall-clock time in the requested IANA time zone (default UTC).',
      inputSchema: {
        time_zone: z
          .string()
          .max(64)
          .default('UTC')
          .describe('IANA time zone, e.g. "Europe/Paris" or "America/New_York"'),
      },
      outputSchema: {
        iso: z.string(),
        unix_ms: z.number().int(),
        time_zone: z.string(),
        local: z.string().describe('YYYY-MM-DD HH:MM:SS in time_zone'),
      },
      annotations: { ...pure, idempotentHint: false },
    },
    ({ time_zone }) => {
      const now = new Date();
      let local: string;
      try {
        local = now.toLocaleString('sv-SE', { timeZone: time_zone, hour12: false });
      } catch (error) {
        throw new Error(
          `Unknown time zone ${JSON.stringify(time_zone)}; use an IANA name such as "Europe/Paris" or "UTC".`,
          { cause: error },
        );
      }
      return toolResult({ iso: now.toISOString(), unix_ms: now.getTime(), time_zone, local });
    },
  );
}
