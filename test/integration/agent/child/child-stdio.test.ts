// A child's stdio on FIFOs (agent/child/child-stdio.ts) with real processes: the
// child holds its FIFOs read-write, so the agent's death is no EOF to it, and a
// new agent re-opens the same FIFOs and carries on, output included.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  attachChildStdio,
  prepareChildStdio,
  pruneChildStdio,
  removeChildStdio,
  type ChildStdioStreams,
  type PreparedChildStdio,
} from '../../../../agent/child/child-stdio.js';
import { processGone, tempDir, waitFor } from '../../../support/agent-helpers.js';

/**
 * Echoes each stdin line as `out:<line>` on stdout and `err:<line>` on stderr;
 * `exit` ends it. On SIGUSR2 it writes `signalled` to both, then creates the
 * file named by its argument, so the test knows the lines were written. It
 * exits on stdin EOF, as MCP servers do: still running means it saw none.
 */
const ECHO = `
const { writeFileSync } = require('node:fs');
const marker = process.argv[1];
let buffer = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  for (let i = buffer.indexOf('\\n'); i >= 0; i = buffer.indexOf('\\n')) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    if (line === 'exit') process.exit(0);
    process.stdout.write('out:' + line + '\\n');
    process.stderr.write('err:' + line + '\\n');
  }
});
process.stdin.on('end', () => process.exit(3));
process.on('SIGUSR2', () => {
  process.stdout.write('signalled\\n');
  process.stderr.write('signalled\\n');
  writeFileSync(marker, '');
});
`;

const children: ChildProcess[] = [];
const streams: ChildStdioStreams[] = [];
const roots: string[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  for (const stdio of streams.splice(0)) stdio.destroy();
  await Promise.all(roots.splice(0).map((root) => rm(root, { recursive: true, force: true })));
});

async function stdioRoot(): Promise<string> {
  const root = await tempDir('stdio');
  roots.push(root);
  return root;
}

/** Ends the test destroys afterwards. */
function track<T extends ChildStdioStreams>(stdio: T): T {
  streams.push(stdio);
  return stdio;
}

/** Spawns the echo child on `prepared`'s FIFOs, in its own process group, as the supervisor does. */
function spawnEcho(prepared: PreparedChildStdio, marker: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', ECHO, marker], {
    stdio: [...prepared.childFds],
    detached: true,
    env: { PATH: process.env.PATH ?? '' },
  });
  children.push(child);
  prepared.releaseChildFds();
  return child;
}

interface Collected {
  /** Complete lines read so far. */
  lines: string[];
  ended: boolean;
  closed: boolean;
}

/** Reads `stream` into lines (flowing mode, so 'end' comes). */
function collect(stream: Socket): Collected {
  const collected: Collected = { lines: [], ended: false, closed: false };
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    collected.lines.push(...parts);
  });
  stream.on('end', () => (collected.ended = true));
  stream.on('close', () => (collected.closed = true));
  return collected;
}

/** The `code` of what `fn` throws. */
function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
  return undefined;
}

describe('prepareChildStdio', () => {
  it('gives a child FIFOs through which it echoes what the agent writes', async () => {
    const root = await stdioRoot();
    const prepared = track(await prepareChildStdio(root));
    spawnEcho(prepared, path.join(root, 'marker'));
    const stdout = collect(prepared.stdout);
    const stderr = collect(prepared.stderr);

    prepared.stdin.write('hello\n');
    prepared.stdin.write('world\n');

    await waitFor('the echo on stdout', () => stdout.lines.length >= 2);
    await waitFor('the echo on stderr', () => stderr.lines.length >= 2);
    expect(stdout.lines).toEqual(['out:hello', 'out:world']);
    expect(stderr.lines).toEqual(['err:hello', 'err:world']);
    expect(path.dirname(prepared.dir)).toBe(root);
    for (const name of ['stdin', 'stdout', 'stderr'])
      expect(statSync(path.join(prepared.dir, name)).isFIFO()).toBe(true);
  });

  it("ends the agent's stdout and stderr when the child exits", async () => {
    const root = await stdioRoot();
    const prepared = track(await prepareChildStdio(root));
    const child = spawnEcho(prepared, path.join(root, 'marker'));
    const stdout = collect(prepared.stdout);
    const stderr = collect(prepared.stderr);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    prepared.stdin.write('bye\n');
    prepared.stdin.write('exit\n');

    expect(await exited).toBe(0);
    await waitFor('EOF on stdout', () => stdout.ended && stdout.closed);
    await waitFor('EOF on stderr', () => stderr.ended && stderr.closed);
    expect(stdout.lines).toEqual(['out:bye']);
    expect(stderr.lines).toEqual(['err:bye']);
  });

  it('gives distinct folders to consecutive and concurrent calls, beyond one batch of spares', async () => {
    const root = await stdioRoot();
    const first = track(await prepareChildStdio(root));
    const second = track(await prepareChildStdio(root));
    // More than one mkfifo batch (16) asked for at once.
    const many = (await Promise.all(Array.from({ length: 20 }, () => prepareChildStdio(root)))).map(
      track,
    );
    for (const prepared of [first, second, ...many]) prepared.releaseChildFds();

    const dirs = [first, second, ...many].map((prepared) => prepared.dir);
    expect(new Set(dirs).size).toBe(22);
    for (const dir of dirs) {
      expect(path.dirname(dir)).toBe(root);
      expect(statSync(path.join(dir, 'stdin')).isFIFO()).toBe(true);
    }
  });
});

describe('a child whose agent died', () => {
  it('sees no EOF, keeps running, and echoes through re-attached ends; what it wrote meanwhile is kept', async () => {
    const root = await stdioRoot();
    const marker = path.join(root, 'signalled');
    const prepared = track(await prepareChildStdio(root));
    const child = spawnEcho(prepared, marker);
    const before = collect(prepared.stdout);
    const beforeErr = collect(prepared.stderr);
    prepared.stdin.write('before\n');
    await waitFor('the first echo', () => before.lines.includes('out:before'));
    await waitFor('the first stderr echo', () => beforeErr.lines.includes('err:before'));

    // The agent dies: its ends close.
    prepared.destroy();
    // The child writes while nobody has the read ends open.
    process.kill(child.pid!, 'SIGUSR2');
    await waitFor('the child to write while unattended', () => existsSync(marker));

    const attached = track(attachChildStdio(prepared.dir));
    const stdout = collect(attached.stdout);
    const stderr = collect(attached.stderr);
    attached.stdin.write('after\n');

    await waitFor('the echo through the new ends', () => stdout.lines.includes('out:after'));
    await waitFor('the stderr echo through the new ends', () => stderr.lines.includes('err:after'));
    // It would have exited (code 3) on EOF.
    expect(child.exitCode).toBeNull();
    expect(processGone(child.pid!)).toBe(false);
    // Nothing written before the agent died is read twice; what came while no one read, is read.
    expect(stdout.lines).toEqual(['signalled', 'out:after']);
    expect(stderr.lines).toEqual(['signalled', 'err:after']);
  });

  it("ends the re-attached stdout when the child exits; its folder then can't be attached", async () => {
    const root = await stdioRoot();
    const prepared = track(await prepareChildStdio(root));
    const child = spawnEcho(prepared, path.join(root, 'marker'));
    prepared.destroy();
    const attached = track(attachChildStdio(prepared.dir));
    const stdout = collect(attached.stdout);
    const stderr = collect(attached.stderr);

    process.kill(-child.pid!, 'SIGKILL');

    await waitFor('EOF on the re-attached stdout', () => stdout.ended && stdout.closed);
    await waitFor('EOF on the re-attached stderr', () => stderr.ended && stderr.closed);
    await waitFor('the child to die', () => processGone(child.pid!));
    attached.destroy();
    // Nobody holds the stdin FIFO for reading any more.
    expect(errorCode(() => attachChildStdio(prepared.dir))).toBe('ENXIO');

    await removeChildStdio(prepared.dir);

    expect(existsSync(prepared.dir)).toBe(false);
    expect(errorCode(() => attachChildStdio(prepared.dir))).toBe('ENOENT');
  });
});

describe('pruneChildStdio', () => {
  it('removes every folder under the root but the kept ones, spares included', async () => {
    const root = await stdioRoot();
    const kept = track(await prepareChildStdio(root));
    const dropped = track(await prepareChildStdio(root));
    kept.releaseChildFds();
    dropped.releaseChildFds();
    // The batch's spares are there too.
    expect(readdirSync(root).length).toBeGreaterThan(2);

    await pruneChildStdio(root, new Set([kept.dir]));

    expect(readdirSync(root)).toEqual([path.basename(kept.dir)]);
    expect(existsSync(dropped.dir)).toBe(false);
    expect(statSync(path.join(kept.dir, 'stdout')).isFIFO()).toBe(true);
  });

  it('forgets the spares it removed, and a spare removed underneath is skipped', async () => {
    const root = await stdioRoot();
    const kept = track(await prepareChildStdio(root));
    kept.releaseChildFds();
    await pruneChildStdio(root, new Set([kept.dir]));

    // Every spare of the batch is gone: the next folder comes from a new batch.
    const next = track(await prepareChildStdio(root));
    next.releaseChildFds();
    expect(statSync(path.join(next.dir, 'stdin')).isFIFO()).toBe(true);

    // A temp-dir cleaner removes the spares behind the agent's back.
    for (const name of readdirSync(root)) {
      const dir = path.join(root, name);
      if (dir !== kept.dir && dir !== next.dir) rmSync(dir, { recursive: true, force: true });
    }
    const after = track(await prepareChildStdio(root));
    after.releaseChildFds();
    expect(statSync(path.join(after.dir, 'stdout')).isFIFO()).toBe(true);
  });

  it('does nothing when the root does not exist', async () => {
    const missing = path.join(await stdioRoot(), 'never-made');

    await expect(pruneChildStdio(missing, new Set())).resolves.toBeUndefined();
    expect(existsSync(missing)).toBe(false);
  });
});
