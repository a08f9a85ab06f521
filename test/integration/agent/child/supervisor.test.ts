// The process supervisor against real child processes: server-everything, an
// SDK fixture server, and tiny misbehaving children (crash, hang, flood,
// SIGTERM ignored, a grandchild), plus orphan clean-up after an agent's death.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, copyFile, open } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from '@jest/globals';
import { McpServerStartError } from '../../../../core/errors.js';
import {
  killOrphans,
  sweepChildren,
  type ChildRecord,
} from '../../../../agent/child/child-registry.js';
import { createChildUsers } from '../../../../agent/child/child-users.js';
import { liveProcesses } from '../../../../agent/child/proc.js';
import { isReattachable } from '../../../../agent/child/survivors.js';
import {
  createSupervisor,
  type ChildLogLine,
  type Supervisor,
  type SupervisorEvent,
  type SupervisorOptions,
} from '../../../../agent/child/supervisor.js';
import {
  EVERYTHING_SERVER,
  fixture,
  processGone,
  processGroupOf,
  tempDir,
  waitFor,
} from '../../../support/agent-helpers.js';

const API_KEY = 'sk-canary-7c1e0f3b9a44d2e8';

const running: Supervisor[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((supervisor) => supervisor.stop()));
});

/** Stops the supervisor after the test. */
function track(supervisor: Supervisor): Supervisor {
  running.push(supervisor);
  return supervisor;
}

interface Recorded {
  supervisor: Supervisor;
  events: SupervisorEvent[];
  logs: ChildLogLine[];
}

async function supervise(
  script: string,
  options: Partial<SupervisorOptions> = {},
  args: string[] = [],
): Promise<Recorded> {
  const events: SupervisorEvent[] = [];
  const logs: ChildLogLine[] = [];
  const supervisor = createSupervisor({
    command: process.execPath,
    args: [script, ...args],
    cwd: path.join(await tempDir('sup'), 'work'),
    env: { MINIMCP_API_KEY: API_KEY },
    secrets: [API_KEY],
    onEvent: (event) => events.push(event),
    onLog: (line) => void logs.push(line),
    ...options,
  });
  running.push(supervisor);
  return { supervisor, events, logs };
}

function callTool(supervisor: Supervisor, name: string): Promise<string> {
  return supervisor
    .connection!.request('tools/call', { name, arguments: {} }, 15_000)
    .then((result) => (result as { content: Array<{ text: string }> }).content[0]!.text);
}

describe('starting a stdio MCP server', () => {
  it('performs the initialize handshake and exposes what the server said about itself', async () => {
    const { supervisor, events } = await supervise(EVERYTHING_SERVER, {}, ['stdio']);

    const result = await supervisor.start();

    expect(result.serverInfo.name).toBe('mcp-servers/everything');
    expect(supervisor.initializeResult?.capabilities).toHaveProperty('tools');
    expect(supervisor.initializeResult?.instructions).toEqual(expect.any(String));
    expect(supervisor.state).toBe('ready');
    const pid = supervisor.pid!;
    expect(processGone(pid)).toBe(false);
    expect(events.map((event) => event.type)).toEqual(['spawned', 'ready']);
    // Its own process group, so the whole group can be signalled.
    expect(processGroupOf(pid)).toBe(pid);
    expect(await supervisor.connection!.request('ping', {}, 10_000)).toEqual({});
  });

  it('samples CPU and resident memory of the child from /proc', async () => {
    const { supervisor } = await supervise(EVERYTHING_SERVER, {}, ['stdio']);
    await supervisor.start();

    const sample = supervisor.sample();

    expect(sample?.pid).toBe(supervisor.pid);
    expect(sample?.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(sample?.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(supervisor.restarts).toBe(0);
  });

  it('gives the child a minimal environment and its own working directory', async () => {
    const cwd = path.join(await tempDir('env'), 'instance-1');
    const { supervisor } = await supervise(fixture('mcp-fixture.mjs'), { cwd });
    await supervisor.start();

    const seen = JSON.parse(await callTool(supervisor, 'environment')) as {
      names: string[];
      home: string;
      cwd: string;
      keyLength: number;
    };

    // The jest process runs with NODE_OPTIONS and much more; none of it leaks.
    expect(process.env.NODE_OPTIONS).toBeDefined();
    expect(seen.names).toEqual(['HOME', 'LANG', 'MINIMCP_API_KEY', 'PATH']);
    expect(seen.home).toBe(cwd);
    expect(seen.cwd).toBe(cwd);
    expect(seen.keyLength).toBe(API_KEY.length);
  });

  it('fails clearly when the command cannot be spawned', async () => {
    const { supervisor, events } = await supervise(fixture('crash.mjs'), {
      command: path.join(await tempDir('none'), 'no-such-server'),
    });

    const error = await supervisor.start().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(McpServerStartError);
    expect((error as McpServerStartError).context.reason).toBe('spawn_failed');
    expect((error as Error).message).toMatch(/ENOENT/);
    expect(supervisor.state).toBe('failed');
    expect(events.at(-1)?.type).toBe('failed');
  });
});

describe('a child that hangs before answering initialize', () => {
  it('is killed at the handshake timeout and start() rejects with the reason', async () => {
    const { supervisor, events } = await supervise(fixture('hang.mjs'), {
      handshakeTimeoutMs: 300,
    });

    const error = await supervisor.start().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(McpServerStartError);
    expect((error as McpServerStartError).context.reason).toBe('handshake_timeout');
    expect((error as Error).message).toContain('did not answer initialize within 300 ms');
    const spawned = events.find((event) => event.type === 'spawned');
    expect(processGone((spawned as { pid: number }).pid)).toBe(true);
    expect(supervisor.state).toBe('failed');
    expect(supervisor.pid).toBeUndefined();
    const failed = events.at(-1);
    expect(failed?.type).toBe('failed');
  });
});

describe('a child that crashes', () => {
  it('is restarted with exponential backoff, then reported failed with its exit and last stderr lines', async () => {
    const { supervisor, events } = await supervise(fixture('crash.mjs'), {
      maxRestarts: 2,
      backoffInitialMs: 50,
    });
    await supervisor.start();

    const failed = await waitFor('the terminal failure', () =>
      events.find((event) => event.type === 'failed'),
    );

    expect(events.map((event) => event.type)).toEqual([
      'spawned',
      'ready',
      'exited',
      'restarting',
      'spawned',
      'ready',
      'exited',
      'restarting',
      'spawned',
      'ready',
      'exited',
      'failed',
    ]);
    const delays = events.flatMap((event) => (event.type === 'restarting' ? [event.delayMs] : []));
    expect(delays).toEqual([50, 100]);
    if (failed.type !== 'failed') throw new Error('unreachable');
    expect(failed.code).toBe(3);
    expect(failed.reason).toContain('exited with code 3');
    expect(failed.reason).toContain('gave up after 2 restarts');
    // The crash's own words, with the key it printed redacted.
    expect(failed.stderrTail.join('\n')).toContain(
      'fatal: cannot reach upstream with key [REDACTED]',
    );
    expect(JSON.stringify(events.filter((event) => event.type !== 'ready'))).not.toContain(API_KEY);
    expect(supervisor.state).toBe('failed');
    expect(supervisor.restarts).toBe(2);
    for (const event of events)
      if (event.type === 'spawned') expect(processGone(event.pid)).toBe(true);
  });
});

describe('the last stderr lines of a failed child', () => {
  it('are its last 10, oldest first, each cut to its first KiB', async () => {
    const { supervisor, events } = await supervise(fixture('stderr-then-exit.mjs'), {
      maxRestarts: 0,
    });
    await expect(supervisor.start()).rejects.toThrow();

    const failed = events.find((event) => event.type === 'failed');
    if (failed?.type !== 'failed') throw new Error('no failed event');
    expect(failed.stderrTail).toHaveLength(10);
    expect(failed.stderrTail.map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual(
      [6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((n) => `line ${n}`),
    );
    // The head of the 2 KB line: at most 1 KiB, less what a secret cut at the end could leave.
    const long = failed.stderrTail[8]!;
    expect(long.length).toBeLessThanOrEqual(1_024);
    expect(long.startsWith(`line 14 ${'x'.repeat(900)}`)).toBe(true);
  });
});

describe('stopping', () => {
  it('sends SIGTERM to the group, then SIGKILL after the grace period to a child that ignores it', async () => {
    const { supervisor, events, logs } = await supervise(fixture('ignore-sigterm.mjs'), {
      stopGraceMs: 300,
    });
    await supervisor.start();
    const pid = supervisor.pid!;

    const stopping = supervisor.stop();
    const again = supervisor.stop();
    await stopping;

    expect(again).toBe(stopping);
    expect(processGone(pid)).toBe(true);
    expect(logs.map((line) => line.text)).toContain('ignore-sigterm: got SIGTERM, ignoring it');
    const exited = events.find((event) => event.type === 'exited');
    expect(exited).toMatchObject({ pid, signal: 'SIGKILL', expected: true });
    expect(events.filter((event) => event.type === 'stopped')).toHaveLength(1);
    expect(supervisor.state).toBe('stopped');
  });

  it('takes the whole process group down, grandchildren included', async () => {
    const { supervisor, logs } = await supervise(fixture('with-grandchild.mjs'), {
      stopGraceMs: 200,
    });
    await supervisor.start();
    const line = await waitFor('the grandchild pid', () =>
      logs.find((entry) => entry.text.startsWith('grandchild ')),
    );
    const grandchild = Number(line.text.split(' ')[1]);
    expect(processGone(grandchild)).toBe(false);

    await supervisor.stop();

    await waitFor('the grandchild to be gone', () => processGone(grandchild!));
  });
});

describe('child output', () => {
  it('delivers stderr line by line with the secrets redacted', async () => {
    const { supervisor, logs } = await supervise(fixture('mcp-fixture.mjs'));
    await supervisor.start();

    await callTool(supervisor, 'log-secret');
    const line = await waitFor('the logged line', () =>
      logs.find((entry) => entry.text.startsWith('connecting with')),
    );

    expect(line).toMatchObject({ stream: 'stderr', text: 'connecting with api key [REDACTED]' });
    expect(JSON.stringify(logs)).not.toContain(API_KEY);
  });

  it('bounds a flooding child: lines cut to the limit, excess dropped, counted and reported', async () => {
    const { supervisor, logs } = await supervise(fixture('flood.mjs'), {
      logLinesPerSecond: 1_000,
      logBurst: 200,
      maxLogLineChars: 1_000,
    });
    await supervisor.start();

    const notice = await waitFor('a dropped-lines notice', () =>
      logs.find((line) => line.stream === 'system' && line.text.startsWith('dropped ')),
    );
    await waitFor('a non-JSON stdout line', () => logs.find((line) => line.stream === 'stdout'));
    await supervisor.stop();

    expect(notice.text).toMatch(/^dropped \d+ lines of MCP server output \(over 1000 lines\/s\)$/);
    expect(supervisor.droppedLogLines).toBeGreaterThan(0);
    const long = logs.find((line) => line.text.startsWith('xxxx'));
    expect(long?.text).toMatch(/\[line truncated, \d+ bytes\]$/);
    for (const line of logs) expect(line.text.length).toBeLessThanOrEqual(1_000 + 40);
    expect(JSON.stringify(logs)).not.toContain(API_KEY);
    expect(logs.some((line) => line.text.includes('key=[REDACTED]'))).toBe(true);
  });
});

describe('children of an agent that died', () => {
  /** Starts the stand-in agent with `fixtures`, SIGKILLs it, and returns the children's pids. */
  const orphan = async (stateDir: string, fixtures: string[]) => {
    const agent = spawn(process.execPath, [fixture('orphaning-agent.mjs'), stateDir, ...fixtures], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(createInterface({ input: agent.stdout! }), 'line')) as [string];
    agent.kill('SIGKILL');
    await new Promise((resolve) => agent.once('exit', resolve));
    return JSON.parse(line) as Record<string, number>;
  };

  const survivorOf = async (stateDir: string): Promise<ChildRecord> => {
    const swept = await sweepChildren(stateDir, { keep: isReattachable });
    expect(swept.killed).toEqual([]);
    expect(swept.kept).toHaveLength(1);
    return swept.kept[0]!;
  };

  /** Re-attaches a new supervisor to `record` (a survivor running `script`); restarts come fast. */
  const adopted = async (stateDir: string, script: string, record: ChildRecord) => {
    const events: SupervisorEvent[] = [];
    const supervisor = track(
      createSupervisor({
        command: process.execPath,
        args: [fixture(script)],
        cwd: path.join(stateDir, 'work'),
        adopt: record,
        backoffInitialMs: 10,
        onEvent: (event) => events.push(event),
      }),
    );
    await supervisor.start();
    return { supervisor, events };
  };

  const replacedChild = (supervisor: Supervisor, old: number) =>
    waitFor(
      'a new child',
      () => supervisor.state === 'ready' && supervisor.pid !== undefined && supervisor.pid !== old,
      15_000,
    );

  it('outlive it on their FIFOs; a restarted agent that keeps none kills every recorded group', async () => {
    const stateDir = await tempDir('state');
    const pids = await orphan(stateDir, ['with-grandchild.mjs', 'mcp-fixture.mjs']);
    const grandparent = pids['with-grandchild.mjs']!;
    const server = pids['mcp-fixture.mjs']!;

    // Their stdin did not close with the agent: even the SDK server, which exits on EOF, still runs.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(processGone(grandparent)).toBe(false);
    expect(processGone(server)).toBe(false);

    const killed = await killOrphans(stateDir);

    expect(killed.map((record) => record.pid).sort()).toEqual([grandparent, server].sort());
    expect(processGone(grandparent)).toBe(true);
    expect(processGone(server)).toBe(true);
    expect(readdirSync(path.join(stateDir, 'children'))).toEqual([]);
    for (const record of killed) expect(existsSync(record.stdioDir!)).toBe(false);
    expect(await killOrphans(stateDir)).toEqual([]);
  });

  it('a new supervisor re-attaches to a surviving server: same pid, recorded handshake, working stdio', async () => {
    const stateDir = await tempDir('state');
    const pids = await orphan(stateDir, ['mcp-fixture.mjs']);
    const record = await survivorOf(stateDir);
    expect(record.pid).toBe(pids['mcp-fixture.mjs']);

    const { supervisor, events } = await adopted(stateDir, 'mcp-fixture.mjs', record);
    const result = supervisor.initializeResult!;

    expect(result.serverInfo.name).toBe('fixture');
    expect(supervisor.pid).toBe(record.pid);
    expect(events.map((event) => event.type)).toEqual(['ready']);
    expect(events[0]).toMatchObject({ type: 'ready', adopted: true });
    const tools = (await supervisor.connection!.request('tools/list', {}, 5_000)) as {
      tools: { name: string }[];
    };
    expect(tools.tools.map((tool) => tool.name)).toContain('wait');

    await supervisor.stop();
    expect(processGone(record.pid)).toBe(true);
    expect(existsSync(record.stdioDir!)).toBe(false);
  });

  it('a message the dead agent left half-written does not garble the first one after re-attach', async () => {
    const stateDir = await tempDir('state');
    await orphan(stateDir, ['mcp-fixture.mjs']);
    const record = await survivorOf(stateDir);
    // What a killed agent leaves when it dies between two writes of one long message.
    const stdin = await open(path.join(record.stdioDir!, 'stdin'), 'w');
    await stdin.write('{"jsonrpc":"2.0","id":"lost","method":"tools/call","params":{"name":"wa');
    await stdin.close();

    const { supervisor } = await adopted(stateDir, 'mcp-fixture.mjs', record);
    const tools = (await supervisor.connection!.request('tools/list', {}, 5_000)) as {
      tools: { name: string }[];
    };

    expect(supervisor.pid).toBe(record.pid);
    expect(tools.tools.map((tool) => tool.name)).toContain('wait');
  });

  it('notices a re-attached child dying (no exit event: not its child) and starts a new one', async () => {
    const stateDir = await tempDir('state');
    await orphan(stateDir, ['mcp-fixture.mjs']);
    const record = await survivorOf(stateDir);
    const { supervisor, events } = await adopted(stateDir, 'mcp-fixture.mjs', record);

    process.kill(record.pid, 'SIGKILL');

    await replacedChild(supervisor, record.pid);
    const exited = events.find((event) => event.type === 'exited');
    expect(exited).toMatchObject({ type: 'exited', pid: record.pid, expected: false });
    expect(events.filter((event) => event.type === 'ready').map((event) => event.adopted)).toEqual([
      true,
      false,
    ]);
  });

  it('notices a re-attached child dying while its grandchild holds its pipes, once', async () => {
    const stateDir = await tempDir('state');
    await orphan(stateDir, ['stdio-sharing-grandchild.mjs']);
    const record = await survivorOf(stateDir);
    const [grandchild] = await waitFor('the grandchild', () => {
      const found = [...liveProcesses()]
        .filter(([, stat]) => stat.ppid === record.pid)
        .map(([pid]) => pid);
      return found.length > 0 && found;
    });
    const { supervisor, events } = await adopted(stateDir, 'stdio-sharing-grandchild.mjs', record);

    // Only the leader: the grandchild keeps stdout and stderr open, so no EOF comes.
    process.kill(record.pid, 'SIGKILL');

    await replacedChild(supervisor, record.pid);
    expect(events.filter((event) => event.type === 'exited')).toHaveLength(1);
    // Its group went with it.
    await waitFor('the grandchild killed with the group', () => processGone(grandchild!));
  });

  it('spawns a new child when the recorded one is gone by the time it is adopted', async () => {
    const stateDir = await tempDir('state');
    await orphan(stateDir, ['mcp-fixture.mjs']);
    const record = await survivorOf(stateDir);
    process.kill(record.pid, 'SIGKILL');
    await waitFor('the survivor to die', () => processGone(record.pid));

    const { supervisor } = await adopted(stateDir, 'mcp-fixture.mjs', record);
    const result = supervisor.initializeResult!;

    expect(result.serverInfo.name).toBe('fixture');
    expect(supervisor.pid).not.toBe(record.pid);
    expect(existsSync(record.stdioDir!)).toBe(false);
  });
});

/** Runs only as root (as CI does): setting a child's user needs CAP_SETUID. */
const asRoot = process.getuid?.() === 0 ? describe : describe.skip;

asRoot('children as OS users of their own (MINIMCP_CHILD_UIDS)', () => {
  interface Whoami {
    escapedPid: number | null;
    capInh: string;
    capPrm: string;
    capEff: string;
    capAmb: string;
    uid: number;
    gid: number;
    groups: number[];
    parentEnviron: string;
    peekEnviron: string;
    signalPeer: string;
    writeCwd: string;
  }

  /** The fixtures copied where any user can read them (the checkout may sit in a private home). */
  const publicFixtures = async (): Promise<string> => {
    const dir = await tempDir('public');
    await chmod(dir, 0o755);
    for (const name of ['tiny-mcp.mjs', 'whoami-mcp.mjs']) {
      await copyFile(fixture(name), path.join(dir, name));
      await chmod(path.join(dir, name), 0o644);
    }
    return dir;
  };

  const whoamiOf = (logs: ChildLogLine[]): Whoami | undefined => {
    const line = logs.find((entry) => entry.text.startsWith('WHOAMI '));
    return line ? (JSON.parse(line.text.slice('WHOAMI '.length)) as Whoami) : undefined;
  };

  it('each child runs as its own user: no view of the agent or of a neighbour, its folder its own', async () => {
    const scripts = await publicFixtures();
    const base = 300_000 + Math.floor(Math.random() * 10_000) * 10;
    const users = createChildUsers({ start: base, end: base + 9 });
    // The parents of the working directories must be passable by other users.
    const work = await tempDir('users');
    await chmod(work, 0o711);
    const first = await supervise(path.join(scripts, 'whoami-mcp.mjs'), {
      users,
      cwd: path.join(work, 'first'),
      env: { ESCAPE: '1' },
    });
    await first.supervisor.start();
    const firstPid = first.supervisor.pid!;
    const second = await supervise(path.join(scripts, 'whoami-mcp.mjs'), {
      users,
      cwd: path.join(work, 'second'),
      env: { PEEK_PID: String(firstPid) },
    });
    await second.supervisor.start();

    const one = await waitFor('the first report', () => whoamiOf(first.logs));
    const two = await waitFor('the second report', () => whoamiOf(second.logs));
    expect([one.uid, two.uid].sort()).toEqual([base, base + 1]);
    expect(one.gid).toBe(one.uid);
    // No capability of the (root) agent is left: not permitted, effective or ambient.
    const none = '0000000000000000';
    expect([one.capPrm, one.capEff, one.capAmb, one.capInh]).toEqual([none, none, none, none]);
    expect(one.groups.filter((group) => group !== one.gid)).toEqual([]);
    // The agent's environment (database password, node secrets) is out of reach...
    expect(one.parentEnviron).toBe('EACCES');
    // ...and so is a neighbour's (its user's API key), and signalling it.
    expect(two.peekEnviron).toBe('EACCES');
    expect(two.signalPeer).toBe('EPERM');
    // Its working directory (and HOME) is its own.
    expect(one.writeCwd).toBe('ok');
    expect(statSync(path.join(work, 'first')).uid).toBe(one.uid);
    expect(statSync(path.join(work, 'first')).mode & 0o777).toBe(0o700);
    expect(users.inUse).toBe(2);

    // A process that left the child's group and session still runs as its user...
    expect(one.escapedPid).not.toBeNull();
    expect(processGone(one.escapedPid!)).toBe(false);
    await first.supervisor.stop();
    await second.supervisor.stop();
    expect(processGone(firstPid)).toBe(true);
    // ...and goes before the user id can be handed to another instance.
    await waitFor('the escaped process killed', () => processGone(one.escapedPid!));
    expect(users.inUse).toBe(0);
  });

  it('a start fails clearly when every user id of the range is taken', async () => {
    const scripts = await publicFixtures();
    const base = 400_000 + Math.floor(Math.random() * 10_000) * 10;
    const users = createChildUsers({ start: base, end: base });
    const work = await tempDir('users');
    await chmod(work, 0o711);
    const only = await supervise(path.join(scripts, 'whoami-mcp.mjs'), {
      users,
      cwd: path.join(work, 'only'),
    });
    await only.supervisor.start();
    const refused = await supervise(path.join(scripts, 'whoami-mcp.mjs'), {
      users,
      cwd: path.join(work, 'refused'),
    });

    const error = await refused.supervisor.start().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(McpServerStartError);
    expect((error as McpServerStartError).message).toMatch(
      new RegExp(`every child user id in ${base}-${base} is in use`),
    );
    expect(refused.supervisor.state).toBe('failed');
  });
});
