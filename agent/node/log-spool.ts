// The shipper's bounded on-disk spool: whole blocks as numbered JSON-lines
// segments, oldest first, kept while the database is unreachable and replayed
// in order (also by the next agent start).
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { LogLevel, LogSource } from '../../core/domain.js';
import { append, newBlock, type Block } from './log-blocks.js';

const SpooledLine = z.object({
  id: z.string().uuid(),
  instanceId: z.string().uuid(),
  timestamp: z.string(),
  level: LogLevel,
  source: LogSource,
  message: z.string(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

const SEGMENT_NAME = /^\d{12}\.jsonl$/;

interface Segment {
  file: string;
  bytes: number;
  lines: number;
}

export interface LogSpool {
  /** Segments on disk. */
  readonly size: number;
  bytes(): number;
  lines(): number;
  /** Appends a block as a new segment; false when it would pass the bound (nothing written). */
  write(block: Block): Promise<boolean>;
  /** Hands each segment, oldest first, to `insert` and removes it once inserted; stops at a throw. */
  replay(insert: (block: Block) => Promise<void>): Promise<void>;
}

function serialize(block: Block): string {
  let body = '';
  for (let i = 0; i < block.ids.length; i++) {
    const metadata = block.metadata[i];
    body +=
      JSON.stringify({
        id: block.ids[i],
        instanceId: block.instanceIds[i],
        timestamp: new Date(block.timestamps[i]!).toISOString(),
        level: block.levels[i],
        source: block.sources[i],
        message: block.messages[i],
        ...(metadata ? { metadata } : {}),
      }) + '\n';
  }
  return body;
}

async function readSegment(file: string): Promise<Block> {
  const block = newBlock(-1);
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (!line) continue;
    const parsed = SpooledLine.safeParse(JSON.parse(line));
    if (parsed.success)
      append(block, { ...parsed.data, timestamp: new Date(parsed.data.timestamp) }, parsed.data.id);
  }
  return block;
}

/** Opens the spool folder (created if missing) with the segments a previous run left. */
export async function openLogSpool(dir: string, maxBytes: number): Promise<LogSpool> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const existing = (await readdir(dir)).filter((f) => SEGMENT_NAME.test(f)).sort();
  const segments: Segment[] = [];
  for (const name of existing) {
    const file = path.join(dir, name);
    const content = await readFile(file, 'utf8');
    segments.push({
      file,
      bytes: (await stat(file)).size,
      lines: content.split('\n').filter(Boolean).length,
    });
  }
  let nextSegment = existing.length ? Number(existing[existing.length - 1]!.slice(0, 12)) + 1 : 0;
  const bytes = () => segments.reduce((sum, s) => sum + s.bytes, 0);

  return {
    get size() {
      return segments.length;
    },
    bytes,
    lines: () => segments.reduce((sum, s) => sum + s.lines, 0),
    async write(block) {
      const body = serialize(block);
      const size = Buffer.byteLength(body);
      if (bytes() + size > maxBytes) return false;
      const file = path.join(dir, `${String(nextSegment++).padStart(12, '0')}.jsonl`);
      await writeFile(file, body, { mode: 0o600 });
      segments.push({ file, bytes: size, lines: block.ids.length });
      return true;
    },
    async replay(insert) {
      while (segments.length > 0) {
        const segment = segments[0]!;
        await insert(await readSegment(segment.file));
        await rm(segment.file, { force: true });
        segments.shift();
      }
    },
  };
}
