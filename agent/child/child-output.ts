// A child's output on its way to the logs. A stderr chunk passes the output gate
// (backpressure), the line splitter cuts it into lines, and the log sink rate-limits,
// truncates and redacts each line before the supervisor's `onLog` takes it; the
// instance runtime (agent/instance/) turns that into a log entry for the log shipper
// (agent/node/log-shipper.ts), which writes it to mcp_logs. Stdout lines that are not
// JSON-RPC come from agent/child/stdio-connection.ts into the same sink.
import type { Readable } from 'node:stream';
import type { Redactor } from './redactor.js';

export interface ChildLogLine {
  /** `system` lines are the supervisor's own notes (e.g. lines dropped). */
  stream: 'stderr' | 'stdout' | 'system';
  /** Redacted, at most `maxLogLineChars` characters plus a truncation note. */
  text: string;
  /** Epoch milliseconds. */
  at: number;
}

export interface LineSplitterOptions {
  /** Longest line kept, in bytes; the rest of a longer line is counted and discarded. */
  maxLineBytes: number;
  /**
   * One line without its terminator (`\n` or `\r\n`): bytes [start, end) of
   * `chunk`, the first `maxLineBytes` of it when `droppedBytes > 0`.
   */
  onLine(chunk: Buffer, start: number, end: number, droppedBytes: number): void;
}

export interface LineSplitter {
  push(chunk: Buffer): void;
  /** Delivers a last line that had no terminator. */
  end(): void;
}

/**
 * Splits a byte stream into lines with bounded memory: at most `maxLineBytes`
 * of an unfinished line is held, however long the child makes it.
 */
export function createLineSplitter(options: LineSplitterOptions): LineSplitter {
  const { maxLineBytes, onLine } = options;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let droppedBytes = 0;

  const hold = (chunk: Buffer, start: number, end: number): void => {
    const room = maxLineBytes - partBytes;
    const take = Math.min(room, end - start);
    if (take > 0) {
      // Copy: the stream may reuse the chunk's memory after this callback.
      parts.push(Buffer.from(chunk.subarray(start, start + take)));
      partBytes += take;
    }
    droppedBytes += end - start - Math.max(take, 0);
  };

  const emit = (chunk: Buffer, start: number, end: number): void => {
    if (end > start && chunk[end - 1] === 13) end -= 1; // \r of a \r\n
    onLine(chunk, start, end, droppedBytes);
  };

  const flushHeld = (chunk: Buffer, start: number, end: number): void => {
    hold(chunk, start, end);
    const line = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes);
    parts = [];
    partBytes = 0;
    emit(line, 0, line.length);
    droppedBytes = 0;
  };

  return {
    push(chunk) {
      let start = 0;
      for (;;) {
        const newline = chunk.indexOf(10, start);
        if (newline === -1) break;
        if (partBytes > 0 || droppedBytes > 0) flushHeld(chunk, start, newline);
        else if (newline - start > maxLineBytes) {
          droppedBytes = newline - start - maxLineBytes;
          emit(chunk, start, start + maxLineBytes);
          droppedBytes = 0;
        } else emit(chunk, start, newline);
        start = newline + 1;
      }
      if (start < chunk.length) hold(chunk, start, chunk.length);
    },
    end() {
      if (partBytes > 0 || droppedBytes > 0) flushHeld(Buffer.alloc(0), 0, 0);
    },
  };
}

export interface LogSinkSettings {
  maxLogLineChars: number;
  /** Token bucket for log lines (stderr and stray stdout together). */
  logLinesPerSecond: number;
  logBurst: number;
}

export interface LogSink {
  /** false: onLog had no room for this line (it was still taken). */
  line(
    stream: 'stderr' | 'stdout',
    chunk: Buffer,
    start: number,
    end: number,
    droppedBytes: number,
  ): boolean;
  system(text: string): void;
  /** Reports lines dropped since the last report, if any. */
  flushNotice(): void;
  /** The last stderr lines, redacted, oldest first. */
  tail(): string[];
  readonly dropped: number;
}

const STDERR_TAIL_LINES = 10;
const STDERR_TAIL_LINE_BYTES = 1_024;

/**
 * Bounded log handling: a token bucket caps lines per second (a flooding child
 * costs the agent a counter increment per line, not memory or a decode), each
 * line is cut to `maxLogLineChars`, and secrets are redacted before the line
 * leaves. The last stderr lines are kept raw (a few KiB) for failure reasons.
 */
export function createLogSink(
  settings: LogSinkSettings,
  redactor: Redactor,
  onLog: ((line: ChildLogLine) => boolean | void) | undefined,
): LogSink {
  const ratePerMs = settings.logLinesPerSecond / 1000;
  let tokens = settings.logBurst;
  let refilledAt = performance.now();
  let dropped = 0;
  let droppedSinceNotice = 0;
  const tail = createStderrTail(redactor);

  const deliver = (stream: ChildLogLine['stream'], text: string): boolean =>
    onLog?.({ stream, text, at: Date.now() }) !== false;
  const flushNotice = (): void => {
    if (droppedSinceNotice === 0) return;
    const count = droppedSinceNotice;
    droppedSinceNotice = 0;
    deliver(
      'system',
      `dropped ${count} lines of MCP server output (over ${settings.logLinesPerSecond} lines/s)`,
    );
  };

  return {
    line(stream, chunk, start, end, droppedBytes) {
      if (stream === 'stderr') tail.keep(chunk, start, end, droppedBytes);
      if (onLog === undefined) return true;
      if (tokens < 1) {
        const now = performance.now();
        tokens = Math.min(settings.logBurst, tokens + (now - refilledAt) * ratePerMs);
        refilledAt = now;
        if (tokens < 1) {
          dropped += 1;
          droppedSinceNotice += 1;
          return true;
        }
      }
      tokens -= 1;
      flushNotice();
      const raw = chunk.toString('utf8', start, end);
      let text = redactor.redactHead(raw, settings.maxLogLineChars, droppedBytes > 0);
      if (droppedBytes > 0 || raw.length > settings.maxLogLineChars)
        text += ` [line truncated, ${Buffer.byteLength(raw) + droppedBytes} bytes]`;
      return deliver(stream, text);
    },
    system: (text) => void deliver('system', text),
    flushNotice,
    tail: () => tail.lines(),
    get dropped() {
      return dropped;
    },
  };
}

/**
 * The heads of the last stderr lines, in a ring that grows to STDERR_TAIL_LINES
 * entries: a child that writes a line or two keeps a few hundred bytes here,
 * not a fixed 10 KiB buffer (100 instances, bench density).
 */
function createStderrTail(redactor: Redactor): {
  keep(chunk: Buffer, start: number, end: number, droppedBytes: number): void;
  lines(): string[];
} {
  const heads: string[] = [];
  /** True where the head is not the whole line (a secret may be cut there). */
  const cut: boolean[] = [];
  let next = 0;
  return {
    keep(chunk, start, end, droppedBytes) {
      heads[next] = chunk.toString('utf8', start, Math.min(end, start + STDERR_TAIL_LINE_BYTES));
      cut[next] = droppedBytes > 0 || end - start > STDERR_TAIL_LINE_BYTES;
      next = (next + 1) % STDERR_TAIL_LINES;
    },
    lines() {
      const lines: string[] = [];
      // Oldest first: once the ring is full, the oldest entry is the next one to be overwritten.
      const count = heads.length;
      const oldest = count < STDERR_TAIL_LINES ? 0 : next;
      for (let i = 0; i < count; i++) {
        const slot = (oldest + i) % count;
        lines.push(redactor.redactHead(heads[slot]!, STDERR_TAIL_LINE_BYTES, cut[slot]!));
      }
      return lines;
    },
  };
}

/** Bytes of stderr handed to the line splitter at a time: what a refusal can let through per child. */
const GATE_SLICE_BYTES = 4_096;

/** The child's streams the output gate pauses and resumes. */
interface GatedStreams {
  readonly stdout: Readable;
  readonly stderr: Readable;
}

export interface OutputGate {
  /** Splits a stderr chunk into lines, a slice at a time; holds the rest once closed. */
  feed(chunk: Buffer): void;
  /** A line was refused: stop reading until the consumer has room. */
  refuse(stream: 'stderr' | 'stdout'): void;
  /** The child exited: read everything left, room or not. */
  open(): void;
}

/**
 * Backpressure from the log consumer to the child: while closed, the child's
 * stderr is not read (the rest of a chunk already read is held), so the pipe
 * fills and the child blocks on its own write; nothing is dropped. Without
 * `whenRoom` nobody could reopen it, so it never closes.
 */
export function createOutputGate(
  stdio: GatedStreams,
  splitter: LineSplitter,
  whenRoom: ((resume: () => void) => void) | undefined,
): OutputGate {
  let closed = false;
  let opened = false;
  let stdoutPaused = false;
  let held: Buffer | undefined;

  const feed = (chunk: Buffer): void => {
    let start = 0;
    while (start < chunk.length) {
      if (closed) {
        // A copy: the stream may reuse the chunk's memory after this callback.
        const rest = Buffer.from(chunk.subarray(start));
        held = held ? Buffer.concat([held, rest]) : rest;
        return;
      }
      let end = chunk.length;
      if (end - start > GATE_SLICE_BYTES) {
        const newline = chunk.indexOf(10, start + GATE_SLICE_BYTES);
        if (newline !== -1) end = newline + 1;
      }
      splitter.push(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end));
      start = end;
    }
  };

  const resume = (): void => {
    if (!closed) return;
    closed = false;
    const rest = held;
    held = undefined;
    if (rest) feed(rest);
    if (closed) return; // refused again; whenRoom was asked again
    stdio.stderr.resume();
    if (stdoutPaused) {
      stdoutPaused = false;
      stdio.stdout.resume();
    }
  };

  return {
    feed,
    refuse(stream) {
      if (opened || whenRoom === undefined) return;
      if (stream === 'stdout' && !stdoutPaused) {
        stdoutPaused = true;
        stdio.stdout.pause();
      }
      if (closed) return;
      closed = true;
      stdio.stderr.pause();
      whenRoom(resume);
    },
    open() {
      opened = true;
      resume();
    },
  };
}

export interface ChildOutput {
  /** For the stdio connection: a stdout line that is not JSON-RPC goes to the logs too. */
  strayStdoutLine(chunk: Buffer, start: number, end: number, droppedBytes: number): void;
  /** The child exited: read what is left in its pipes, room or not. */
  open(): void;
  /** Its stderr is done: a last unterminated line is delivered. */
  end(): void;
}

/**
 * Reads a child's stderr into `logs`: gate, splitter and sink wired together,
 * with a refused line (stderr or stray stdout) closing the gate.
 */
export function readChildOutput(
  stdio: GatedStreams,
  logs: LogSink,
  options: {
    /** Longest stderr line kept, in bytes. */
    maxLineBytes: number;
    whenLogRoom: ((resume: () => void) => void) | undefined;
  },
): ChildOutput {
  const stderr = createLineSplitter({
    maxLineBytes: options.maxLineBytes,
    onLine: (chunk, start, end, dropped) => {
      if (!logs.line('stderr', chunk, start, end, dropped)) gate.refuse('stderr');
    },
  });
  const gate = createOutputGate(stdio, stderr, options.whenLogRoom);
  stdio.stderr.on('data', (chunk: Buffer) => gate.feed(chunk));
  stdio.stderr.once('end', () => stderr.end());
  return {
    strayStdoutLine(chunk, start, end, dropped) {
      if (!logs.line('stdout', chunk, start, end, dropped)) gate.refuse('stdout');
    },
    open: () => gate.open(),
    end: () => stderr.end(),
  };
}
