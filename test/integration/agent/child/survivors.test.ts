// Survivors of a dead agent (agent/child/survivors.ts): launch fingerprints, which
// records can be taken over, and claiming or killing real process groups
// whose records a previous agent left in <state>/children/.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  createChildRegistry,
  readChildRecords,
  type ChildRecord,
} from '../../../../agent/child/child-registry.js';
import { attachChildStdio, prepareChildStdio } from '../../../../agent/child/child-stdio.js';
import { processStartTicks } from '../../../../agent/child/proc.js';
import {
  createSurvivors,
  isReattachable,
  launchFingerprint,
  type Survivors,
} from '../../../../agent/child/survivors.js';
import { processGone, tempDir, waitFor } from '../../../support/agent-helpers.js';

const LAUNCH = {
  command: 'node',
  args: ['server.js', '--stdio'],
  env: { MINIMCP_API_KEY: 'sk-one', LOG_LEVEL: 'info', TZ: 'UTC' },
};

const INITIALIZE_RESULT = {
  protocolVersion: '2025-06-18',
  capabilities: { tools: {} },
  serverInfo: { name: 'fixture', version: '1.0.0' },
};

function recordOf(overrides: Partial<ChildRecord> = {}): ChildRecord {
  return {
    pid: 4242,
    pgid: 4242,
    label: 'instance-1',
    command: 'node',
    spawnedAt: 1_700_000_000_000,
    stdioDir: '/tmp/minimcp-stdio/x',
    fingerprint: launchFingerprint(LAUNCH),
    initializeResult: INITIALIZE_RESULT,
    ...overrides,
  };
}

describe('launchFingerprint', () => {
  it('does not depend on the order of the environment keys', () => {
    const reordered = { TZ: 'UTC', MINIMCP_API_KEY: 'sk-one', LOG_LEVEL: 'info' };

    expect(launchFingerprint({ ...LAUNCH, env: reordered })).toBe(launchFingerprint(LAUNCH));
    expect(launchFingerprint(LAUNCH)).toBe(launchFingerprint({ ...LAUNCH }));
  });

  it('changes with the key, the config, the arguments or the command', () => {
    const base = launchFingerprint(LAUNCH);
    const variants = [
      { ...LAUNCH, env: { ...LAUNCH.env, MINIMCP_API_KEY: 'sk-two' } },
      { ...LAUNCH, env: { ...LAUNCH.env, LOG_LEVEL: 'debug' } },
      { ...LAUNCH, env: { ...LAUNCH.env, EXTRA: '' } },
      { ...LAUNCH, env: { LOG_LEVEL: 'info', TZ: 'UTC' } },
      { ...LAUNCH, args: ['server.js'] },
      { ...LAUNCH, args: ['--stdio', 'server.js'] },
      { ...LAUNCH, args: ['server.js --stdio'] },
      { ...LAUNCH, command: '/usr/bin/node' },
    ].map(launchFingerprint);

    for (const variant of variants) expect(variant).not.toBe(base);
    expect(new Set(variants).size).toBe(variants.length);
  });
});

describe('isReattachable', () => {
  it("accepts an instance's child that answered initialize on FIFOs", () => {
    expect(isReattachable(recordOf())).toBe(true);
  });

  it('refuses warm-pool children and records without stdio folder, fingerprint or initialize answer', () => {
    expect(isReattachable(recordOf({ label: 'warm-pool:everything' }))).toBe(false);
    expect(isReattachable(recordOf({ stdioDir: undefined }))).toBe(false);
    expect(isReattachable(recordOf({ fingerprint: undefined }))).toBe(false);
    expect(isReattachable(recordOf({ initializeResult: undefined }))).toBe(false);
  });
});

/**
 * A stand-in MCP server: starts a grandchild in its process group, prints the
 * grandchild's pid, and runs until its stdin ends.
 */
const SERVER = `
const { spawn } = require('node:child_process');
const grandchild = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
process.stdout.write(grandchild.pid + '\\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

const groups: number[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

interface Survivor {
  record: ChildRecord;
  grandchild: number;
}

/** Spawns a server on FIFOs as the supervisor does and records it; the "old agent" then lets go of its ends. */
async function spawnSurvivor(
  stateDir: string,
  stdioRoot: string,
  label: string,
  fingerprint: string,
): Promise<Survivor> {
  const prepared = await prepareChildStdio(stdioRoot);
  const child = spawn(process.execPath, ['-e', SERVER], {
    stdio: [...prepared.childFds],
    detached: true,
    env: { PATH: process.env.PATH ?? '' },
  });
  groups.push(child.pid!);
  prepared.releaseChildFds();
  const [line] = (await once(createInterface({ input: prepared.stdout }), 'line')) as [string];
  prepared.destroy();
  const record: ChildRecord = {
    pid: child.pid!,
    pgid: child.pid!,
    startTicks: processStartTicks(child.pid!)!,
    label,
    command: process.execPath,
    spawnedAt: Date.now(),
    stdioDir: prepared.dir,
    fingerprint,
    initializeResult: INITIALIZE_RESULT,
  };
  createChildRegistry(stateDir).add(record);
  return { record, grandchild: Number(line) };
}

interface Restarted {
  survivors: Survivors;
  byLabel: Map<string, Survivor>;
}

/** Spawns one survivor per label, then does what a new agent does: read the records and take them over. */
async function restartWith(labels: string[]): Promise<Restarted & { stateDir: string }> {
  const stateDir = await tempDir('state');
  const stdioRoot = await tempDir('stdio');
  dirs.push(stateDir, stdioRoot);
  const byLabel = new Map<string, Survivor>();
  for (const label of labels)
    byLabel.set(label, await spawnSurvivor(stateDir, stdioRoot, label, launchFingerprint(LAUNCH)));
  const records = await readChildRecords(stateDir);
  expect(records).toHaveLength(labels.length);
  const survivors = createSurvivors(records, createChildRegistry(stateDir, records));
  return { stateDir, survivors, byLabel };
}

const alive = ({ record, grandchild }: Survivor): boolean =>
  !processGone(record.pid) && !processGone(grandchild);

async function recordedPids(stateDir: string): Promise<number[]> {
  return (await readChildRecords(stateDir)).map((record) => record.pid).sort((a, b) => a - b);
}

describe('createSurvivors', () => {
  it('keeps the newer of two children recorded for one instance and kills the older', async () => {
    const stateDir = await tempDir('state');
    const stdioRoot = await tempDir('stdio');
    dirs.push(stateDir, stdioRoot);
    const older = await spawnSurvivor(stateDir, stdioRoot, 'instance-1', launchFingerprint(LAUNCH));
    const newer = await spawnSurvivor(stateDir, stdioRoot, 'instance-1', launchFingerprint(LAUNCH));
    const records = await readChildRecords(stateDir);
    // Recorded a moment apart: make the order certain.
    for (const record of records)
      if (record.pid === older.record.pid) record.spawnedAt = newer.record.spawnedAt - 1_000;

    const survivors = createSurvivors(records, createChildRegistry(stateDir, records));

    await waitFor('the older child killed', () => processGone(older.record.pid));
    expect(survivors.size).toBe(1);
    expect(survivors.claim('instance-1', launchFingerprint(LAUNCH))?.pid).toBe(newer.record.pid);
    expect(alive(newer)).toBe(true);
    expect(await recordedPids(stateDir)).toEqual([newer.record.pid]);
  });

  it('hands an instance its child when the fingerprint matches, and leaves it running', async () => {
    const { stateDir, survivors, byLabel } = await restartWith(['instance-1', 'instance-2']);
    const survivor = byLabel.get('instance-1')!;
    expect(survivors.size).toBe(2);

    const claimed = survivors.claim('instance-1', launchFingerprint(LAUNCH));

    expect(claimed).toEqual(survivor.record);
    expect(survivors.size).toBe(1);
    expect(alive(survivor)).toBe(true);
    expect(await recordedPids(stateDir)).toContain(survivor.record.pid);
    expect(existsSync(survivor.record.stdioDir!)).toBe(true);
    // Its FIFOs still lead to a process that holds them.
    attachChildStdio(survivor.record.stdioDir!).destroy();
    // Claimed once only.
    expect(survivors.claim('instance-1', launchFingerprint(LAUNCH))).toBeUndefined();
    expect(alive(survivor)).toBe(true);
  });

  it('kills the process group of a child started otherwise, drops its record and FIFOs', async () => {
    const { stateDir, survivors, byLabel } = await restartWith(['instance-1', 'instance-2']);
    const changed = byLabel.get('instance-1')!;
    const other = byLabel.get('instance-2')!;
    const newKey = launchFingerprint({
      ...LAUNCH,
      env: { ...LAUNCH.env, MINIMCP_API_KEY: 'sk-two' },
    });

    expect(survivors.claim('instance-1', newKey)).toBeUndefined();

    await waitFor('the changed child to die', () => processGone(changed.record.pid));
    await waitFor('its grandchild to die', () => processGone(changed.grandchild));
    await waitFor('its FIFOs to go', () => !existsSync(changed.record.stdioDir!));
    expect(await recordedPids(stateDir)).toEqual([other.record.pid]);
    expect(survivors.size).toBe(1);
    expect(alive(other)).toBe(true);
    // Gone for good: a second claim, even with the old fingerprint, gets nothing.
    expect(survivors.claim('instance-1', launchFingerprint(LAUNCH))).toBeUndefined();
  });

  it('returns nothing for an instance without a survivor, and kills no one', async () => {
    const { stateDir, survivors, byLabel } = await restartWith(['instance-1']);

    expect(survivors.claim('instance-9', launchFingerprint(LAUNCH))).toBeUndefined();

    expect(survivors.size).toBe(1);
    expect(alive(byLabel.get('instance-1')!)).toBe(true);
    expect(await recordedPids(stateDir)).toEqual([byLabel.get('instance-1')!.record.pid]);
  });

  it('kills the survivors nobody claimed, with their records and FIFOs', async () => {
    const { stateDir, survivors, byLabel } = await restartWith([
      'instance-1',
      'instance-2',
      'instance-3',
    ]);
    const kept = byLabel.get('instance-2')!;
    expect(survivors.claim('instance-2', launchFingerprint(LAUNCH))).toEqual(kept.record);

    const killed = survivors.killUnclaimed();

    expect(killed.map((record) => record.label).sort()).toEqual(['instance-1', 'instance-3']);
    expect(survivors.size).toBe(0);
    for (const label of ['instance-1', 'instance-3']) {
      const gone = byLabel.get(label)!;
      await waitFor(`${label}'s child to die`, () => processGone(gone.record.pid));
      await waitFor(`${label}'s grandchild to die`, () => processGone(gone.grandchild));
      await waitFor(`${label}'s FIFOs to go`, () => !existsSync(gone.record.stdioDir!));
      expect(survivors.claim(label, launchFingerprint(LAUNCH))).toBeUndefined();
    }
    expect(await recordedPids(stateDir)).toEqual([kept.record.pid]);
    expect(alive(kept)).toBe(true);
    expect(existsSync(kept.record.stdioDir!)).toBe(true);
    expect(survivors.killUnclaimed()).toEqual([]);
  });
});
