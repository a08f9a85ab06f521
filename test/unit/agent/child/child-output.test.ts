// A child's output on its way to the logs: the line splitter, the log sink (rate
// limit, truncation, redaction, stderr tail) and the output gate (backpressure).
import { PassThrough } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import {
  createLineSplitter,
  createLogSink,
  createOutputGate,
  type ChildLogLine,
} from '../../../../agent/child/child-output.js';
import { createRedactor } from '../../../../agent/child/redactor.js';

function split(chunks: Array<string | Buffer>, maxLineBytes = 1_000) {
  const lines: Array<{ text: string; dropped: number }> = [];
  const splitter = createLineSplitter({
    maxLineBytes,
    onLine: (chunk, start, end, dropped) =>
      lines.push({ text: chunk.toString('utf8', start, end), dropped }),
  });
  for (const chunk of chunks) splitter.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  splitter.end();
  return lines;
}

describe('createLineSplitter', () => {
  it('reassembles lines across chunks and strips \\r\\n', () => {
    expect(split(['one\ntw', 'o\r\nthr', 'ee', '\nlast'])).toEqual([
      { text: 'one', dropped: 0 },
      { text: 'two', dropped: 0 },
      { text: 'three', dropped: 0 },
      { text: 'last', dropped: 0 },
    ]);
  });

  it('keeps a multi-byte character split between chunks intact', () => {
    const bytes = Buffer.from('héllo\n');

    expect(split([bytes.subarray(0, 2), bytes.subarray(2)])).toEqual([
      { text: 'héllo', dropped: 0 },
    ]);
  });

  it('keeps the head of an over-long line and counts the rest, in one chunk or many', () => {
    const long = 'a'.repeat(25);

    expect(split([long + '\nok\n'], 10)).toEqual([
      { text: 'a'.repeat(10), dropped: 15 },
      { text: 'ok', dropped: 0 },
    ]);
    expect(split(['a'.repeat(8), 'a'.repeat(8), 'a'.repeat(9) + '\nok\n'], 10)).toEqual([
      { text: 'a'.repeat(10), dropped: 15 },
      { text: 'ok', dropped: 0 },
    ]);
  });
});

const SECRET = 'sk-live-0123456789';

function sink(
  settings: { maxLogLineChars?: number; logLinesPerSecond?: number; logBurst?: number } = {},
) {
  const delivered: ChildLogLine[] = [];
  let room = true;
  const logs = createLogSink(
    { maxLogLineChars: 100, logLinesPerSecond: 1_000, logBurst: 1_000, ...settings },
    createRedactor([SECRET]),
    (line) => {
      delivered.push(line);
      return room;
    },
  );
  const line = (stream: 'stderr' | 'stdout', text: string, droppedBytes = 0): boolean => {
    const chunk = Buffer.from(text);
    return logs.line(stream, chunk, 0, chunk.length, droppedBytes);
  };
  return { logs, delivered, line, setRoom: (value: boolean) => (room = value) };
}

describe('createLogSink', () => {
  it('delivers each line redacted, with its stream', () => {
    const { delivered, line } = sink();

    line('stderr', `key is ${SECRET}`);
    line('stdout', 'plain');

    expect(delivered.map(({ stream, text }) => ({ stream, text }))).toEqual([
      { stream: 'stderr', text: 'key is [REDACTED]' },
      { stream: 'stdout', text: 'plain' },
    ]);
  });

  it('cuts a long line to maxLogLineChars and says how long it was', () => {
    const { delivered, line } = sink({ maxLogLineChars: 10 });

    line('stderr', 'x'.repeat(30));
    line('stderr', 'y'.repeat(10), 5);

    expect(delivered.map((entry) => entry.text)).toEqual([
      `${'x'.repeat(10)} [line truncated, 30 bytes]`,
      expect.stringMatching(/^y* \[line truncated, 15 bytes\]$/),
    ]);
  });

  it('drops lines over the burst, counts them, and reports them before the next line it delivers', async () => {
    const { logs, delivered, line } = sink({ logLinesPerSecond: 1_000, logBurst: 2 });

    for (let i = 0; i < 5; i++) line('stderr', `line ${i}`);
    expect(delivered.map((entry) => entry.text)).toEqual(['line 0', 'line 1']);
    expect(logs.dropped).toBe(3);

    await new Promise((resolve) => setTimeout(resolve, 20));
    line('stderr', 'later');

    expect(delivered.slice(2).map(({ stream, text }) => ({ stream, text }))).toEqual([
      { stream: 'system', text: 'dropped 3 lines of MCP server output (over 1000 lines/s)' },
      { stream: 'stderr', text: 'later' },
    ]);
  });

  it('answers false when onLog has no room, after taking the line', () => {
    const { delivered, line, setRoom } = sink();

    setRoom(false);

    expect(line('stderr', 'one')).toBe(false);
    expect(delivered.map((entry) => entry.text)).toEqual(['one']);
  });

  it('keeps the last ten stderr lines for the tail, oldest first and redacted, not stdout', () => {
    const { logs, line } = sink();

    for (let i = 0; i < 12; i++) line('stderr', `err ${i}`);
    line('stdout', 'not in the tail');
    line('stderr', `last ${SECRET}`);

    expect(logs.tail()).toEqual([
      ...Array.from({ length: 9 }, (_, i) => `err ${i + 3}`),
      'last [REDACTED]',
    ]);
  });

  it('keeps a tail without onLog', () => {
    const logs = createLogSink(
      { maxLogLineChars: 100, logLinesPerSecond: 1, logBurst: 1 },
      createRedactor([]),
      undefined,
    );
    const chunk = Buffer.from('crashed');

    expect(logs.line('stderr', chunk, 0, chunk.length, 0)).toBe(true);
    expect(logs.tail()).toEqual(['crashed']);
  });
});

function gated(whenRoom?: (resume: () => void) => void) {
  const stdio = { stdout: new PassThrough(), stderr: new PassThrough() };
  const lines: string[] = [];
  const splitter = createLineSplitter({
    maxLineBytes: 100_000,
    onLine: (chunk, start, end) => lines.push(chunk.toString('utf8', start, end)),
  });
  const gate = createOutputGate(stdio, splitter, whenRoom);
  return { stdio, lines, gate };
}

describe('createOutputGate', () => {
  it('stops reading stderr on a refusal, holds the rest of the chunk, and goes on once there is room', () => {
    const resumes: Array<() => void> = [];
    const stdio = { stdout: new PassThrough(), stderr: new PassThrough() };
    const lines: string[] = [];
    const splitter = createLineSplitter({
      maxLineBytes: 100_000,
      onLine: (chunk, start, end) => {
        lines.push(chunk.toString('utf8', start, end));
        if (lines.length === 10) gate.refuse('stderr');
      },
    });
    const gate = createOutputGate(stdio, splitter, (resume) => resumes.push(resume));
    stdio.stderr.resume();
    const chunk = Buffer.from(
      Array.from({ length: 2_000 }, (_, i) => `line ${i}`).join('\n') + '\n',
    );

    gate.feed(chunk);

    // The slice being split (about 4 KiB) is finished; the rest of the chunk waits.
    expect(lines.length).toBeGreaterThanOrEqual(10);
    expect(lines.length).toBeLessThan(1_000);
    expect(stdio.stderr.isPaused()).toBe(true);
    expect(resumes).toHaveLength(1);

    resumes[0]!();

    expect(lines).toEqual(Array.from({ length: 2_000 }, (_, i) => `line ${i}`));
    expect(stdio.stderr.isPaused()).toBe(false);
  });

  it('holds what arrives while closed', () => {
    const resumes: Array<() => void> = [];
    const { stdio, lines, gate } = gated((resume) => resumes.push(resume));
    stdio.stderr.resume();

    gate.feed(Buffer.from('first\n'));
    gate.refuse('stderr');
    gate.feed(Buffer.from('second\n'));

    expect(lines).toEqual(['first']);

    resumes[0]!();

    expect(lines).toEqual(['first', 'second']);
  });

  it('pauses stdout too when a stray stdout line was refused, and resumes both', () => {
    const resumes: Array<() => void> = [];
    const { stdio, gate } = gated((resume) => resumes.push(resume));
    stdio.stdout.resume();
    stdio.stderr.resume();

    gate.refuse('stdout');
    gate.refuse('stderr');

    expect(stdio.stdout.isPaused()).toBe(true);
    expect(stdio.stderr.isPaused()).toBe(true);
    expect(resumes).toHaveLength(1);

    resumes[0]!();

    expect(stdio.stdout.isPaused()).toBe(false);
    expect(stdio.stderr.isPaused()).toBe(false);
  });

  it('reads everything once opened (the child exited), and refuses nothing after', () => {
    const resumes: Array<() => void> = [];
    const { stdio, lines, gate } = gated((resume) => resumes.push(resume));
    stdio.stderr.resume();
    gate.refuse('stderr');
    gate.feed(Buffer.from('held\n'));

    gate.open();
    gate.refuse('stderr');
    gate.feed(Buffer.from('after\n'));

    expect(lines).toEqual(['held', 'after']);
    expect(stdio.stderr.isPaused()).toBe(false);
    expect(resumes).toHaveLength(1);
  });

  it('never closes without whenRoom, since nothing could reopen it', () => {
    const { stdio, lines, gate } = gated(undefined);
    stdio.stderr.resume();

    gate.refuse('stderr');
    gate.feed(Buffer.from('a\nb\n'));

    expect(lines).toEqual(['a', 'b']);
    expect(stdio.stderr.isPaused()).toBe(false);
  });
});
