// The keyless demo server, driven over stdio by the real SDK client: its tools,
// progress notifications, cancellation and stderr logging.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  ProgressNotificationSchema,
  type ProgressNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { startMcpChild, textOf, type McpChild } from '../../support/mcp-child.js';

describe('demo MCP server', () => {
  type Progress = ProgressNotification['params'];
  let child: McpChild;
  const progressWatchers = new Set<(progress: Progress) => void>();
  const watchProgress = (watcher: (progress: Progress) => void): void => {
    progressWatchers.add(watcher);
  };

  beforeAll(async () => {
    child = await startMcpChild('demo', {});
    child.client.setNotificationHandler(ProgressNotificationSchema, (notification) => {
      for (const watcher of progressWatchers) watcher(notification.params);
    });
  });
  afterAll(async () => {
    await child?.close();
  });

  test('lists its five tools with schemas and annotations', async () => {
    const { tools } = await child.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      ['add', 'current_time', 'echo', 'log_to_stderr', 'slow_count'].sort(),
    );
    const echo = tools.find((t) => t.name === 'echo');
    expect(echo?.inputSchema.properties).toHaveProperty('text');
    expect(echo?.outputSchema?.properties).toHaveProperty('text');
    expect(echo?.annotations).toMatchObject({ readOnlyHint: true, openWorldHint: false });
    expect(tools.find((t) => t.name === 'log_to_stderr')?.annotations?.readOnlyHint).toBe(false);
  });

  test('echo returns its text as content and structured content', async () => {
    const result = await child.callTool('echo', { text: 'héllo, world' });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe('héllo, world');
    expect(result.structuredContent).toEqual({ text: 'héllo, world' });
  });

  test('add sums the numbers', async () => {
    const result = await child.callTool('add', { numbers: [2, 3.5, -1] });
    expect(result.structuredContent).toEqual({ sum: 4.5, count: 3 });
    expect(JSON.parse(textOf(result))).toEqual({ sum: 4.5, count: 3 });
  });

  test('add reports a sum too large to represent', async () => {
    const result = await child.callTool('add', { numbers: [1e308, 1e308] });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/too large/);
  });

  test('add rejects a call without numbers', async () => {
    const result = await child.callTool('add', { numbers: [] });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/numbers/);
  });

  test('current_time gives the time in UTC and in a named time zone', async () => {
    const before = Date.now();
    const utc = await child.callTool('current_time');
    const tokyo = await child.callTool('current_time', { time_zone: 'Asia/Tokyo' });
    const after = Date.now();

    const utcTime = utc.structuredContent as {
      iso: string;
      unix_ms: number;
      time_zone: string;
      local: string;
    };
    expect(utcTime.time_zone).toBe('UTC');
    expect(utcTime.unix_ms).toBeGreaterThanOrEqual(before);
    expect(utcTime.unix_ms).toBeLessThanOrEqual(after);
    expect(new Date(utcTime.iso).getTime()).toBe(utcTime.unix_ms);
    expect(utcTime.local).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

    const tokyoTime = tokyo.structuredContent as { unix_ms: number; local: string };
    // Tokyo is UTC+9 all year: its wall clock, read as UTC, is nine hours ahead.
    const wallClock = Date.parse(`${tokyoTime.local.replace(' ', 'T')}Z`);
    expect(wallClock - Math.floor(tokyoTime.unix_ms / 1000) * 1000).toBe(9 * 3600 * 1000);
  });

  test('current_time explains an unknown time zone', async () => {
    const result = await child.callTool('current_time', { time_zone: 'Mars/Olympus_Mons' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Unknown time zone "Mars/Olympus_Mons"');
  });

  test('slow_count sends a progress notification for every step', async () => {
    const progress: Progress[] = [];
    // Our own handler sees every notification; the SDK's onprogress drops those that
    // arrive in the same read as the result.
    watchProgress((p) => {
      if (p.progressToken === 'count-4') progress.push(p);
    });

    const result = await child.client.callTool({
      name: 'slow_count',
      arguments: { to: 4, delay_ms: 5 },
      _meta: { progressToken: 'count-4' },
    });

    expect(result.structuredContent).toEqual({ counted: 4, to: 4, completed: true });
    expect(progress).toEqual(
      [1, 2, 3, 4].map((n) => ({
        progressToken: 'count-4',
        progress: n,
        total: 4,
        message: `counted ${n} of 4`,
      })),
    );
  });

  test('slow_count counts without a progress token', async () => {
    const result = await child.callTool('slow_count', { to: 2, delay_ms: 0 });
    expect(result.structuredContent).toEqual({ counted: 2, to: 2, completed: true });
  });

  test('slow_count stops early when the call is cancelled', async () => {
    const controller = new AbortController();
    watchProgress((p) => {
      if (p.progressToken === 'count-big' && p.progress === 2) controller.abort('test cancels');
    });

    const call = child.client.callTool(
      {
        name: 'slow_count',
        arguments: { to: 10_000, delay_ms: 20 },
        _meta: { progressToken: 'count-big' },
      },
      undefined,
      { signal: controller.signal },
    );

    await expect(call).rejects.toThrow();
    // The server logs where it stopped; it would only finish after 10 000 steps.
    const line = await child.waitForStderr(/"msg":"slow_count cancelled"/);
    const logged = JSON.parse(line) as { counted: number; to: number };
    expect(logged.to).toBe(10_000);
    expect(logged.counted).toBeGreaterThanOrEqual(2);
    expect(logged.counted).toBeLessThan(10_000);
  });

  test('log_to_stderr writes plain, prefixed and JSON lines to stderr', async () => {
    const plain = await child.callTool('log_to_stderr', { line: 'plain line 7f3a' });
    expect(plain.structuredContent).toEqual({ written: 'plain line 7f3a', times: 1 });
    await child.callTool('log_to_stderr', { line: 'disk on fire 7f3a', level: 'error', repeat: 2 });
    const json = await child.callTool('log_to_stderr', {
      line: 'structured 7f3a',
      level: 'warn',
      format: 'json',
    });

    await child.waitForStderr(/^plain line 7f3a$/);
    await child.waitForStderr(/structured 7f3a/);
    const lines = child.stderr().split('\n');
    expect(lines.filter((l) => l === 'ERROR: disk on fire 7f3a')).toHaveLength(2);
    const jsonLine = lines.find((l) => l.includes('structured 7f3a')) ?? '';
    expect(JSON.parse(jsonLine)).toMatchObject({ level: 'warn', msg: 'structured 7f3a' });
    expect((json.structuredContent as { written: string }).written).toBe(jsonLine);
  });
});
