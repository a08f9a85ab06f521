// `minimcp logs <id>` (one page, or --follow: poll for new lines) and
// `minimcp events <id>` (the audit trail).
import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import { EventPageSchema, LogPageSchema, type LogLine } from './api-schemas.js';
import { apiOf, wantsJson, type CliContext } from './context.js';
import { examples } from './help.js';
import { parsePositiveInt, parseSince } from './option-parsers.js';
import { printResult, table } from './output.js';
import { LOG_LEVELS } from '../../../core/domain.js';

/** Lines can land a little after newer ones (agent batches, spool replays): look back this far. */
const LOOKBACK_MS = 30_000;
const MAX_PAGES_PER_POLL = 20;

interface LogsOptions {
  follow?: boolean;
  level?: string;
  since?: string;
  until?: string;
  grep?: string;
  limit: number;
  interval: number;
}

type LogQuery = Record<string, string | number | undefined>;

const logsRoute = (id: string) => `/v1/instances/${encodeURIComponent(id)}/logs`;

export function registerLogCommands(program: Command, ctx: CliContext): void {
  program
    .command('logs')
    .argument('<id>', 'instance id')
    .description("an instance's captured logs (process, system and access records), oldest first")
    .option('-f, --follow', 'keep printing new lines as they arrive (Ctrl-C stops)')
    .option('--level <level>', `only this level (${LOG_LEVELS.join(', ')})`)
    .option('--since <time>', 'from this time: 30s, 10m, 2h, 1d ago, or ISO 8601', (v) =>
      parseSince(v),
    )
    .option('--until <time>', 'before this time (same forms as --since)', (v) => parseSince(v))
    .option('--grep <text>', 'only lines whose message contains this (case-insensitive)')
    .option('--limit <n>', 'the last n lines (1-100)', parsePositiveInt, 100)
    .option('--interval <ms>', 'how often --follow asks for new lines', parsePositiveInt, 1000)
    .addHelpText(
      'after',
      examples([
        'minimcp logs 6f1c…',
        'minimcp logs 6f1c… --follow --level error',
        'minimcp logs 6f1c… --since 10m --grep timeout',
        'minimcp logs 6f1c… --follow --json    # one JSON object per line',
      ]),
    )
    .action(async (id: string, options: LogsOptions, command: Command) => {
      const json = wantsJson(command);
      const api = await apiOf(ctx);
      const query: LogQuery = {
        level: options.level,
        since: options.since,
        until: options.until,
        q: options.grep,
        limit: options.limit,
      };
      if (options.follow)
        return follow(ctx, api, id, query, { json, intervalMs: options.interval });
      const { body } = await api.call('GET', logsRoute(id), LogPageSchema, { query });
      printResult(ctx, json, body, () => body.logs.toReversed().map(formatLine).join('\n'));
    });

  program
    .command('events')
    .argument('<id>', 'instance id')
    .description(
      "an instance's audit trail (created, started, extended, token rotated, …), newest first",
    )
    .option('--limit <n>', 'at most n events (1-100)', parsePositiveInt, 50)
    .addHelpText('after', examples(['minimcp events 6f1c…', 'minimcp events 6f1c… --json']))
    .action(async (id: string, options: { limit: number }, command: Command) => {
      const api = await apiOf(ctx);
      const { body } = await api.call(
        'GET',
        `/v1/instances/${encodeURIComponent(id)}/events`,
        EventPageSchema,
        {
          query: { limit: options.limit },
        },
      );
      printResult(ctx, wantsJson(command), body, () =>
        table(
          ['TIME', 'EVENT', 'DATA'],
          body.events.map((e) => [e.created_at, e.type, JSON.stringify(e.data)]),
        ),
      );
    });
}

export function formatLine(line: LogLine): string {
  return `${line.timestamp} ${line.level.toUpperCase().padEnd(5)} ${(line.source ?? '-').padEnd(7)} ${line.message}`;
}

/**
 * Prints the last page, then polls: each poll asks for lines since the newest
 * seen minus a look-back, follows next_cursor through the pages of that window,
 * and prints the lines not printed before, oldest first. Runs until the
 * process is stopped or the API refuses (a deleted instance: exit 4).
 */
async function follow(
  ctx: CliContext,
  api: ApiClient,
  id: string,
  query: LogQuery,
  options: { json: boolean; intervalMs: number },
): Promise<void> {
  const printed = new Map<string, number>();
  let newest = Number.NEGATIVE_INFINITY;
  const emit = (lines: LogLine[]) => {
    for (const line of lines.toSorted(byTime)) {
      printed.set(line.id, Date.parse(line.timestamp));
      newest = Math.max(newest, Date.parse(line.timestamp));
      ctx.stdout.write((options.json ? JSON.stringify(line) : formatLine(line)) + '\n');
    }
    for (const [lineId, at] of printed) if (at < newest - 2 * LOOKBACK_MS) printed.delete(lineId);
  };
  const first = await api.call('GET', logsRoute(id), LogPageSchema, { query });
  emit(first.body.logs);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    const since = Number.isFinite(newest)
      ? new Date(newest - LOOKBACK_MS).toISOString()
      : query.since;
    emit(await unseenSince(api, id, { ...query, since, limit: 100 }, printed));
  }
}

async function unseenSince(
  api: ApiClient,
  id: string,
  query: LogQuery,
  printed: Map<string, number>,
): Promise<LogLine[]> {
  const fresh: LogLine[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES_PER_POLL; page += 1) {
    const { body } = await api.call('GET', logsRoute(id), LogPageSchema, {
      query: { ...query, cursor },
    });
    const unseen = body.logs.filter((line) => !printed.has(line.id));
    fresh.push(...unseen);
    // Pages go back in time: one with nothing new means the rest was printed already.
    if (!body.next_cursor || unseen.length === 0) break;
    cursor = body.next_cursor;
  }
  return fresh;
}

function byTime(a: LogLine, b: LogLine): number {
  return Date.parse(a.timestamp) - Date.parse(b.timestamp) || a.id.localeCompare(b.id);
}
